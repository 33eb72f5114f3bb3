package rootfs

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// applier applies one layer to the tree.
type applier struct {
	t      *fstree.Tree
	digest string
	// hidden holds the lower entries this layer's whiteouts removed, by
	// path: a hardlink in this layer may still name one (see link).
	hidden map[string]*fstree.Node
}

// applyLayer applies the tar in sr to t and returns its number of entries.
//
// Whiteouts and opaque markers are applied first, to the tree as the lower
// layers left it: they hide lower entries only, so an entry of this layer
// survives a whiteout of its path wherever the two stand in the stream.
// Then the entries are applied in stream order, a path named twice taking
// the last. Any parent an entry needs is made a directory, replacing a
// non-directory in the way (overlayfs semantics: a symlink is a name, never
// followed, so lower "lib -> usr/lib" and upper "lib/x" give a directory
// "lib").
func applyLayer(ctx context.Context, t *fstree.Tree, digest string, sr *io.SectionReader, first bool) (int, error) {
	a := &applier{t: t, digest: digest, hidden: map[string]*fstree.Node{}}
	// Two passes over the headers rather than one that keeps every entry:
	// a million-entry layer held as entries costs more than its tree. The
	// first layer goes over an empty tree, where whiteouts hide nothing.
	if !first {
		_, err := readEntries(ctx, digest, sr, false, func(e entry) error {
			switch e.kind {
			case kindWhiteout:
				a.whiteout(e.path)
			case kindOpaque:
				a.opaque(e.path)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return readEntries(ctx, digest, sr, true, func(e entry) error {
		switch e.kind {
		case kindWhiteout:
			a.dir(parentOf(e.path))
		case kindOpaque:
			a.dir(e.path)
		case kindNode:
			return a.put(e.path, e.node)
		case kindLink:
			return a.link(e.path, e.link)
		}
		return nil
	})
}

// whiteout removes p, if the lower layers left anything there.
func (a *applier) whiteout(p string) {
	d, err := a.t.Lookup(parentOf(p))
	if err != nil || !d.IsDir() {
		return
	}
	name := path.Base(p)
	if c := d.Child(name); c != nil {
		a.hide(p, c)
		d.RemoveChild(name)
	}
}

// opaque empties directory p of what the lower layers put there.
func (a *applier) opaque(p string) {
	n, err := a.t.Lookup(p)
	if err != nil {
		return
	}
	if !n.IsDir() {
		a.whiteout(p) // the entries of this layer make it a directory
		return
	}
	for _, e := range n.Entries() {
		a.hide(path.Join(p, e.Name), e.Node)
	}
	n.Clear()
}

func (a *applier) hide(p string, n *fstree.Node) {
	a.hidden[p] = n
}

// dir returns directory p, making it and its parents directories as needed.
func (a *applier) dir(p string) *fstree.Node {
	n := a.t.Root
	for p != "" { // element by element, without splitting p into a slice
		name, rest, _ := strings.Cut(p, "/")
		c := n.Child(name)
		if c == nil || !c.IsDir() {
			c = fstree.NewDir(0o755)
			c.Mtime = time.Unix(ImpliedMtime, 0)
			n.SetChild(name, c)
		}
		n, p = c, rest
	}
	return n
}

// put places node at p. A directory over a directory only takes its
// metadata: the entries below merge.
func (a *applier) put(p string, node *fstree.Node) error {
	if p == "" {
		if !node.IsDir() {
			return fmt.Errorf("layer %s: the root entry is a %s", a.digest, node.Type)
		}
		copyMeta(a.t.Root, node)
		return nil
	}
	parent, name := a.dir(parentOf(p)), path.Base(p)
	old := parent.Child(name)
	if old != nil && old.IsDir() && node.IsDir() {
		copyMeta(old, node)
		return nil
	}
	parent.SetChild(name, node)
	return nil
}

// link makes p a second name of the node at target, which is looked up in
// the tree as it stands: the lower layers plus the entries of this layer
// before this one. A lower entry this layer hides still counts: the link
// was made to it before it was deleted. The node is shared, so the link
// keeps that inode when a later entry or layer replaces or deletes target.
func (a *applier) link(p, target string) error {
	n, err := a.t.Lookup(target)
	if err != nil {
		n = a.lookupHidden(target)
	}
	switch {
	case n == nil:
		return fmt.Errorf("layer %s: hardlink /%s to /%s: no such file", a.digest, p, target)
	case n.IsDir():
		return fmt.Errorf("layer %s: hardlink /%s to /%s: the target is a directory", a.digest, p, target)
	case p == "":
		return fmt.Errorf("layer %s: hardlink at the root", a.digest)
	}
	parent, name := a.dir(parentOf(p)), path.Base(p)
	parent.SetChild(name, n)
	return nil
}

// lookupHidden finds p among the entries this layer's whiteouts removed.
func (a *applier) lookupHidden(p string) *fstree.Node {
	parts := fstree.Split(p)
	for i := len(parts); i > 0; i-- {
		n, ok := a.hidden[path.Join(parts[:i]...)]
		if !ok {
			continue
		}
		for _, name := range parts[i:] {
			if !n.IsDir() {
				return nil
			}
			if n = n.Child(name); n == nil {
				return nil
			}
		}
		return n
	}
	return nil
}

// copyMeta gives directory dst the metadata of src.
func copyMeta(dst, src *fstree.Node) {
	dst.Mode, dst.UID, dst.GID = src.Mode, src.UID, src.GID
	dst.Mtime = src.Mtime
	dst.SetTimes(src.Atime(), src.Ctime())
	dst.Xattrs = src.Xattrs
}

// parentOf is path.Dir for cleaned paths, "" for the root: a slice of p,
// where path.Dir allocates.
func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}
