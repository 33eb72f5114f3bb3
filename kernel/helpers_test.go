package kernel

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// loadDir turns a host directory into a tree whose file content is read
// from the host files.
func loadDir(t testing.TB, dir string) *fstree.Tree {
	t.Helper()
	tr := fstree.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		var n *fstree.Node
		switch {
		case d.IsDir():
			n = fstree.NewDir(uint32(info.Mode().Perm()))
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			n = fstree.NewSymlink(target)
		case d.Type().IsRegular():
			n = fstree.NewFile(uint32(info.Mode().Perm()), info.Size(), fstree.HostFile(p))
		default:
			return nil
		}
		n.Mtime = info.ModTime()
		return tr.Put(rel, n, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var debianKernelOnce struct {
	sync.Once
	dir string
	err string
}

// debianKernel returns the tree of Debian's arm64 kernel package, extracted
// once per test binary.
func debianKernel(t testing.TB) *fstree.Tree {
	t.Helper()
	deb := debian.KernelDeb(t)
	hosttool.Require(t, "dpkg-deb", "dpkg")
	debianKernelOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ocidisk-kernel-test-")
		if err != nil {
			debianKernelOnce.err = err.Error()
			return
		}
		if out, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
			debianKernelOnce.err = strings.TrimSpace(string(out))
			return
		}
		debianKernelOnce.dir = dir
	})
	if debianKernelOnce.err != "" {
		t.Fatal(debianKernelOnce.err)
	}
	return loadDir(t, debianKernelOnce.dir)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if debianKernelOnce.dir != "" {
		os.RemoveAll(debianKernelOnce.dir)
	}
	os.Exit(code)
}
