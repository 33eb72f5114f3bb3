package rootfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages"
)

// memLayer is a layer tar held in memory.
type memLayer struct {
	name string
	b    []byte
}

func (l memLayer) Digest() string { return l.name }
func (l memLayer) Open(context.Context) (*io.SectionReader, error) {
	return io.NewSectionReader(bytes.NewReader(l.b), 0, int64(len(l.b))), nil
}

func flattenEntries(t *testing.T, layers ...[]testimages.Entry) *fstree.Tree {
	t.Helper()
	var ls []Layer
	for i, es := range layers {
		b, err := testimages.TarOf(es)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, memLayer{name: "layer" + string(rune('0'+i)), b: b})
	}
	tr, err := Flatten(t.Context(), ls, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func lookup(t *testing.T, tr *fstree.Tree, p string) *fstree.Node {
	t.Helper()
	n, err := tr.Lookup(p)
	if err != nil {
		t.Fatalf("lookup %s: %v", p, err)
	}
	return n
}

// TestLinkCounts checks what the tar listing cannot see: that names taken
// away by whiteouts, opaque directories and replacements, also deep inside
// removed directories, stop counting in Node.Links, and that hardlinks share
// one node. Filesystem writers take their link counts from Links.
func TestLinkCounts(t *testing.T) {
	F, H, D, W, O := testimages.File, testimages.Hardlink, testimages.Dir, testimages.Whiteout, testimages.Opaque
	for _, tc := range []struct {
		name   string
		layers [][]testimages.Entry
		links  map[string]int // path → Links()
		same   [][2]string    // pairs of paths that must be one node
	}{{
		name:   "within a layer",
		layers: [][]testimages.Entry{{F("a", "A", 0o644), H("b", "a"), H("c", "b")}},
		links:  map[string]int{"a": 3},
		same:   [][2]string{{"a", "b"}, {"a", "c"}},
	}, {
		name: "whiteout of a directory holding names deep down",
		layers: [][]testimages.Entry{
			{D("d", 0o755), D("d/e", 0o755), F("d/e/f", "F", 0o644), H("keep", "d/e/f"), H("d/g", "d/e/f")},
			{W("d")},
		},
		links: map[string]int{"keep": 1},
	}, {
		name: "opaque directory",
		layers: [][]testimages.Entry{
			{D("d", 0o755), D("d/sub", 0o755), F("d/sub/f", "F", 0o644), H("x", "d/sub/f"), H("d/y", "d/sub/f")},
			{O("d")},
		},
		links: map[string]int{"x": 1, "d": 1},
	}, {
		name: "directory replaced by a file",
		layers: [][]testimages.Entry{
			{D("d", 0o755), F("d/f", "F", 0o644), H("x", "d/f")},
			{F("d", "file", 0o644)},
		},
		links: map[string]int{"x": 1, "d": 1},
	}, {
		name: "target overwritten",
		layers: [][]testimages.Entry{
			{F("t", "old", 0o644), H("l", "t")},
			{F("t", "new", 0o644)},
		},
		links: map[string]int{"t": 1, "l": 1},
	}, {
		name: "link to a hidden lower file",
		layers: [][]testimages.Entry{
			{D("d", 0o755), F("d/f", "F", 0o644), H("d/g", "d/f")},
			{W("d"), H("x", "d/f")},
		},
		links: map[string]int{"x": 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := flattenEntries(t, tc.layers...)
			for p, want := range tc.links {
				if got := lookup(t, tr, p).Links(); got != want {
					t.Errorf("/%s: %d links, want %d", p, got, want)
				}
			}
			for _, pair := range tc.same {
				if lookup(t, tr, pair[0]) != lookup(t, tr, pair[1]) {
					t.Errorf("/%s and /%s are not one node", pair[0], pair[1])
				}
			}
		})
	}
}

// TestTimesFromPAX checks that atime and ctime PAX records and nanosecond
// mtimes reach the tree.
func TestTimesFromPAX(t *testing.T) {
	e := testimages.File("f", "x", 0o644)
	e.Mtime = time.Unix(1600000000, 123456789)
	e.Atime, e.Ctime = time.Unix(1500000000, 5e8), time.Unix(1400000000, 25e7)
	n := lookup(t, flattenEntries(t, []testimages.Entry{e}), "f")
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"mtime", n.Mtime, time.Unix(1600000000, 123456789)},
		{"atime", n.Atime(), time.Unix(1500000000, 500000000)},
		{"ctime", n.Ctime(), time.Unix(1400000000, 250000000)},
	} {
		if !tc.got.Equal(tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestErrorsNameLayerAndPath checks that refusals name the layer digest
// and the paths involved.
func TestErrorsNameLayerAndPath(t *testing.T) {
	for _, c := range testimages.Corpus() {
		if c.WantErr == "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			var ls []Layer
			for i, es := range c.Layers {
				b, err := testimages.TarOf(es)
				if err != nil {
					t.Fatal(err)
				}
				ls = append(ls, memLayer{name: "sha256:layer" + string(rune('0'+i)), b: b})
			}
			_, err := Flatten(t.Context(), ls, source.Options{})
			if err == nil || !strings.Contains(err.Error(), c.WantErr) || !strings.Contains(err.Error(), "layer sha256:layer") {
				t.Fatalf("err = %v, want one naming the layer and saying %q", err, c.WantErr)
			}
			if strings.Contains(c.WantErr, "escapes") && !errors.Is(err, fstree.ErrUnsafePath) {
				t.Errorf("err = %v, want one wrapping fstree.ErrUnsafePath", err)
			}
		})
	}
}

// TestSparse checks GNU sparse files (old GNU and PAX 1.0 formats, written
// by GNU tar): the content is the file's, holes as zeros, not the archive's
// packed bytes.
func TestSparse(t *testing.T) {
	gtar := hosttool.Require(t, "tar", "tar")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3<<20)
	copy(want[1<<20:], "data in the middle")
	copy(want[len(want)-5:], "tail!")
	for _, r := range [][2]int{{1 << 20, 18}, {len(want) - 5, 5}} {
		if _, err := f.WriteAt(want[r[0]:r[0]+r[1]], int64(r[0])); err != nil {
			t.Fatal(err)
		}
	}
	f.Truncate(int64(len(want)))
	f.Close()
	if err := os.WriteFile(filepath.Join(src, "after"), []byte("after"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(dir, format+".tar")
			cmd := exec.Command(gtar, "--sparse", "--format="+format, "-C", src, "-cf", out, "sparse", "after")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("tar: %v: %s", err, b)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := Flatten(t.Context(), []Layer{memLayer{"sparse", b}}, source.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for p, w := range map[string][]byte{"sparse": want, "after": []byte("after")} {
				got, err := fstree.ReadAll(lookup(t, tr, p))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, w) {
					t.Errorf("/%s: content differs (%d bytes, want %d)", p, len(got), len(w))
				}
			}
		})
	}
}
