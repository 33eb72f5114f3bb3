package ext4

import (
	"encoding/binary"
	"os"
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

func (r *fuzzReader) u64() uint64 {
	var b [8]byte
	copy(b[:], r.bytes(8))
	return binary.LittleEndian.Uint64(b[:])
}

// fuzzTree builds a tree of at most 48 entries from data: any names
// (invalid ones included), types, modes, owners, times, xattrs, sizes up
// to 256 KiB, hardlinks, device numbers out of range.
func fuzzTree(data []byte) *fstree.Tree {
	r := &fuzzReader{data}
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
			n = fstree.NewDir(0)
		case 2, 3:
			size := int64(r.u16()) * int64(1+r.u8()%4)
			n = fstree.NewFile(0, size, randtree.Content{Seed: uint64(r.u8()), Size: size, RunShift: uint(r.u8() % 6), ZeroOdds: r.u8()})
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
			n = dirs[int(r.u8())%len(dirs)] // a directory under a second name
		}
		if n == nil {
			continue
		}
		n.Mode = uint32(r.u16()) & fstree.ModeMask
		n.UID, n.GID = r.u32(), r.u32()
		n.Mtime = time.Unix(0, int64(r.u64()))
		parent.SetChild(name, n)
		if n.Type == fstree.TypeDir {
			dirs = append(dirs, n)
		} else {
			others = append(others, n)
		}
	}
	return t
}

// FuzzWrite feeds trees built from arbitrary bytes to the writer: it must
// not panic, and any image it returns must be e2fsck clean.
func FuzzWrite(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x03abc\x02\x00\x01xyz\xff\xff\x01\x00\x00"))
	f.Add([]byte("\x02\x00\x05hello\x00\x10\x01\x07\x80\xa4\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x01\x00\x05value\x05\x00"))
	f.Add([]byte("\x04\x00\x04link\x40\x00/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0123456789012345678901234567890123456789"))
	f.Add([]byte("\x05\x00\x03dev\x00\xff\x0f\xff\xff\x0f\x00\x09\x00\x02d2\x00"))
	f.Add([]byte("\x81\x00\xffname"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := fuzzTree(data)
		var r recorder
		if err := Write(&r, 0, tr, Options{Time: testTime}); err != nil {
			return // refusing a tree is fine; a panic or a bad image is not
		}
		size, err := MinSize(tr, Options{})
		if err != nil {
			t.Fatalf("Write succeeded but MinSize failed: %v", err)
		}
		img := t.TempDir() + "/fuzz.ext4"
		out, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		for b, blk := range r.data {
			if _, err := out.WriteAt(blk, b*blockSize); err != nil {
				t.Fatal(err)
			}
		}
		if err := out.Truncate(size); err != nil {
			t.Fatal(err)
		}
		out.Close()
		requireClean(t, img)
	})
}
