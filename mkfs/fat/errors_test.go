package fat_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/mkfs/fat/fattest"
)

// TestRefused checks that what FAT cannot hold is an error naming the path
// unless an option says what to do, and that the option does it.
func TestRefused(t *testing.T) {
	file := func() *fstree.Node { return fstree.NewFile(0o644, 5, fstree.Bytes("hello")) }
	for _, tc := range []struct {
		name  string
		put   func(tr *fstree.Tree)
		opts  fat.Options
		err   string // substrings of the error, "" for success
		names bool   // errors.Is ErrInvalidName
	}{
		{name: "colon", put: func(tr *fstree.Tree) { tr.Put("dir/a:b", file(), fstree.NewDir(0o755)) }, err: "/dir/a:b", names: true},
		{name: "case", put: func(tr *fstree.Tree) { tr.Put("Image", file(), nil); tr.Put("IMAGE", file(), nil) }, err: "/IMAGE and /Image", names: true},
		{name: "case nested", put: func(tr *fstree.Tree) {
			tr.Put("d/Straße", file(), fstree.NewDir(0o755))
			tr.Put("d/STRASSE", file(), nil)
			tr.Put("d/straße", file(), nil)
		}, err: "/d/Straße and /d/straße", names: true},
		{name: "star", put: func(tr *fstree.Tree) { tr.Put("a*", file(), nil) }, err: "/a*", names: true},
		{name: "trailing dot", put: func(tr *fstree.Tree) { tr.Put("x/name.", fstree.NewDir(0o755), fstree.NewDir(0o755)) }, err: "/x/name.", names: true},
		{name: "control", put: func(tr *fstree.Tree) { tr.Put("a\tb", file(), nil) }, err: "a\\tb", names: true},
		{name: "symlink", put: func(tr *fstree.Tree) { tr.Put("boot/link", fstree.NewSymlink("x"), fstree.NewDir(0o755)) }, err: "/boot/link: symlink"},
		{name: "symlink skipped", put: func(tr *fstree.Tree) { tr.Put("link", fstree.NewSymlink("x"), nil) }, opts: fat.Options{Symlinks: fat.SymlinkSkip}},
		{name: "dangling", put: func(tr *fstree.Tree) { tr.Put("link", fstree.NewSymlink("nowhere"), nil) }, opts: fat.Options{Symlinks: fat.SymlinkFollow}, err: "/link: symlink to \"nowhere\""},
		{name: "loop", put: func(tr *fstree.Tree) { tr.Put("a/b/up", fstree.NewSymlink("../.."), fstree.NewDir(0o755)) }, opts: fat.Options{Symlinks: fat.SymlinkFollow}, err: "/a/b/up: symlink to \"../..\": a loop"},
		{name: "char device", put: func(tr *fstree.Tree) {
			tr.Put("dev/null", fstree.NewDevice(fstree.TypeCharDev, 0o666, 1, 3), fstree.NewDir(0o755))
		}, err: "/dev/null: char device"},
		{name: "fifo", put: func(tr *fstree.Tree) { tr.Put("fifo", fstree.NewDevice(fstree.TypeFIFO, 0o644, 0, 0), nil) }, err: "/fifo: fifo"},
		{name: "socket skipped", put: func(tr *fstree.Tree) { tr.Put("sock", fstree.NewDevice(fstree.TypeSocket, 0o644, 0, 0), nil) }, opts: fat.Options{SkipSpecial: true}},
		{name: "owner", put: func(tr *fstree.Tree) { n := file(); n.UID = 1000; tr.Put("home/f", n, fstree.NewDir(0o755)) }, err: "/home/f: owned by 1000:0"},
		{name: "owner ignored", put: func(tr *fstree.Tree) { n := file(); n.GID = 5; tr.Put("f", n, nil) }, opts: fat.Options{IgnoreOwner: true}},
		{name: "xattr", put: func(tr *fstree.Tree) { n := file(); n.Xattrs = map[string]string{"user.x": "1"}; tr.Put("f", n, nil) }, err: "/f: has extended attributes"},
		{name: "too big", put: func(tr *fstree.Tree) { tr.Put("huge.img", fstree.NewFile(0o644, 1<<32, nil), nil) }, err: "/huge.img: 4294967296 bytes, FAT files hold at most 4294967295"},
		{name: "label", put: func(tr *fstree.Tree) {}, opts: fat.Options{Label: "A:B"}, err: "label \"A:B\"", names: true},
		{name: "label space", put: func(tr *fstree.Tree) {}, opts: fat.Options{Label: " 0"}, err: "cannot start with a space", names: true},
		{name: "long label", put: func(tr *fstree.Tree) {}, opts: fat.Options{Label: "TWELVE CHARS"}, err: "longer than 11"},
		{name: "type", put: func(tr *fstree.Tree) {}, opts: fat.Options{Type: 12}, err: "type 12"},
		{name: "content larger than size", put: func(tr *fstree.Tree) {
			tr.Put("big", fstree.NewFile(0o644, 10<<20, fstree.Bytes(make([]byte, 10<<20))), nil)
		}, opts: fat.Options{Size: 8 << 20}, err: "content needs 10485760 bytes (10240 clusters of 1024 bytes), the 8388608-byte filesystem"},
		{name: "FAT32 too small", put: func(tr *fstree.Tree) {}, opts: fat.Options{Size: 16 << 20, Type: 32}, err: "FAT32 needs at least 65525"},
		{name: "short content", put: func(tr *fstree.Tree) { tr.Put("short", fstree.NewFile(0o644, 10, fstree.Bytes("abc")), nil) }, err: "/short: content ends before its 10 bytes"},
		{name: "long content", put: func(tr *fstree.Tree) { tr.Put("long", fstree.NewFile(0o644, 2, fstree.Bytes("abc")), nil) }, err: "/long: content is longer than its 2 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			tc.put(tr)
			err := fat.Write(&recorder{}, 0, tr, tc.opts)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			if tc.names != errors.Is(err, fat.ErrInvalidName) {
				t.Errorf("errors.Is(%v, ErrInvalidName) = %v", err, !tc.names)
			}
		})
	}
}

