package ext4

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

const (
	xattrMagic     = 0xea020000
	xattrBlockHead = 32 // ext4_xattr_header
	xattrEntryHead = 16 // ext4_xattr_entry without the name
)

// xattr is one attribute in ext4's form: a name index standing for the
// namespace prefix, the rest of the name, and the value as stored.
type xattr struct {
	index uint8
	name  string
	value []byte
}

// xattrPrefixes maps namespace prefixes to ext4 name indexes. The POSIX
// ACL names are whole names with an empty suffix.
var xattrPrefixes = []struct {
	prefix string
	index  uint8
}{
	{"system.posix_acl_access", 2},
	{"system.posix_acl_default", 3},
	{"user.", 1},
	{"trusted.", 4},
	{"security.", 6},
}

func (x xattr) entrySize() int { return xattrEntryHead + pad4(len(x.name)) }
func pad4(n int) int           { return (n + 3) &^ 3 }

// toXattrs converts a node's xattr map into ext4 attributes sorted the way
// the kernel searches an xattr block: by index, name length, then name.
func toXattrs(m map[string]string) ([]xattr, error) {
	out := make([]xattr, 0, len(m))
	for k, v := range m {
		var x xattr
		found := false
		for _, p := range xattrPrefixes {
			if strings.HasPrefix(k, p.prefix) && (p.index > 3 || p.index == 1 || k == p.prefix) {
				x = xattr{index: p.index, name: k[len(p.prefix):], value: []byte(v)}
				found = true
				break
			}
		}
		if !found || (x.index != 2 && x.index != 3 && x.name == "") {
			return nil, fmt.Errorf("xattr %q: unsupported name", k)
		}
		if len(x.name) > 255 {
			return nil, fmt.Errorf("xattr %q: name longer than 255 bytes", k)
		}
		if x.index == 2 || x.index == 3 {
			acl, err := aclToDisk([]byte(v))
			if err != nil {
				return nil, fmt.Errorf("xattr %q: %w", k, err)
			}
			x.value = acl
		}
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b xattr) int {
		if a.index != b.index {
			return int(a.index) - int(b.index)
		}
		if len(a.name) != len(b.name) {
			return len(a.name) - len(b.name)
		}
		return strings.Compare(a.name, b.name)
	})
	return out, nil
}

// aclToDisk converts a POSIX ACL from the xattr form the VFS (and tar)
// uses (version 2, 8-byte entries) into ext4's on-disk form (version 1,
// 4-byte entries for the tags that carry no id).
func aclToDisk(v []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(v) < 4 || (len(v)-4)%8 != 0 || le.Uint32(v) != 2 {
		return nil, fmt.Errorf("not a version 2 POSIX ACL")
	}
	out := le.AppendUint32(nil, 1)
	for p := v[4:]; len(p) > 0; p = p[8:] {
		tag, perm, id := le.Uint16(p), le.Uint16(p[2:]), le.Uint32(p[4:])
		out = le.AppendUint16(out, tag)
		out = le.AppendUint16(out, perm)
		switch tag {
		case 0x02, 0x08: // ACL_USER, ACL_GROUP
			out = le.AppendUint32(out, id)
		case 0x01, 0x04, 0x10, 0x20:
		default:
			return nil, fmt.Errorf("unknown ACL tag %#x", tag)
		}
	}
	return out, nil
}

// splitXattrs puts attributes into the inode's spare space in order while
// they fit and the rest into an xattr block. It returns the in-inode
// region (nil when empty) and the block's attributes.
func splitXattrs(xs []xattr) (inline []xattr, block []xattr) {
	room := xattrInodeSize - 4 - 4 // magic, end marker
	for i, x := range xs {
		need := x.entrySize() + pad4(len(x.value))
		if need > room {
			return xs[:i], xs[i:]
		}
		room -= need
	}
	return xs, nil
}

// blockXattrsFit reports whether xs fit in one xattr block.
func blockXattrsFit(xs []xattr) bool {
	need := xattrBlockHead + 4
	for _, x := range xs {
		need += x.entrySize() + pad4(len(x.value))
	}
	return need <= blockSize
}

// encodeXattrs lays out entries from p[first:] and values from the end of
// p down; value offsets count from base. It returns the entries' hashes.
func encodeXattrs(p []byte, first, base int, xs []xattr) []uint32 {
	le := binary.LittleEndian
	hashes := make([]uint32, len(xs))
	e, v := first, len(p)
	for i, x := range xs {
		vsize := len(x.value)
		voff := 0
		if vsize > 0 {
			v -= pad4(vsize)
			copy(p[v:], x.value)
			voff = v - base
		}
		p[e] = uint8(len(x.name))
		p[e+1] = x.index
		le.PutUint16(p[e+2:], uint16(voff))
		le.PutUint32(p[e+4:], 0) // e_value_inum
		le.PutUint32(p[e+8:], uint32(vsize))
		h := xattrHash(x)
		hashes[i] = h
		le.PutUint32(p[e+12:], h)
		copy(p[e+16:], x.name)
		e += x.entrySize()
	}
	return hashes
}

// xattrHash is ext4_xattr_hash_entry.
func xattrHash(x xattr) uint32 {
	var h uint32
	for i := 0; i < len(x.name); i++ {
		h = h<<5 ^ h>>27 ^ uint32(x.name[i])
	}
	v := x.value
	for i := 0; i < len(v); i += 4 {
		var w [4]byte
		copy(w[:], v[i:])
		h = h<<16 ^ h>>16 ^ binary.LittleEndian.Uint32(w[:])
	}
	return h
}

// inodeXattrs encodes the in-inode region (xattrInodeSize bytes).
func inodeXattrs(xs []xattr) []byte {
	if len(xs) == 0 {
		return nil
	}
	p := make([]byte, xattrInodeSize)
	binary.LittleEndian.PutUint32(p, xattrMagic)
	encodeXattrs(p, 4, 4, xs)
	return p
}

// xattrBlock encodes an xattr block at block number blk into p.
func xattrBlock(p []byte, xs []xattr, blk int64, fsSeed uint32) {
	clear(p)
	le := binary.LittleEndian
	le.PutUint32(p[0:], xattrMagic)
	le.PutUint32(p[4:], 1) // h_refcount
	le.PutUint32(p[8:], 1) // h_blocks
	hashes := encodeXattrs(p, xattrBlockHead, 0, xs)
	var h uint32
	for _, eh := range hashes {
		if eh == 0 {
			h = 0
			break
		}
		h = h<<16 ^ h>>16 ^ eh
	}
	le.PutUint32(p[12:], h)
	var b [8]byte
	le.PutUint64(b[:], uint64(blk))
	c := crc32c(fsSeed, b[:])
	le.PutUint32(p[16:], crc32c(c, p))
}
