package erofs

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// TestRandomTrees writes seeded random trees with every entry kind and
// checks each with every judge: fsck.erofs, its extraction, and Linux.
func TestRandomTrees(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 15
	}
	fsckErofs(t)
	dir := t.TempDir()
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ropts := randtree.Options{MaxFileSize: 256 << 10, MaxXattrBytes: 8000}
			switch {
			case seed%25 == 0:
				ropts.Entries = 3000 // directories of many blocks
				ropts.MaxFileSize = 8 << 10
			case seed%10 == 0:
				ropts.MaxFileSize = 3 << 20 // files of many blocks
			}
			tr := randtree.New(seed, ropts)
			opts := Options{Time: testTime, Seed: []byte{byte(seed)}}
			if seed%3 == 0 {
				// A build time that most nodes have: compact inodes.
				opts.Time = tr.Root.Mtime
			}
			img, err := writeImage(t, dir, tr, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer os.Remove(img)
			judge(t, img, tr, opts)
		})
	}
}

// everyKind is a tree holding each kind of entry in its corner cases.
func everyKind(t testing.TB) *fstree.Tree {
	tr := fstree.New()
	put := func(p string, n *fstree.Node) {
		t.Helper()
		if n.Mtime.IsZero() {
			n.Mtime = testTime.Add(-1e9*3600 - 123)
		}
		if err := tr.Put(p, n, fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	file := func(size int64, c fstree.Content) *fstree.Node { return fstree.NewFile(0o644, size, c) }
	put("empty", file(0, nil))
	put("small", file(5, fstree.Bytes("hello")))
	put("block", file(4096, randtree.Content{Seed: 1, Size: 4096}))                // one whole block, no tail
	put("blocks", file(4<<17, randtree.Content{Seed: 1, Size: 4 << 17}))           // whole blocks
	put("tail", file(3*4096+4000, randtree.Content{Seed: 5, Size: 3*4096 + 4000})) // a tail too big to inline
	put("sparse", file(10<<17+77, randtree.Content{Seed: 2, Size: 10<<17 + 77, ZeroOdds: 200}))
	put("zeros", file(3<<17+5, randtree.Content{Seed: 3, Size: 3<<17 + 5, ZeroOdds: 255}))
	big := file(1<<20+3, randtree.Content{Seed: 4, Size: 1<<20 + 3})
	big.Xattrs = map[string]string{"security.capability": "\x01\x00\x00\x02" + strings.Repeat("\x20", 16), "user.mime": "x"}
	put("bin/ping", big)
	put("bin/ping6", big) // a hardlink with xattrs
	sh := file(7, fstree.Bytes("#!/bin\n"))
	put("bin/sh", sh)
	put("bin/dash", sh) // a hardlink without xattrs
	setuid := file(3, fstree.Bytes("su\n"))
	setuid.Mode = 0o4755
	setuid.UID, setuid.GID = 0, 42
	put("bin/su", setuid)
	put("l/short", fstree.NewSymlink("../small"))
	put("l/long", fstree.NewSymlink(strings.Repeat("x/", 2000)+"y"))
	ln := fstree.NewSymlink("target")
	put("l/a", ln)
	put("l/b", ln) // a hardlinked symlink
	put("dev/null", fstree.NewDevice(fstree.TypeCharDev, 0o666, 1, 3))
	put("dev/big", fstree.NewDevice(fstree.TypeBlockDev, 0o660, 4095, 1<<20-1))
	fifo := fstree.NewDevice(fstree.TypeFIFO, 0o600, 0, 0)
	put("run/fifo", fifo)
	put("run/fifo2", fifo)
	sock := fstree.NewDevice(fstree.TypeSocket, 0o777, 0, 0)
	sock.Xattrs = map[string]string{"trusted.overlay.opaque": "y"}
	put("run/sock", sock)
	tmp := fstree.NewDir(0o1777)
	tmp.UID, tmp.GID = 65534, 4294967294
	// Xattrs bigger than a block: the inode takes blocks of its own.
	tmp.Xattrs = map[string]string{"user.big": strings.Repeat("v", 3500), "user.big2": strings.Repeat("w", 3500)}
	put("tmp", tmp)
	// Shared xattrs: the same pairs on many inodes.
	for i := range 20 {
		f := file(int64(i), fstree.Bytes(strings.Repeat("s", i)))
		f.Xattrs = map[string]string{"security.selinux": "system_u:object_r:bin_t:s0", "user.i": fmt.Sprint(i)}
		put(fmt.Sprintf("shared/%02d", i), f)
	}
	acl := fstree.NewDir(0o750)
	acl.Xattrs = map[string]string{"system.posix_acl_default": "\x02\x00\x00\x00\x01\x00\x07\x00\xff\xff\xff\xff\x04\x00\x05\x00\xff\xff\xff\xff\x20\x00\x05\x00\xff\xff\xff\xff"}
	put("acl", acl)
	// Names that sort before "." and "..".
	for _, name := range []string{"-", "!bang", "#", "+plus", ",comma", " space"} {
		put("sorted/"+name, file(1, fstree.Bytes("x")))
	}
	many := fstree.NewDir(0o755)
	put("many", many)
	for i := range 600 {
		put(fmt.Sprintf("many/%04d-%s", i, strings.Repeat("n", i%50)), file(0, nil))
	}
	old := fstree.NewDir(0o755)
	old.Mtime = testTime.AddDate(-60, 0, 0) // before 1970: clamped to 0
	put("old", old)
	future := file(1, fstree.Bytes("f"))
	future.Mtime = time.Date(2200, 1, 1, 0, 0, 0, 999999999, time.UTC) // past 2038 and 2106
	put("future", future)
	tr.Root.Mtime = testTime
	return tr
}

// TestEveryKind writes everyKind and checks it with every judge.
func TestEveryKind(t *testing.T) {
	tr := everyKind(t)
	for _, opts := range []Options{{Time: testTime}, {Time: testTime.Add(-1e9*3600 - 123)}} {
		t.Run(opts.Time.String(), func(t *testing.T) {
			img, err := writeImage(t, t.TempDir(), tr, opts)
			if err != nil {
				t.Fatal(err)
			}
			judge(t, img, tr, opts)
		})
	}
}

// TestDeterministic writes the same tree twice, through MinSize and
// WriteAt and through Write: the bytes must be the same.
func TestDeterministic(t *testing.T) {
	tr := randtree.New(7, randtree.Options{Entries: 300, MaxFileSize: 2 << 20})
	var images [][]byte
	for i := range 2 {
		opts := Options{Time: testTime, Seed: []byte("seed"), Label: "root"}
		w := &bufWriterAt{}
		if i == 1 {
			f := New(tr, opts)
			size, err := f.MinSize()
			if err != nil {
				t.Fatal(err)
			}
			if err := f.WriteAt(w, 0, size); err != nil {
				t.Fatal(err)
			}
		} else if err := Write(w, 0, tr, opts); err != nil {
			t.Fatal(err)
		}
		images = append(images, w.b)
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Fatalf("write 1 differs from write 0 (%d vs %d bytes)", len(images[1]), len(images[0]))
	}
}

// bufWriterAt is an io.WriterAt over a growing buffer.
type bufWriterAt struct{ b []byte }

func (w *bufWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if need := off + int64(len(p)); need > int64(len(w.b)) {
		w.b = append(w.b, make([]byte, need-int64(len(w.b)))...)
	}
	copy(w.b[off:], p)
	return len(p), nil
}