// TestFollowSymlinks checks that followed symlinks become copies of their
// targets, files and directories, relative and absolute.
func TestFollowSymlinks(t *testing.T) {
	tr := fstree.New()
	dir := fstree.NewDir(0o755)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tr.Put("firmware/start4.elf", fstree.NewFile(0o644, 4, fstree.Bytes("elf!")), dir))
	must(tr.Put("firmware/overlays/x.dtbo", fstree.NewFile(0o644, 2, fstree.Bytes("ov")), dir))
	must(tr.Put("start4.elf", fstree.NewSymlink("firmware/start4.elf"), nil))
	must(tr.Put("overlays", fstree.NewSymlink("/firmware/overlays"), nil))
	must(tr.Put("sub/abs", fstree.NewSymlink("/../firmware/start4.elf"), dir))
	must(tr.Put("sub/chain", fstree.NewSymlink("../start4.elf"), dir))

	img, size := writeImage(t, tr, 0, fat.Options{Symlinks: fat.SymlinkFollow}, true)
	fattest.Fsck(t, img, 0, size)
	got := fattest.ReadBack(t, img, 0)
	want := fattest.Want(t, tr, time.Time{})
	elf := want["firmware/start4.elf"]
	for _, p := range []string{"start4.elf", "sub/abs", "sub/chain"} {
		if g := got[p]; g.SHA256 != elf.SHA256 || g.Size != 4 {
			t.Errorf("%s: got %v, want a copy of firmware/start4.elf", p, g)
		}
	}
	if g := got["overlays/x.dtbo"]; g.SHA256 != want["firmware/overlays/x.dtbo"].SHA256 {
		t.Errorf("overlays/x.dtbo: got %v", g)
	}
}
