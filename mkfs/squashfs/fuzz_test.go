package squashfs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// fuzzReader hands out the fuzz input as small values, then zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) more() bool { return len(r.b) > 0 }

func (r *fuzzReader) bytes(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *fuzzReader) u8() uint8 {
	if b := r.bytes(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

func (r *fuzzReader) u16() uint16 { return uint16(r.u8()) | uint16(r.u8())<<8 }
func (r *fuzzReader) u32() uint32 { return uint32(r.u16()) | uint32(r.u16())<<16 }

// fuzzInput builds options and a tree of at most 48 entries from data:
// any names (invalid ones included), types, modes, owners, times,
// xattrs in any namespace, sizes that may disagree with the content,
// hardlinks, device numbers out of range, block sizes and levels that
// may be invalid.
func fuzzInput(data []byte) (*fstree.Tree, Options) {
	r := &fuzzReader{data}
	opts := Options{
		Compression: []string{"zstd", "xz", "gzip", "lz4", "", "lzo"}[r.u8()%6],
		BlockSize:   []int{0, 4096, 8192, 65536, 1 << 20, 3000, 2 << 20}[r.u8()%7],
		Level:       int(r.u8()%12) - 1,
		DropXattrs:  r.u8()%2 == 0,
		Time:        time.Unix(int64(r.u32()), 0),
	}
	if opts.Compression == "xz" && opts.Level != -1 {
		opts.Level = 0
	}
	t := fstree.New()
	dirs := []*fstree.Node{t.Root}
	var others []*fstree.Node
	xattrNames := []string{"user.", "trusted.", "security.", "security.capability", "system.posix_acl_access", "os2.", ""}
	for i := 0; i < 48 && r.more(); i++ {
		op := r.u8()
		parent := dirs[int(r.u8())%len(dirs)]
		name := string(r.bytes(int(r.u8()) + int(op>>7)*200))
		var n *fstree.Node
		switch op % 10 {
		case 0, 1:
			n = fstree.NewDir(uint32(r.u16()))
		case 2, 3:
			size := int64(r.u16()) * int64(1+r.u8()%8)
			csize := size
			if r.u8() == 0 {
				csize = int64(r.u16()) // content that disagrees with the size
			}
			n = fstree.NewFile(uint32(r.u16()), size, randtree.Content{Seed: uint64(r.u8()), Size: csize, RunShift: uint(r.u8() % 6), ZeroOdds: r.u8()})
		case 4:
			n = fstree.NewSymlink(string(r.bytes(int(r.u16() % 4200))))
		case 5:
			n = fstree.NewDevice(fstree.Type(4+r.u8()%2), 0, uint32(r.u16()), r.u32()%(1<<21))
		case 6:
			n = fstree.NewDevice(fstree.Type(6+r.u8()%3), 0, 0, 0) // FIFO, socket, or an unknown type
		case 7:
			if len(others) > 0 {
				n = others[int(r.u8())%len(others)] // a hardlink
			}
		case 8:
			all := append(dirs[:len(dirs):len(dirs)], others...)
			target := all[int(r.u8())%len(all)]
			if target.Xattrs == nil {
				target.Xattrs = map[string]string{}
			}
			k := xattrNames[int(r.u8())%len(xattrNames)] + string(r.bytes(int(r.u8()%40)))
			target.Xattrs[k] = string(r.bytes(int(r.u16() % 4500)))
			continue
		case 9:
			all := append(dirs[:len(dirs):len(dirs)], others...)
			target := all[int(r.u8())%len(all)]
			target.UID, target.GID = r.u32(), r.u32()
			target.Mtime = time.Unix(int64(int32(r.u32()))*4, 0)
			continue
		}
		if n == nil {
			continue
		}
		parent.SetChild(name, n)
		if n.Type == fstree.TypeDir {
			dirs = append(dirs, n)
		} else {
			others = append(others, n)
		}
	}
	return t, opts
}

// FuzzWrite writes arbitrary trees under arbitrary options: the writer
// may refuse them, but never panics, and what it writes unsquashfs reads
// back as the tree (checked when unsquashfs is installed).
func FuzzWrite(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x00\x00\x00\x00\x02\x00\x03abc\x10\x00\x05\x00\x00\x04\x00\x01x\x05\x00\x00\x01"))
	f.Add(bytes.Repeat([]byte{2, 0, 5, 'n', 'a', 'm', 'e', 0xff, 0x7f, 3, 1, 0x40, 0x80}, 8))
	f.Add(bytes.Repeat([]byte{8, 0, 1, 'x', 3, 0, 'a', 'b', 'c', 9, 1}, 12))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, opts := fuzzInput(data)
		img := filepath.Join(dir, "fuzz.squashfs")
		out, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if err := Write(out, 0, tr, opts); err != nil {
			return
		}
		w := want(t, tr, opts)
		requireSame(t, "unsquashfs -pf", w, listPF(t, img), fields{sha: true, links: true, mtime: 1e9, symlinkMtime: true})
	})
}
