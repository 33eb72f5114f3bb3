package fstree

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		unsafe   bool
	}{
		{"", "", false},
		{"/", "", false},
		{".", "", false},
		{"./", "", false},
		{"./usr/bin/", "usr/bin", false},
		{"/etc//passwd", "etc/passwd", false},
		{"a/./b/../c", "a/c", false},
		{"././/usr/./lib//", "usr/lib", false},
		{"usr/lib/x", "usr/lib/x", false},
		{"./usr/..", "", false},
		{"./a/b/..", "a", false},
		{"./a/...", "a/...", false},
		{".hidden/.x/", ".hidden/.x", false},
		{"./../x/", "", true},
		{"./a/../..", "", true},
		{"..", "", true},
		{"../etc/passwd", "", true},
		{"a/../../b", "", true},
		{"/../x", "", true}, // a leading "/" is relative to the root, so this climbs out too
	} {
		got, err := Clean(tc.in)
		if tc.unsafe {
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Clean(%q) = %q, %v; want ErrUnsafePath", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Clean(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestPutRemoveHardlinks(t *testing.T) {
	tr := New()
	f := NewFile(0o644, 3, Bytes("abc"))
	if err := tr.Put("a/b/f", f, NewDir(0o755)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Put("g", f, nil); err != nil {
		t.Fatal(err)
	}
	if f.Links() != 2 {
		t.Fatalf("links = %d, want 2", f.Links())
	}
	// Replacing one name leaves the other naming the old inode.
	if err := tr.Put("a/b/f", NewFile(0o600, 1, Bytes("x")), nil); err != nil {
		t.Fatal(err)
	}
	if f.Links() != 1 {
		t.Fatalf("links after replace = %d, want 1", f.Links())
	}
	if ok, _ := tr.Remove("g"); !ok || f.Links() != 0 {
		t.Fatalf("remove g: ok=%v links=%d", ok, f.Links())
	}
	if ok, _ := tr.Remove("nope/x"); ok {
		t.Fatal("removed a path that does not exist")
	}
	// A file in the way of a parent is an error for Put, not a silent replace.
	if err := tr.Put("a/b/f/x", NewFile(0o644, 0, nil), NewDir(0o755)); !errors.Is(err, ErrNotDir) {
		t.Fatalf("put under a file: %v, want ErrNotDir", err)
	}
}

func TestWalkOrderAndStats(t *testing.T) {
	tr := New()
	for _, p := range []string{"z", "a/y", "a/b", "B"} {
		if err := tr.Put(p, NewFile(0o644, 1, Bytes("1")), NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	_ = tr.Walk(func(p string, n *Node) error { got = append(got, p); return nil })
	want := []string{"", "B", "a", "a/b", "a/y", "z"}
	if !slices.Equal(got, want) {
		t.Fatalf("walk = %q, want %q", got, want)
	}
	s := tr.Stats()
	if s.Inodes != 6 || s.Dirs != 2 || s.Entries != 5 || s.Bytes != 4 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestMergeAndClamp(t *testing.T) {
	dst := New()
	_, _ = dst.MkdirAll("etc", nil)
	_ = dst.Put("etc/keep", NewFile(0o644, 1, Bytes("k")), nil)
	_ = dst.Put("etc/over", NewFile(0o644, 1, Bytes("o")), nil)
	src := New()
	newer := time.Unix(2_000_000_000, 0)
	n := NewFile(0o600, 3, Bytes("new"))
	n.Mtime = newer
	_ = src.Put("etc/over", n, NewDir(0o700))
	if err := Merge(dst, "", src); err != nil {
		t.Fatal(err)
	}
	etc, _ := dst.Lookup("etc")
	if etc.Mode != 0o755 || etc.Len() != 2 {
		t.Fatalf("etc mode %o len %d: merged directory should keep its metadata", etc.Mode, etc.Len())
	}
	got, _ := dst.Lookup("etc/over")
	if got != n {
		t.Fatal("overlay file did not replace the original")
	}
	limit := time.Unix(1_700_000_000, 0)
	dst.ClampTimes(limit)
	if !n.Mtime.Equal(limit) {
		t.Fatalf("mtime %v not clamped to %v", n.Mtime, limit)
	}
	lines, err := ManifestLines(dst)
	if err != nil || len(lines) != 4 {
		t.Fatalf("manifest: %v %q", err, lines)
	}
}

// Merge follows the destination's symlinked directories, as cp -a does:
// over a merged-/usr root, bin/x goes to usr/bin and /bin stays a link,
// through an absolute link and a chain of them too. A symlink to nothing,
// or to a file, is replaced.
func TestMergeFollowsSymlinkedDirs(t *testing.T) {
	dst := New()
	_, _ = dst.MkdirAll("usr/bin", nil)
	_, _ = dst.MkdirAll("usr/lib/firmware", nil)
	_ = dst.Put("usr/bin/sh", NewFile(0o755, 1, Bytes("s")), nil)
	_ = dst.Put("bin", NewSymlink("usr/bin"), nil)
	_ = dst.Put("lib", NewSymlink("/usr/lib"), nil)
	_ = dst.Put("usr/lib/fw", NewSymlink("firmware"), nil)
	_ = dst.Put("dangling", NewSymlink("nowhere"), nil)
	_ = dst.Put("file", NewFile(0o644, 1, Bytes("f")), nil)
	_ = dst.Put("tofile", NewSymlink("file"), nil)
	src := New()
	for _, p := range []string{"bin/x", "lib/fw/blob", "dangling/y", "tofile/z"} {
		_ = src.Put(p, NewFile(0o644, 1, Bytes("n")), NewDir(0o700))
	}
	if err := Merge(dst, "", src); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		typ  Type
	}{
		{"bin", TypeSymlink}, {"usr/bin/x", TypeRegular}, {"usr/bin/sh", TypeRegular},
		{"lib", TypeSymlink}, {"usr/lib/fw", TypeSymlink}, {"usr/lib/firmware/blob", TypeRegular},
		{"dangling", TypeDir}, {"dangling/y", TypeRegular}, {"tofile", TypeDir}, {"file", TypeRegular},
	} {
		n, err := dst.Lookup(tc.path)
		if err != nil || n.Type != tc.typ {
			t.Errorf("%s: %v, %v; want a %v", tc.path, n, err, tc.typ)
		}
	}
	if d, _ := dst.Lookup("usr/bin"); d.Mode != 0o755 {
		t.Errorf("usr/bin mode %o: the merged directory keeps its own metadata", d.Mode)
	}
}

// Link counts follow whole subtrees: removing, replacing or moving a
// directory changes the counts of the hardlinks below it, and a directory
// built apart brings its names along when it is put into the tree.
func TestLinkCountsFollowSubtrees(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(tr *Tree, f *Node) error
		want int
	}{
		{"both names", func(tr *Tree, f *Node) error { return nil }, 2},
		{"remove the directory holding one name", func(tr *Tree, f *Node) error {
			_, err := tr.Remove("d")
			return err
		}, 1},
		{"replace that directory by a file", func(tr *Tree, f *Node) error {
			return tr.Put("d", NewFile(0o644, 0, nil), nil)
		}, 1},
		{"clear the root", func(tr *Tree, f *Node) error {
			tr.Root.Clear()
			return nil
		}, 0},
		{"move the directory by merging it elsewhere", func(tr *Tree, f *Node) error {
			src := New()
			d, _ := tr.Lookup("d")
			tr.Root.RemoveChild("d")
			src.Root.SetChild("d", d)
			return Merge(tr, "moved", src)
		}, 2},
		{"add a directory built apart with a third name", func(tr *Tree, f *Node) error {
			d := NewDir(0o755)
			d.SetChild("third", f)
			return tr.Put("e", d, nil)
		}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New()
			f := NewFile(0o644, 1, Bytes("x"))
			if err := tr.Put("d/sub/a", f, NewDir(0o755)); err != nil {
				t.Fatal(err)
			}
			if err := tr.Put("b", f, nil); err != nil {
				t.Fatal(err)
			}
			if err := tc.do(tr, f); err != nil {
				t.Fatal(err)
			}
			if f.Links() != tc.want {
				t.Fatalf("links = %d, want %d", f.Links(), tc.want)
			}
			// Links must equal the names a walk finds.
			names := 0
			_ = tr.Walk(func(_ string, n *Node) error {
				if n == f {
					names++
				}
				return nil
			})
			if names != tc.want {
				t.Fatalf("walk finds %d names, Links() says %d", names, f.Links())
			}
		})
	}
}

func TestCheckNameAndEntryPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"etc", true}, {"a b", true}, {string(make([]byte, 255)), false}, {strings.Repeat("x", 255), true},
		{strings.Repeat("x", 256), false}, {"", false}, {".", false}, {"..", false}, {"a/b", false}, {"a\x00", false},
	} {
		if err := CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%.20q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	var root *EntryPath
	if got := root.Child("usr").Child("bin").String(); got != "/usr/bin" {
		t.Errorf("path = %q", got)
	}
	if got := root.String(); got != "/" {
		t.Errorf("root path = %q", got)
	}
}

