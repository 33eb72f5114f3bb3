package erofs

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// xattrPrefixes are the name prefixes EROFS stores as an index
// (EROFS_XATTR_INDEX_*); the rest of the name follows. The POSIX ACLs are
// whole names, stored with an empty rest. Linux before 6.4 knows no other
// prefix, so other names cannot be stored.
var xattrPrefixes = []struct {
	prefix string
	index  uint8
	whole  bool // the prefix is the whole name
}{
	{"user.", 1, false},
	{"system.posix_acl_access", 2, true},
	{"system.posix_acl_default", 3, true},
	{"trusted.", 4, false},
	{"security.", 6, false},
}

// xattrEntry encodes one xattr as struct erofs_xattr_entry followed by the
// name's rest and the value, unpadded; ok is false for a name EROFS has no
// prefix for.
func xattrEntry(name, value string) (e []byte, ok bool, err error) {
	for _, p := range xattrPrefixes {
		rest, found := strings.CutPrefix(name, p.prefix)
		if !found || (p.whole && rest != "") || (!p.whole && rest == "") {
			continue
		}
		if len(rest) > 255 {
			return nil, true, fmt.Errorf("xattr %.40q...: name longer than 255 bytes", name)
		}
		if len(value) > 0xffff {
			return nil, true, fmt.Errorf("xattr %s: value of %d bytes, more than 65535", name, len(value))
		}
		e = make([]byte, 0, xattrEntrySize+len(rest)+len(value))
		e = append(e, uint8(len(rest)), p.index)
		e = binary.LittleEndian.AppendUint16(e, uint16(len(value)))
		e = append(e, rest...)
		return append(e, value...), true, nil
	}
	return nil, false, nil
}

// padded is an entry's size on disk: entries start at 4-byte boundaries.
func padded(e []byte) int { return (len(e) + 3) &^ 3 }

// nodeXattrs returns the encoded entries of n's xattrs, in name order,
// dropping (and logging) or refusing those EROFS cannot store.
func nodeXattrs(path *fstree.EntryPath, n *fstree.Node, opts *Options) ([][]byte, error) {
	if len(n.Xattrs) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(n.Xattrs))
	for k := range n.Xattrs {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([][]byte, 0, len(names))
	for _, k := range names {
		e, ok, err := xattrEntry(k, n.Xattrs[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !ok {
			if !opts.DropXattrs {
				return nil, fmt.Errorf("%s: xattr %q: EROFS stores only user., trusted., security. and POSIX ACL xattrs", path, k)
			}
			opts.Log.Warn("erofs: dropping an xattr it cannot store", "path", path.String(), "xattr", k)
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// xattrTable is the shared xattr area: entries that several inodes carry,
// each stored once and named by its position in 4-byte units.
type xattrTable struct {
	ids  map[string]uint32
	data []byte
}

// share decides which entries go into the shared table: those whose
// copies in every inode take more room than one shared copy and a 4-byte
// id in each. counts holds, per encoded entry, the inodes carrying it;
// order is the entries in the order first met, which fixes their ids.
func share(counts map[string]int, order []string) *xattrTable {
	t := &xattrTable{ids: map[string]uint32{}}
	for _, e := range order {
		c, size := counts[e], padded([]byte(e))
		if c < 2 || c*size <= size+4*c {
			continue
		}
		t.ids[e] = uint32(len(t.data) / 4)
		t.data = append(t.data, e...)
		t.data = append(t.data, make([]byte, size-len(e))...)
	}
	return t
}

// body encodes an inode's xattr area: the header, the ids of its shared
// entries (at most 255, what the header counts), then its own entries.
func (t *xattrTable) body(es [][]byte) ([]byte, error) {
	if len(es) == 0 {
		return nil, nil
	}
	var shared []uint32
	var own [][]byte
	for _, e := range es {
		if id, ok := t.ids[string(e)]; ok && len(shared) < 255 {
			shared = append(shared, id)
		} else {
			own = append(own, e)
		}
	}
	slices.Sort(shared)
	b := make([]byte, xattrHeaderSize, xattrHeaderSize+4*len(shared))
	b[4] = uint8(len(shared)) // h_shared_count; h_reserved before it
	for _, id := range shared {
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	for _, e := range own {
		b = append(b, e...)
		b = append(b, make([]byte, padded(e)-len(e))...)
	}
	if (len(b)-xattrHeaderSize)/4+1 > 0xffff {
		return nil, fmt.Errorf("xattrs of %d bytes: more than an inode's xattr area holds", len(b))
	}
	return b, nil
}
