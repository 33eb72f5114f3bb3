// Package initramfs builds ocidisk's initramfs: a newc cpio archive holding
// the Go init (the init subdirectory, cross-compiled by go generate and
// embedded), the kernel modules the board needs with their dependencies,
// and the list of modules in load order that the init reads. Archives are
// deterministic: entries in tree order, fixed times and owners, inode
// numbers counted from 1.
package initramfs

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
)

//go:embed init-arm64 init-arm
var inits embed.FS

// Init returns the init binary for arch (arm64 or arm).
func Init(arch string) ([]byte, error) {
	b, err := inits.ReadFile("init-" + arch)
	if err != nil {
		return nil, fmt.Errorf("initramfs: no init for architecture %q (have arm64, arm)", arch)
	}
	return b, nil
}

// ModulesList is where the init looks for the modules to load, one path a
// line, in load order.
const ModulesList = "etc/ocidisk/modules"

// Spec says what goes into an initramfs.
type Spec struct {
	Arch string // arm64 or arm: which init
	// KernelVersion names the modules directory, lib/modules/VERSION.
	KernelVersion string
	// Modules are loaded by the init in this order (kernel.Modules.Closure
	// gives it). They are stored uncompressed, since the archive is
	// compressed as a whole and finit_module then needs no decompressor.
	Modules []*kernel.Module
	// Compression is gzip (what every distribution kernel unpacks) or
	// none.
	Compression string
	// Time is the mtime of every entry.
	Time time.Time
}

// Equal reports whether o is the same spec, with the same modules (the
// same *kernel.Module values, in the same order): Build gives the same
// bytes for both.
func (s Spec) Equal(o Spec) bool {
	return s.Arch == o.Arch && s.KernelVersion == o.KernelVersion && s.Compression == o.Compression &&
		s.Time.Equal(o.Time) && slices.Equal(s.Modules, o.Modules)
}

// Tree returns the initramfs's file tree.
func Tree(s Spec) (*fstree.Tree, error) {
	initBin, err := Init(s.Arch)
	if err != nil {
		return nil, err
	}
	t := fstree.New()
	dir := func() *fstree.Node { d := fstree.NewDir(0o755); d.Mtime = s.Time; return d }
	put := func(p string, n *fstree.Node) error {
		n.Mtime = s.Time
		if err := t.Put(p, n, dir()); err != nil {
			return fmt.Errorf("initramfs: %s: %w", p, err)
		}
		return nil
	}
	for _, d := range []string{"dev", "proc", "sys", "root", "run", "tmp"} {
		if err := put(d, dir()); err != nil {
			return nil, err
		}
	}
	// The kernel opens /dev/console from the initramfs as the init's
	// stdin, stdout and stderr, before anything mounts devtmpfs.
	if err := put("dev/console", fstree.NewDevice(fstree.TypeCharDev, 0o600, 5, 1)); err != nil {
		return nil, err
	}
	if err := put("init", fstree.NewFile(0o755, int64(len(initBin)), fstree.Bytes(initBin))); err != nil {
		return nil, err
	}
	var list strings.Builder
	for _, m := range s.Modules {
		p := path.Join("lib/modules", s.KernelVersion, koPath(m.Path))
		if err := put(p, m.File()); err != nil {
			return nil, err
		}
		list.WriteString("/" + p + "\n")
	}
	if err := put(ModulesList, fstree.NewFile(0o644, int64(list.Len()), fstree.Bytes(list.String()))); err != nil {
		return nil, err
	}
	t.Root.Mtime = s.Time
	return t, nil
}

// koPath names a module file as stored uncompressed.
func koPath(p string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(p, ".ko"+ext) {
			return strings.TrimSuffix(p, ext)
		}
	}
	return p
}

// Build returns the compressed initramfs for s.
func Build(s Spec) ([]byte, error) {
	t, err := Tree(s)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	switch s.Compression {
	case "gzip":
		zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		if err := WriteCpio(zw, t); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case "none", "":
		if err := WriteCpio(&buf, t); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("initramfs: unknown compression %q (want gzip or none)", s.Compression)
	}
	return buf.Bytes(), nil
}
