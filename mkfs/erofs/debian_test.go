package erofs

import (
	"context"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// loadTree loads a tree from any source spelling, file content staying
// where the source has it, or makes a benchmark's random tree
// (randtree.Bench).
func loadTree(t testing.TB, spec string) *fstree.Tree {
	t.Helper()
	if tr, ok := randtree.Bench(spec); ok {
		return tr
	}
	img, err := rootfs.Load(context.Background(), spec, source.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img.Tree
}

// TestDebianTree writes the Debian arm64 root (from its flattened tar) and
// has every judge read it back: content, device nodes, hardlinks, setuid
// bits, owners, times and xattrs included.
func TestDebianTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds or reads the Debian tree (~190 MB)")
	}
	tr := loadTree(t, "tar:"+debian.Tree(t).FlatTar)
	img, err := writeImage(t, t.TempDir(), tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	judge(t, img, tr, Options{})
}
