package squashfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/testimages"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// randomOptions varies what the random trees are written with: every
// compression, block sizes from the smallest (many blocks, many
// fragments) to the largest.
func randomOptions(seed uint64) Options {
	comps := []string{"zstd", "xz", "gzip", "lz4"}
	sizes := []int{4096, 8192, 32768, 131072, 1 << 20}
	o := Options{Compression: comps[seed%4], BlockSize: sizes[seed/4%5]}
	switch o.Compression {
	case "zstd":
		o.Level = []int{1, 3, 9, 15}[seed/20%4]
	case "gzip":
		o.Level = 1 + int(seed/20%9)
	case "lz4":
		o.Level = int(seed / 20 % 2)
	}
	return o
}

// TestRandomTrees writes seeded random trees with every entry kind and
// checks what unsquashfs reads back against each tree, in every field
// squashfs keeps: names and types, modes with setuid, setgid and sticky,
// owners, mtimes, sizes and content (holes included), symlink targets,
// device numbers, hardlinks, and (extracted as root) xattrs; rdsquashfs
// checks link counts on some.
func TestRandomTrees(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	unsquashfs(t)
	dir := t.TempDir()
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel() // overlaps one tree's judging with another's writing
			ropts := randtree.Options{MaxFileSize: 256 << 10}
			if seed%10 == 0 {
				ropts.MaxFileSize = 3 << 20 // files of many blocks
			}
			if seed%25 == 0 {
				ropts.Entries = 1500 // directories of several metadata blocks
				ropts.MaxFileSize = 8 << 10
			}
			tr := randtree.New(seed, ropts)
			opts := randomOptions(seed)
			img, err := writeImage(t, dir, tr, opts)
			if err != nil {
				t.Fatalf("%+v: %v", opts, err)
			}
			defer os.Remove(img)
			opts.Time = testTime
			w := want(t, tr, opts)
			testimages.RequireSame(t, "unsquashfs -lln", w, listLLN(t, img), testimages.Fields{Mtime: 60e9, SymlinkMtime: true})
			testimages.RequireSame(t, "unsquashfs -pf", w, listPF(t, img), testimages.Fields{SHA: true, Links: true, Mtime: 1e9, SymlinkMtime: true})
			testimages.RequireSame(t, "unsquashfs -d", w, extract(t, img, tr), testimages.Fields{SHA: true, Xattrs: true, Links: true, Mtime: 1e9})
			if seed%8 == 0 {
				requireLinkCounts(t, img, tr, 10)
			}
		})
	}
}

