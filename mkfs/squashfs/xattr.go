package squashfs

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// xattrSet is one inode's xattrs as the xattr table stores them: the
// key/value pairs back to back, sorted by name.
type xattrSet struct {
	kv    []byte
	count uint32
}

// The name prefixes squashfs stores as a type number; it has no others.
var xattrPrefixes = []string{"user.", "trusted.", "security."}

// encodeXattrs encodes xs, leaving out (with a warning) or refusing the
// names squashfs cannot hold, as opts say.
func encodeXattrs(path *fstree.EntryPath, xs map[string]string, opts *Options) (xattrSet, error) {
	names := make([]string, 0, len(xs))
	for k := range xs {
		names = append(names, k)
	}
	slices.Sort(names)
	var set xattrSet
	for _, k := range names {
		typ := -1
		for i, pfx := range xattrPrefixes {
			if strings.HasPrefix(k, pfx) && len(k) > len(pfx) {
				typ = i
				break
			}
		}
		v := xs[k]
		switch {
		case typ < 0 && opts.DropXattrs:
			opts.Log.Warn("squashfs cannot store this xattr; left out", "path", path.String(), "xattr", k)
			continue
		case typ < 0:
			return set, fmt.Errorf("%s: xattr %q: squashfs stores only user.*, trusted.* and security.* names", path, k)
		case len(k) > 255:
			return set, fmt.Errorf("%s: xattr name %.40q...: longer than 255 bytes", path, k)
		case len(v) > 65536:
			return set, fmt.Errorf("%s: xattr %s: value of %d bytes, Linux allows 65536", path, k, len(v))
		}
		suffix := k[len(xattrPrefixes[typ]):]
		set.kv = binary.LittleEndian.AppendUint16(set.kv, uint16(typ))
		set.kv = binary.LittleEndian.AppendUint16(set.kv, uint16(len(suffix)))
		set.kv = append(set.kv, suffix...)
		set.kv = binary.LittleEndian.AppendUint32(set.kv, uint32(len(v)))
		set.kv = append(set.kv, v...)
		set.count++
	}
	return set, nil
}
