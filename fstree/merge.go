package fstree

import (
	"fmt"
	"time"
)

// Merge moves every entry of src into dst at directory at ("" for the
// root), the way an overlay is applied, as `cp -a src/. dst/` copies:
// directories merge (an existing directory keeps its own metadata), and a
// directory of src merges into whatever directory dst's entry of that name
// leads to when it is a symlink (over a merged-/usr root, an overlay's
// bin/x lands in usr/bin, and /bin stays the symlink). Anything else
// replaces what dst had at that path, including a directory. src must not
// be used afterwards: its nodes now belong to dst.
func Merge(dst *Tree, at string, src *Tree) error {
	base, err := dst.MkdirAll(at, nil)
	if err != nil {
		return fmt.Errorf("merge at %q: %w", at, err)
	}
	return mergeDir(dst, base, src.Root, at)
}

func mergeDir(t *Tree, dst, src *Node, p string) error {
	for _, e := range src.Entries() {
		cp := e.Name
		if p != "" {
			cp = p + "/" + e.Name
		}
		cur := dst.entries[e.Name]
		src.RemoveChild(e.Name)
		if e.Node.Type == TypeDir && cur != nil && cur.Type == TypeSymlink {
			if real, err := t.Realpath(cp); err == nil {
				if n, err := t.Lookup(real); err == nil && n.Type == TypeDir {
					cur, cp = n, real
				}
			}
		}
		if e.Node.Type == TypeDir && cur != nil && cur.Type == TypeDir {
			if err := mergeDir(t, cur, e.Node, cp); err != nil {
				return err
			}
			continue
		}
		dst.SetChild(e.Name, e.Node)
	}
	return nil
}

// ClampTimes sets every time later than limit to limit, the
// SOURCE_DATE_EPOCH rule for reproducible builds.
func (t *Tree) ClampTimes(limit time.Time) {
	// Clamping twice changes nothing: a hardlinked node met at each of its
	// names needs no record of having been seen.
	clamp := func(tm time.Time) time.Time {
		if tm.After(limit) {
			return limit
		}
		return tm
	}
	_ = t.Walk(func(_ string, n *Node) error {
		n.Mtime = clamp(n.Mtime)
		if n.more != nil && (n.more.atime.After(limit) || n.more.ctime.After(limit)) {
			n.SetTimes(clamp(n.more.atime), clamp(n.more.ctime))
		}
		return nil
	})
}
