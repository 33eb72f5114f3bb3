package kernel

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// Module is one loadable kernel module and what its .modinfo says.
type Module struct {
	// Name is the module's name with dashes as underscores ("virtio_blk").
	Name string
	// Path is the module file's path relative to the modules directory
	// ("kernel/drivers/block/virtio_blk.ko", or .ko.xz, .ko.zst).
	Path string
	// Depends are the modules it needs loaded first (depends=).
	Depends []string
	// SoftPre and SoftPost are its soft dependencies (softdep= pre: and
	// post:), module names or aliases that modprobe loads before and after
	// it when they exist.
	SoftPre, SoftPost []string
	// Aliases are the names and patterns it answers to (alias=).
	Aliases []string

	node *fstree.Node
	size int64 // uncompressed size
	open func() (io.ReadCloser, error)
}

// Size is the module's uncompressed size.
func (m *Module) Size() int64 { return m.size }

// Open returns the module's uncompressed ELF bytes, what init_module and
// finit_module take.
func (m *Module) Open() (io.ReadCloser, error) {
	if m.open != nil {
		return m.open()
	}
	return m.node.Content.Open()
}

// File returns the module as a file node with its uncompressed content.
func (m *Module) File() *fstree.Node {
	n := fstree.NewFile(0o644, m.size, fstree.Func(m.Open))
	n.Mtime = m.node.Mtime
	return n
}

// normalize spells a module name the way the kernel does: dashes become
// underscores.
func normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

// moduleName returns the module name of a .ko file name, or "".
func moduleName(file string) string {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(file, ext) {
			return normalize(strings.TrimSuffix(file, ext))
		}
	}
	return ""
}

// readModule reads the .modinfo section of the module at rel (relative to
// the modules directory), decompressing .ko.xz/.ko.zst/.ko.gz first.
func readModule(rel string, n *fstree.Node) (*Module, error) {
	m := &Module{Name: moduleName(rel), Path: rel, node: n, size: n.Size}
	var ra io.ReaderAt
	var size int64
	if !strings.HasSuffix(rel, ".ko") {
		open, err := decompressor(n)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", rel, err)
		}
		if open == nil {
			return nil, fmt.Errorf("module %s: unknown compression", rel)
		}
		r, err := open()
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", rel, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("module %s: decompress: %w", rel, err)
		}
		m.open, m.size = open, int64(len(b))
		ra, size = bytes.NewReader(b), int64(len(b))
	} else if rac, ok := n.Content.(fstree.ReaderAtContent); ok {
		r, off, err := rac.ReaderAt()
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", rel, err)
		}
		ra, size = io.NewSectionReader(r, off, n.Size), n.Size
	} else {
		r, err := n.Content.Open()
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", rel, err)
		}
		defer r.Close()
		if f, ok := r.(io.ReaderAt); ok { // a host file: read only the section
			ra, size = f, n.Size
		} else {
			b, err := io.ReadAll(r)
			if err != nil {
				return nil, fmt.Errorf("module %s: %w", rel, err)
			}
			ra, size = bytes.NewReader(b), int64(len(b))
		}
	}
	f, err := elf.NewFile(io.NewSectionReader(ra, 0, size))
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", rel, err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", rel)
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: .modinfo: %w", rel, err)
	}
	m.parseModinfo(info)
	return m, nil
}

// parseModinfo reads the NUL-separated key=value strings of .modinfo.
func (m *Module) parseModinfo(info []byte) {
	for _, kv := range bytes.Split(info, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			if v != "" {
				m.Name = normalize(v)
			}
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					m.Depends = append(m.Depends, normalize(d))
				}
			}
		case "softdep":
			pre, post := parseSoftdep(v)
			m.SoftPre = append(m.SoftPre, pre...)
			m.SoftPost = append(m.SoftPost, post...)
		case "alias":
			m.Aliases = append(m.Aliases, v)
		}
	}
}

// parseSoftdep splits "pre: a b post: c" into its pre and post lists.
func parseSoftdep(s string) (pre, post []string) {
	var cur *[]string
	for _, f := range strings.Fields(s) {
		switch f {
		case "pre:":
			cur = &pre
		case "post:":
			cur = &post
		default:
			if cur != nil {
				*cur = append(*cur, f)
			}
		}
	}
	return pre, post
}
