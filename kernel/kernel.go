// Package kernel finds a Linux kernel in a tree (a kernel package
// flattened, an OCI image, a directory, or a root filesystem that installs
// its own kernel) and gives the rest of ocidisk what it needs from it: the
// kernel Image, uncompressed when the bootloader wants it raw, its version,
// its device trees, and its modules with their dependencies resolved from
// each module's .modinfo, since kernel packages ship no modules.dep.
package kernel

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// ErrNoKernel is returned (wrapped) by Find when the tree holds no kernel.
var ErrNoKernel = errors.New("no kernel found (give one with --kernel SRC, or use a root image that installs /boot/vmlinuz-* and /lib/modules/*)")

// Kernel is a kernel found in a tree.
type Kernel struct {
	// Version is the kernel release ("6.1.0-28-arm64"), the name of its
	// modules directory.
	Version string
	// Tree is the tree the kernel was found in.
	Tree *fstree.Tree
	// ImagePath is the kernel image's path in Tree, as found (often a
	// compressed vmlinuz).
	ImagePath string
	// ModulesDir is the real path of the modules directory in Tree
	// ("usr/lib/modules/VERSION"), or "" when the kernel has no modules.
	ModulesDir string
	// DTBDir is the real path of the device tree directory in Tree (Debian:
	// "usr/lib/linux-image-VERSION"), or "" when there is none.
	DTBDir string

	modules *Modules // read once by Modules
}

// imagePatterns are where distributions install the kernel, in the order
// they are tried; VERSION stands for the version found.
var imagePatterns = []string{
	"usr/lib/modules/*/vmlinuz", // Fedora, bootc images: beside the modules
	"boot/vmlinuz-*",            // Debian, Ubuntu
	"boot/vmlinux-*",
	"boot/Image-*",
	"boot/zImage-*",
}

// dtbDirs are where distributions install device trees.
var dtbDirs = []string{
	"usr/lib/linux-image-%s",      // Debian
	"boot/dtbs/%s",                // Fedora, Arch
	"usr/lib/modules/%s/dtb",      // Fedora (newer)
	"lib/firmware/%s/device-tree", // Ubuntu
	"boot/dtbs",
	"boot/dtb",
}

// Find looks for a kernel in t. When several versions are installed, the
// highest wins. A tree without one gives an error wrapping ErrNoKernel.
func Find(t *fstree.Tree) (*Kernel, error) {
	type cand struct{ version, path string }
	var cands []cand
	for _, pat := range imagePatterns {
		dir, pattern := path.Split(pat)
		for _, d := range glob(t, strings.TrimSuffix(dir, "/")) {
			n, err := lookup(t, d)
			if err != nil || !n.IsDir() {
				continue
			}
			for _, e := range n.Entries() {
				if ok, _ := path.Match(pattern, e.Name); !ok || e.Node.Type == fstree.TypeDir {
					continue
				}
				p := d + "/" + e.Name
				if r, err := lookup(t, p); err != nil || r.Type != fstree.TypeRegular {
					continue // a dangling symlink
				}
				v := path.Base(d) // usr/lib/modules/VERSION/vmlinuz
				if i := strings.IndexByte(pattern, '*'); i >= 0 {
					v = e.Name[i:] // boot/vmlinuz-VERSION
				}
				if v != "" && !strings.HasSuffix(v, ".old") {
					cands = append(cands, cand{v, p})
				}
			}
		}
		if len(cands) > 0 {
			break
		}
	}
	if len(cands) == 0 {
		return nil, ErrNoKernel
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return compareVersions(b.version, a.version) })
	k := &Kernel{Version: cands[0].version, Tree: t, ImagePath: cands[0].path}
	for _, d := range []string{"lib/modules/", "usr/lib/modules/"} {
		if rp, err := t.Realpath(d + k.Version); err == nil {
			if n, err := t.Lookup(rp); err == nil && n.IsDir() {
				k.ModulesDir = rp
				break
			}
		}
	}
	for _, d := range dtbDirs {
		if strings.Contains(d, "%s") {
			d = fmt.Sprintf(d, k.Version)
		}
		if rp, err := t.Realpath(d); err == nil {
			if n, err := t.Lookup(rp); err == nil && n.IsDir() {
				k.DTBDir = rp
				break
			}
		}
	}
	return k, nil
}

// lookup returns the node at p, following symlinks.
func lookup(t *fstree.Tree, p string) (*fstree.Node, error) {
	rp, err := t.Realpath(p)
	if err != nil {
		return nil, err
	}
	return t.Lookup(rp)
}

// glob expands "*" elements of a directory pattern against t.
func glob(t *fstree.Tree, pattern string) []string {
	out := []string{""}
	for _, el := range fstree.Split(pattern) {
		var next []string
		for _, d := range out {
			if !strings.Contains(el, "*") {
				next = append(next, path.Join(d, el))
				continue
			}
			n, err := lookup(t, d)
			if err != nil || !n.IsDir() {
				continue
			}
			for _, e := range n.Entries() {
				if ok, _ := path.Match(el, e.Name); ok {
					next = append(next, path.Join(d, e.Name))
				}
			}
		}
		out = next
	}
	return out
}

// compareVersions orders kernel releases by their numeric runs, so that
// 6.1.0-10 sorts after 6.1.0-9.
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
