package ext4

import (
	"archive/tar"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestDebianTree writes the Debian arm64 root of testimages/debian and
// requires e2fsck clean and a debugfs read-back equal to the tree,
// device nodes, hardlinks and setuid bits included.
func TestDebianTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds or reads the Debian tree (~190 MB)")
	}
	d := debian.Tree(t)
	tr := treeFromTar(t, d.FlatTar)
	// The tree read from the tar is the expected flattening, so the
	// comparison below is against the source.
	got, err := fstree.ManifestLines(tr)
	if err != nil {
		t.Fatal(err)
	}
	if want := d.ExpectedLines(); !slices.Equal(got, want) {
		t.Fatalf("tree from %s differs from its expected listing (%d vs %d lines)", d.FlatTar, len(got), len(want))
	}
	kinds := map[string]int{}
	_ = tr.Walk(func(p string, n *fstree.Node) error {
		switch {
		case n.Type == fstree.TypeCharDev || n.Type == fstree.TypeBlockDev:
			kinds["device"]++
		case n.Type == fstree.TypeRegular && n.Links() > 1:
			kinds["hardlink"]++
		}
		if n.Mode&fstree.ModeSetuid != 0 {
			kinds["setuid"]++
		}
		if len(n.Xattrs) > 0 {
			kinds["xattr"]++
		}
		return nil
	})
	for _, k := range []string{"device", "hardlink", "setuid"} {
		if kinds[k] == 0 {
			t.Fatalf("the Debian tree has no %s: the test would prove nothing about them", k)
		}
	}
	t.Logf("%d entries, %d bytes; %v", d.Entries, d.Bytes, kinds)
	img, err := writeImage(t, t.TempDir(), tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hosttool.E2fsckClean(t, img)
	if diffs := compareTree(t, img, tr, Options{Time: testTime}); len(diffs) > 0 {
		if len(diffs) > 30 {
			diffs = append(diffs[:30], "...")
		}
		t.Fatalf("read-back differs from the Debian tree:\n%s", strings.Join(diffs, "\n"))
	}
}

// countReader counts the bytes read through it: after tar.Reader.Next on
// a plain (non-seeking) stream, the count is where the entry's data starts.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// treeFromTar reads a plain tar (entries in walk order, hardlinks to
// earlier names, xattrs as SCHILY.xattr records) into a tree whose file
// content are sections of the tar.
func treeFromTar(t *testing.T, path string) *fstree.Tree {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cr := &countReader{r: f}
	tr := tar.NewReader(cr)
	tree := fstree.New()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := fstree.Clean(h.Name)
		if err != nil {
			t.Fatal(err)
		}
		var n *fstree.Node
		switch h.Typeflag {
		case tar.TypeReg:
			n = fstree.NewFile(0, h.Size, fstree.Section{R: f, Off: cr.n, N: h.Size})
		case tar.TypeDir:
			n = fstree.NewDir(0)
			if p == "" {
				n = tree.Root
			}
		case tar.TypeSymlink:
			n = fstree.NewSymlink(h.Linkname)
		case tar.TypeChar, tar.TypeBlock:
			typ := fstree.TypeCharDev
			if h.Typeflag == tar.TypeBlock {
				typ = fstree.TypeBlockDev
			}
			n = fstree.NewDevice(typ, 0, uint32(h.Devmajor), uint32(h.Devminor))
		case tar.TypeFifo:
			n = fstree.NewDevice(fstree.TypeFIFO, 0, 0, 0)
		case tar.TypeLink:
			target, err := tree.Lookup(h.Linkname)
			if err != nil {
				t.Fatalf("%s: hardlink: %v", h.Name, err)
			}
			if err := tree.Put(p, target, nil); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			t.Fatalf("%s: unexpected tar type %q", h.Name, h.Typeflag)
		}
		n.Mode = uint32(h.Mode) & fstree.ModeMask
		n.UID, n.GID = uint32(h.Uid), uint32(h.Gid)
		n.Mtime = h.ModTime
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if n.Xattrs == nil {
					n.Xattrs = map[string]string{}
				}
				n.Xattrs[name] = v
			}
		}
		if p == "" {
			continue
		}
		if err := tree.Put(p, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}
