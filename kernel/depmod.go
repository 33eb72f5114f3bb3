package kernel

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// WriteDep writes modules.dep for mods (paths relative to the modules
// directory), in the text format depmod writes and modprobe reads:
// "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko ...".
func (ms *Modules) WriteDep(w io.Writer, mods []*Module) error {
	for _, m := range mods {
		var b strings.Builder
		b.WriteString(m.Path + ":")
		for _, d := range ms.Deps(m) {
			b.WriteString(" " + d.Path)
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// WriteAlias writes modules.alias: "alias PATTERN MODULE" lines.
func (ms *Modules) WriteAlias(w io.Writer, mods []*Module) error {
	for _, m := range mods {
		for _, a := range m.Aliases {
			if _, err := fmt.Fprintf(w, "alias %s %s\n", a, m.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteSoftdep writes modules.softdep: "softdep MODULE pre: ... post: ..."
// lines.
func (ms *Modules) WriteSoftdep(w io.Writer, mods []*Module) error {
	for _, m := range mods {
		if len(m.SoftPre) == 0 && len(m.SoftPost) == 0 {
			continue
		}
		line := "softdep " + m.Name
		if len(m.SoftPre) > 0 {
			line += " pre: " + strings.Join(m.SoftPre, " ")
		}
		if len(m.SoftPost) > 0 {
			line += " post: " + strings.Join(m.SoftPost, " ")
		}
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// indexFiles are the files a kernel package ships in its modules directory
// that modprobe reads as they are.
var indexFiles = []string{"modules.order", "modules.builtin", "modules.builtin.modinfo"}

// Tree returns a modules directory for mods (nil: all of them) to be
// placed at lib/modules/VERSION: the module files as the kernel ships them,
// the package's modules.order and modules.builtin, and generated
// modules.dep, modules.alias and modules.softdep (read by busybox's
// modprobe) with the modules.dep.bin, modules.alias.bin and
// modules.builtin.bin indexes kmod's modprobe reads, so that modprobe works
// after boot. Generated files get mtime.
func (ms *Modules) Tree(k *Kernel, mods []*Module, mtime time.Time) (*fstree.Tree, error) {
	all := mods == nil
	if all {
		mods = ms.All
	}
	mods = byPath(mods)
	t := fstree.New()
	dirTmpl := fstree.NewDir(0o755)
	dirTmpl.Mtime = mtime
	for _, m := range mods {
		// A copy: the node stays in the kernel tree too, and a node
		// under names in two trees would count links from both.
		if err := t.Put(m.Path, m.node.CopyMeta(), dirTmpl); err != nil {
			return nil, fmt.Errorf("kernel %s: %s: %w", k.Version, m.Path, err)
		}
	}
	src, err := k.Tree.Lookup(k.ModulesDir)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	for _, name := range indexFiles {
		if n := src.Child(name); n != nil && n.Type == fstree.TypeRegular {
			if err := t.Put(name, n.CopyMeta(), nil); err != nil {
				return nil, err
			}
		}
	}
	gen := ms.generated
	if !all || gen == nil {
		if gen, err = ms.generate(mods); err != nil {
			return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
		}
	}
	for _, f := range gen {
		n := fstree.NewFile(0o644, int64(len(f.data)), fstree.Bytes(f.data))
		n.Mtime = mtime
		if err := t.Put(f.name, n, nil); err != nil {
			return nil, err
		}
	}
	t.Root.Mtime = mtime
	return t, nil
}

// byPath returns mods sorted by path, the order of the generated files.
func byPath(mods []*Module) []*Module {
	mods = slices.Clone(mods)
	slices.SortFunc(mods, func(a, b *Module) int { return strings.Compare(a.Path, b.Path) })
	return mods
}

// generatedFile is an index file Tree writes, with its content.
type generatedFile struct {
	name string
	data []byte
}

// generate makes the index files of mods, sorted by path. Their content
// does not depend on the root they go into, only on the modules.
func (ms *Modules) generate(mods []*Module) ([]generatedFile, error) {
	text := func(write func(io.Writer, []*Module) error) func() ([]byte, error) {
		return func() ([]byte, error) {
			var b bytes.Buffer
			err := write(&b, mods)
			return b.Bytes(), err
		}
	}
	makers := []struct {
		name string
		make func() ([]byte, error)
	}{
		{"modules.dep", text(ms.WriteDep)},
		{"modules.alias", text(ms.WriteAlias)},
		{"modules.softdep", text(ms.WriteSoftdep)},
		{"modules.dep.bin", func() ([]byte, error) { return ms.depIndex(mods) }},
		{"modules.alias.bin", func() ([]byte, error) { return ms.aliasIndex(mods) }},
		{"modules.builtin.bin", ms.builtinIndex},
	}
	// The files are made at once (they only read ms): the alias index
	// alone is a tenth of a second, and the build may be waiting.
	gen := make([]generatedFile, len(makers))
	errs := make([]error, len(makers))
	var wg sync.WaitGroup
	for i, f := range makers {
		wg.Go(func() {
			b, err := f.make()
			gen[i], errs[i] = generatedFile{f.name, b}, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", makers[i].name, err)
		}
	}
	return gen, nil
}

// Generate makes the index files of all the modules now, which Tree
// (with mods nil) and MergeModules then take: a caller can have this
// done in the background, before the root they go into is known (the
// alias index of a distribution kernel is a tenth of a second). It must
// not run at the same time as Tree or MergeModules.
func (ms *Modules) Generate() error {
	if ms.generated != nil {
		return nil
	}
	gen, err := ms.generate(byPath(ms.All))
	if err != nil {
		return fmt.Errorf("kernel %s: %w", ms.Version, err)
	}
	ms.generated = gen
	return nil
}

// MergeModules places the modules of k (all of them) into root at
// /lib/modules/VERSION, following root's symlinks (a merged-/usr root has
// /lib -> usr/lib), with generated modules.dep, modules.alias and
// modules.softdep. What root already had there is replaced file by file.
func MergeModules(root *fstree.Tree, k *Kernel, ms *Modules, mtime time.Time) error {
	mt, err := ms.Tree(k, nil, mtime)
	if err != nil {
		return err
	}
	at, err := root.Realpath("lib/modules/" + k.Version)
	if err != nil {
		return fmt.Errorf("root: lib/modules/%s: %w", k.Version, err)
	}
	tmpl := fstree.NewDir(0o755)
	tmpl.Mtime = mtime
	if _, err := root.MkdirAll(at, tmpl); err != nil {
		return fmt.Errorf("root: %s: %w", at, err)
	}
	return fstree.Merge(root, at, mt)
}
