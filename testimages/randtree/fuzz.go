package randtree

import (
	"encoding/binary"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// Bytes hands out a fuzz input as small values, then zeros once it runs
// out, so that every input, however short, decodes to something.
type Bytes struct{ b []byte }

// NewBytes reads from b.
func NewBytes(b []byte) *Bytes { return &Bytes{b} }

// More reports whether input is left.
func (r *Bytes) More() bool { return len(r.b) > 0 }

// Take returns the next n bytes, or fewer at the end of the input.
func (r *Bytes) Take(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// U8 returns the next byte.
func (r *Bytes) U8() uint8 {
	if b := r.Take(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

// U16 returns the next two bytes, little-endian.
func (r *Bytes) U16() uint16 { return uint16(r.U8()) | uint16(r.U8())<<8 }

// U32 returns the next four bytes, little-endian.
func (r *Bytes) U32() uint32 { return uint32(r.U16()) | uint32(r.U16())<<16 }

// U64 returns the next eight bytes, little-endian.
func (r *Bytes) U64() uint64 {
	var b [8]byte
	copy(b[:], r.Take(8))
	return binary.LittleEndian.Uint64(b[:])
}

// FromBytes builds a hostile tree of at most 48 entries from a fuzz
// input, for writers' fuzz targets: any names (invalid ones included),
// types (an unknown one too), modes, owners, times, xattrs in any
// namespace with values of any size, sizes up to 512 KiB that may
// disagree with the content, hardlinks, device numbers out of range, and
// a directory under a second name. A writer may refuse such a tree; it
// must never panic, and what it accepts must be a valid filesystem.
func FromBytes(r *Bytes) *fstree.Tree {
	t := fstree.New()
	dirs := []*fstree.Node{t.Root}
	var others []*fstree.Node
	xattrNames := []string{"user.", "trusted.", "security.", "security.capability", "system.posix_acl_access", "os2.", ""}
	for i := 0; i < 48 && r.More(); i++ {
		op := r.U8()
		parent := dirs[int(r.U8())%len(dirs)]
		name := string(r.Take(int(r.U8()) + int(op>>7)*200))
		var n *fstree.Node
		switch op % 11 {
		case 0, 1:
			n = fstree.NewDir(0)
		case 2, 3:
			size := int64(r.U16()) * int64(1+r.U8()%8)
			csize := size
			if r.U8() == 0 {
				csize = int64(r.U16()) // content that disagrees with the size
			}
			n = fstree.NewFile(0, size, Content{Seed: uint64(r.U8()), Size: csize, RunShift: uint(r.U8() % 6), ZeroOdds: r.U8()})
		case 4:
			n = fstree.NewSymlink(string(r.Take(int(r.U16() % 4200))))
		case 5:
			n = fstree.NewDevice(fstree.Type(4+r.U8()%2), 0, uint32(r.U16()), r.U32()%(1<<21))
		case 6:
			n = fstree.NewDevice(fstree.Type(6+r.U8()%3), 0, 0, 0) // FIFO, socket, or an unknown type
		case 7:
			if len(others) > 0 {
				n = others[int(r.U8())%len(others)] // a hardlink
			}
		case 8:
			all := append(dirs[:len(dirs):len(dirs)], others...)
			target := all[int(r.U8())%len(all)]
			if target.Xattrs == nil {
				target.Xattrs = map[string]string{}
			}
			k := xattrNames[int(r.U8())%len(xattrNames)] + string(r.Take(int(r.U8()%40)))
			target.Xattrs[k] = string(r.Take(int(r.U16() % 4500)))
			continue
		case 9:
			all := append(dirs[:len(dirs):len(dirs)], others...)
			target := all[int(r.U8())%len(all)]
			target.UID, target.GID = r.U32(), r.U32()
			target.Mtime = time.Unix(int64(int32(r.U32()))*4, 0)
			continue
		case 10:
			n = dirs[int(r.U8())%len(dirs)] // a directory under a second name
		}
		if n == nil {
			continue
		}
		n.Mode = uint32(r.U16()) & fstree.ModeMask
		n.UID, n.GID = r.U32(), r.U32()
		n.Mtime = time.Unix(0, int64(r.U64()))
		parent.SetChild(name, n)
		if n.Type == fstree.TypeDir {
			dirs = append(dirs, n)
		} else {
			others = append(others, n)
		}
	}
	return t
}