// Fingerprint changes with what a writer stores and with nothing else:
// times past the limit count as the limit.
func TestFingerprint(t *testing.T) {
	limit := time.Unix(1_700_000_000, 0)
	mk := func(mtime time.Time, mode uint32, body string) *Tree {
		tr := New()
		n := NewFile(mode, int64(len(body)), Bytes(body))
		n.Mtime = mtime
		_ = tr.Put("etc/motd", n, NewDir(0o755))
		_ = tr.Put("etc/hard", n, nil)
		return tr
	}
	fp := func(tr *Tree, limit time.Time) string {
		t.Helper()
		s, err := tr.Fingerprint(limit, true)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := fp(mk(limit.Add(time.Hour), 0o644, "hi"), limit)
	for _, tc := range []struct {
		name string
		tr   *Tree
		same bool
	}{
		{"touched later", mk(limit.Add(48*time.Hour), 0o644, "hi"), true},
		{"at the limit", mk(limit, 0o644, "hi"), true},
		{"earlier", mk(limit.Add(-time.Second), 0o644, "hi"), false},
		{"mode", mk(limit.Add(time.Hour), 0o600, "hi"), false},
		{"size", mk(limit.Add(time.Hour), 0o644, "hi!"), false},
		{"content", mk(limit.Add(time.Hour), 0o644, "ho"), false},
	} {
		if got := fp(tc.tr, limit); (got == base) != tc.same {
			t.Errorf("%s: fingerprint equal %v, want %v", tc.name, got == base, tc.same)
		}
	}
	if fp(mk(limit.Add(time.Hour), 0o644, "hi"), time.Time{}) == base {
		t.Error("without a limit, a later time is not clamped")
	}
	// Without content, only what the metadata says counts.
	a, _ := mk(limit, 0o644, "hi").Fingerprint(limit, false)
	b, _ := mk(limit, 0o644, "ho").Fingerprint(limit, false)
	c, _ := mk(limit, 0o644, "hi!").Fingerprint(limit, false)
	if a != b || a == c {
		t.Errorf("without content: same size %v (want true), other size %v (want false)", a == b, a == c)
	}
}

// TestManyLinks counts names past what the node keeps in 16 bits, and
// back, with access and change times set and cleared along the way.
func TestManyLinks(t *testing.T) {
	tr := New()
	f := NewFile(0o644, 0, nil)
	at := time.Unix(1600000000, 0)
	const n = 1<<16 + 10
	for i := range n {
		if err := tr.Put(fmt.Sprintf("d%d/f%d", i%7, i), f, NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
		if i == 1<<16-5 {
			f.SetTimes(at, at)
		}
	}
	if f.Links() != n || !f.Atime().Equal(at) {
		t.Fatalf("links = %d, atime %v; want %d and %v", f.Links(), f.Atime(), n, at)
	}
	f.SetTimes(time.Time{}, time.Time{})
	if f.Links() != n || !f.Ctime().IsZero() {
		t.Fatalf("after clearing the times: links = %d, ctime %v", f.Links(), f.Ctime())
	}
	c := f.CopyMeta()
	if c.Links() != 0 {
		t.Errorf("a copy has %d links, want 0", c.Links())
	}
	for i := range n - 2 {
		if ok, err := tr.Remove(fmt.Sprintf("d%d/f%d", i%7, i)); !ok || err != nil {
			t.Fatalf("remove %d: %v %v", i, ok, err)
		}
	}
	if f.Links() != 2 {
		t.Errorf("links = %d after removing all but 2 names", f.Links())
	}
}

func TestReadFile(t *testing.T) {
	tr := New()
	if err := tr.Put("etc/hostname", NewFile(0o644, 4, Bytes("pi4\n")), NewDir(0o755)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Put("etc/link", NewSymlink("hostname"), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want, err string
	}{
		{"etc/hostname", "pi4\n", ""},
		{"/etc/hostname", "pi4\n", ""},
		{"etc", "", "etc: read content: "},
		{"etc/link", "", "etc/link: read content: "},
		{"etc/missing", "", "missing"},
	} {
		b, err := tr.ReadFile(tc.path)
		switch {
		case tc.err == "" && (err != nil || string(b) != tc.want):
			t.Errorf("ReadFile(%q) = %q, %v; want %q", tc.path, b, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ReadFile(%q) error %v, want one containing %q", tc.path, err, tc.err)
		}
	}
}
