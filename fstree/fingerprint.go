package fstree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// Fingerprint hashes the metadata of every entry as a filesystem writer
// would store it, with every time later than limit taken as limit (the
// SOURCE_DATE_EPOCH clamp; a zero limit clamps nothing): path, type, mode,
// owner, size, times, symlink target, device numbers, xattrs and which
// names share a node. Content is not read, only its size: the fingerprint
// is cheap enough for a build to identify a host directory by what it
// puts in the image, so that touching files, whose mtimes clamp to the
// same time, changes no identifier derived from it.
func (t *Tree) Fingerprint(limit time.Time) string {
	h := sha256.New()
	clamp := func(tm time.Time) int64 {
		if !limit.IsZero() && tm.After(limit) {
			tm = limit
		}
		if tm.IsZero() {
			return 0
		}
		return tm.UnixNano()
	}
	first := map[*Node]string{}
	_ = t.Walk(func(p string, n *Node) error {
		if fp, ok := first[n]; ok && n.Type != TypeDir {
			fmt.Fprintf(h, "%q link %q\n", p, fp)
			return nil
		}
		first[n] = p
		fmt.Fprintf(h, "%q %d %o %d:%d %d %q %d,%d %d %d %d", p, n.Type, n.Mode, n.UID, n.GID, n.Size, n.Target,
			n.Major, n.Minor, clamp(n.Mtime), clamp(n.Atime()), clamp(n.Ctime()))
		keys := make([]string, 0, len(n.Xattrs))
		for k := range n.Xattrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(h, " %q=%q", k, n.Xattrs[k])
		}
		h.Write([]byte{'\n'})
		return nil
	})
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