// TestEveryKind writes one tree holding each kind of entry in its corner
// cases and checks it with every judge, link counts included.
func TestEveryKind(t *testing.T) {
	tr := fstree.New()
	put := func(p string, n *fstree.Node) {
		t.Helper()
		if n.Mtime.IsZero() {
			n.Mtime = testTime.Add(-1e9 * 3600)
		}
		if err := tr.Put(p, n, fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	file := func(size int64, c fstree.Content) *fstree.Node { return fstree.NewFile(0o644, size, c) }
	put("empty", file(0, nil))
	put("small", file(5, fstree.Bytes("hello")))
	put("blocks", file(4<<17, randtree.Content{Seed: 1, Size: 4 << 17}))                        // whole blocks, no tail
	put("sparse", file(10<<17+77, randtree.Content{Seed: 2, Size: 10<<17 + 77, ZeroOdds: 200})) // holes
	put("zeros", file(3<<17+5, randtree.Content{Seed: 3, Size: 3<<17 + 5, ZeroOdds: 255}))      // all holes
	big := file(1<<20, randtree.Content{Seed: 4, Size: 1 << 20})
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
	// Values that together cross metadata blocks of the xattr table (each
	// below what one ext4 block holds, for the extraction).
	tmp.Xattrs = map[string]string{"user.big": strings.Repeat("v", 3500)}
	put("tmp", tmp)
	d4 := fstree.NewDir(0o700)
	d4.Xattrs = map[string]string{"user.big": strings.Repeat("w", 3500)}
	put("d1/d2/d3/d4", d4)
	bigx := file(1, fstree.Bytes("z"))
	bigx.Xattrs = map[string]string{"user.big": strings.Repeat("z", 3500), "trusted.t": ""}
	put("bigx", bigx)
	old := fstree.NewDir(0o755)
	old.Mtime = testTime.AddDate(-60, 0, 0) // before 1970: clamped to 0
	put("old", old)
	tr.Root.Mtime = testTime

	for _, comp := range []string{"zstd", "xz", "gzip", "lz4"} {
		t.Run(comp, func(t *testing.T) {
			opts := Options{Compression: comp}
			img, err := writeImage(t, t.TempDir(), tr, opts)
			if err != nil {
				t.Fatal(err)
			}
			opts.Time = testTime
			exec.Command("cp", img, "/tmp/sqt/every-"+comp+".sqfs").Run() // DEBUG
			w := want(t, tr, opts)
			testimages.RequireSame(t, "unsquashfs -lln", w, listLLN(t, img), testimages.Fields{Mtime: 60e9, SymlinkMtime: true})
			testimages.RequireSame(t, "unsquashfs -pf", w, listPF(t, img), testimages.Fields{SHA: true, Links: true, Mtime: 1e9, SymlinkMtime: true})
			testimages.RequireSame(t, "unsquashfs -d", w, extract(t, img, tr), testimages.Fields{SHA: true, Xattrs: true, Links: true, Mtime: 1e9})
			requireLinkCounts(t, img, tr, 100)
			out, err := exec.Command(unsquashfs(t), "-s", img).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Compression "+comp+"\n") {
				t.Fatalf("unsquashfs -s: %v; want compression %s\n%s", err, comp, out)
			}
		})
	}
}

// TestDeterministic writes the same tree twice, with different numbers of
// compressing goroutines, and through the spool (MinSize, WriteAt) and
// straight into the target: the bytes must be the same.
func TestDeterministic(t *testing.T) {
	tr := randtree.New(7, randtree.Options{Entries: 300, MaxFileSize: 2 << 20})
	var images [][]byte
	for i, workers := range []int{1, 3, 8} {
		opts := Options{Workers: workers, Time: testTime, BlockSize: 16384}
		var b bytes.Buffer
		w := &bufWriterAt{b: &b}
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
		images = append(images, b.Bytes())
	}
	for i := 1; i < len(images); i++ {
		if !bytes.Equal(images[0], images[i]) {
			t.Fatalf("write %d differs from write 0 (%d vs %d bytes)", i, len(images[i]), len(images[0]))
		}
	}
}

// bufWriterAt is an io.WriterAt over a growing buffer that remembers the
// furthest byte written.
type bufWriterAt struct {
	b   *bytes.Buffer
	end int64
}

func (w *bufWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if need := off + int64(len(p)); need > int64(w.b.Len()) {
		w.b.Write(make([]byte, need-int64(w.b.Len())))
	}
	copy(w.b.Bytes()[off:], p)
	w.end = max(w.end, off+int64(len(p)))
	return len(p), nil
}

// TestSizes checks MinSize against what is written, a filesystem at an
// offset inside a bigger region, and the error for a region too small,
// which names both sizes and writes nothing past the region.
func TestSizes(t *testing.T) {
	tr := randtree.New(11, randtree.Options{Entries: 200, NoSparse: true})
	opts := Options{Time: testTime}
	need, err := MinSize(tr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if need%4096 != 0 {
		t.Fatalf("MinSize %d: not a multiple of 4 KiB", need)
	}
	const off = 1 << 20
	for _, spool := range []bool{false, true} {
		t.Run(fmt.Sprint("spool=", spool), func(t *testing.T) {
			write := func(w *bufWriterAt, size int64) error {
				f := New(tr, opts)
				if spool {
					got, err := f.MinSize()
					if err != nil {
						t.Fatal(err)
					}
					if got != need {
						t.Fatalf("MinSize %d, then %d", need, got)
					}
				}
				return f.WriteAt(w, off, size)
			}
			w := &bufWriterAt{b: &bytes.Buffer{}}
			if err := write(w, need+8192); err != nil {
				t.Fatal(err)
			}
			if w.end > off+need {
				t.Fatalf("wrote up to %d, MinSize said %d", w.end-off, need)
			}
			img := w.b.Bytes()[off:]
			f, err := os.CreateTemp(t.TempDir(), "*.squashfs")
			if err != nil {
				t.Fatal(err)
			}
			f.Write(img)
			f.Close()
			opts := opts
			testimages.RequireSame(t, "unsquashfs -pf", want(t, tr, opts), listPF(t, f.Name()), testimages.Fields{SHA: true, Links: true, Mtime: 1e9, SymlinkMtime: true})

			w = &bufWriterAt{b: &bytes.Buffer{}}
			small := need - 8192
			err = write(w, small)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprint(need)) || !strings.Contains(err.Error(), fmt.Sprint(small)) {
				t.Fatalf("size %d of %d: error %v, want one naming both sizes", small, need, err)
			}
			if w.end > off+small {
				t.Fatalf("a failed write went up to %d, past the region's %d bytes", w.end-off, small)
			}
		})
	}
}

// TestInvalid checks that trees and options squashfs cannot write are
// refused with an error naming the problem, before anything is written.
func TestInvalid(t *testing.T) {
	node := func(f func(n *fstree.Node)) func(*fstree.Tree) {
		return func(tr *fstree.Tree) {
			n := fstree.NewFile(0o644, 0, nil)
			f(n)
			if err := tr.Put("x", n, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		tree func(*fstree.Tree)
		opts Options
		msg  string
	}{
		{"system xattr", node(func(n *fstree.Node) { n.Xattrs = map[string]string{"system.posix_acl_access": "x"} }), Options{}, "system.posix_acl_access"},
		{"bare prefix", node(func(n *fstree.Node) { n.Xattrs = map[string]string{"user.": "x"} }), Options{}, `"user."`},
		{"empty symlink", func(tr *fstree.Tree) { tr.Put("x", fstree.NewSymlink(""), nil) }, Options{}, "empty target"},
		{"long symlink", func(tr *fstree.Tree) { tr.Put("x", fstree.NewSymlink(strings.Repeat("a", 4096)), nil) }, Options{}, "4096 bytes"},
		{"device", func(tr *fstree.Tree) { tr.Put("x", fstree.NewDevice(fstree.TypeCharDev, 0, 4096, 0), nil) }, Options{}, "4096,0"},
		{"no content", node(func(n *fstree.Node) { n.Size = 10 }), Options{}, "no content"},
		{"short content", node(func(n *fstree.Node) { n.Size, n.Content = 10, fstree.Bytes("abc") }), Options{}, "read content"},
		{"long content", node(func(n *fstree.Node) { n.Size, n.Content = 2, fstree.Bytes("abc") }), Options{}, "longer than its size"},
		{"block size", nil, Options{BlockSize: 3000}, "block size 3000"},
		{"big block size", nil, Options{BlockSize: 2 << 20}, "block size"},
		{"compression", nil, Options{Compression: "lzo"}, `"lzo"`},
		{"zstd level", nil, Options{Level: 23}, "zstd level 23"},
		{"gzip level", nil, Options{Compression: "gzip", Level: 10}, "gzip level 10"},
		{"xz level", nil, Options{Compression: "xz", Level: 6}, "xz level 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			if tc.tree != nil {
				tc.tree(tr)
			}
			w := &bufWriterAt{b: &bytes.Buffer{}}
			err := Write(w, 0, tr, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want one mentioning %s", err, tc.msg)
			}
			if strings.HasPrefix(tc.name, "no content") || tc.tree == nil {
				if w.end != 0 {
					t.Fatalf("wrote %d bytes before failing", w.end)
				}
			}
		})
	}
}

// TestDropXattrs leaves out what squashfs cannot store when asked, and
// keeps the rest.
func TestDropXattrs(t *testing.T) {
	tr := fstree.New()
	n := fstree.NewFile(0o644, 0, nil)
	n.Xattrs = map[string]string{"system.posix_acl_access": "\x02\x00\x00\x00", "user.keep": "1"}
	if err := tr.Put("f", n, nil); err != nil {
		t.Fatal(err)
	}
	img, err := writeImage(t, t.TempDir(), tr, Options{DropXattrs: true})
	if err != nil {
		t.Fatal(err)
	}
	got := extract(t, img, tr)
	if x := got[1].Xattrs; len(x) != 1 || x["user.keep"] != "1" {
		t.Fatalf("xattrs read back: %q, want only user.keep", x)
	}
}

// TestManyOwners fills the id table to its limit, and one past it.
func TestManyOwners(t *testing.T) {
	if testing.Short() {
		t.Skip("65,535 entries")
	}
	for _, n := range []int{65535, 65536} {
		tr := fstree.New()
		d := fstree.NewDir(0o755)
		if err := tr.Put("d", d, nil); err != nil {
			t.Fatal(err)
		}
		for i := range n - 1 { // the root and d are uid 0 too
			f := fstree.NewDevice(fstree.TypeFIFO, 0o644, 0, 0)
			f.UID = uint32(i + 1)
			d.SetChild(fmt.Sprint(i), f)
		}
		img, err := writeImage(t, t.TempDir(), tr, Options{Compression: "lz4"})
		if n > 65535 {
			if err == nil || !strings.Contains(err.Error(), "65535") {
				t.Fatalf("%d owners: error %v, want one naming the limit", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		testimages.RequireSame(t, "unsquashfs -pf", want(t, tr, Options{Time: testTime}), listPF(t, img), testimages.Fields{Mtime: 1e9})
	}
}

// TestHugeFile writes a file past 4 GiB (extended inode, 64-bit size),
// mostly holes so that it costs little compression and space.
func TestHugeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("reads back 4 GiB")
	}
	tr := fstree.New()
	const huge = 4<<30 + 12345
	// Runs of 32 chunks (128 KiB), a few of them data, the rest holes.
	n := fstree.NewFile(0o600, huge, randtree.Content{Seed: 2, Size: huge, RunShift: 5, ZeroOdds: 254})
	n.Mtime = testTime
	if err := tr.Put("huge", n, nil); err != nil {
		t.Fatal(err)
	}
	tr.Root.Mtime = testTime
	img, err := writeImage(t, t.TempDir(), tr, Options{Compression: "lz4"})
	if err != nil {
		t.Fatal(err)
	}
	w := want(t, tr, Options{Time: testTime})
	testimages.RequireSame(t, "unsquashfs -lln", w, listLLN(t, img), testimages.Fields{Mtime: 60e9})
	testimages.RequireSame(t, "unsquashfs -d", w, extract(t, img, tr), testimages.Fields{SHA: true, Mtime: 1e9})
}
