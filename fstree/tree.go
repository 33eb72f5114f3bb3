package fstree

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Tree is a rooted filesystem tree.
type Tree struct {
	Root *Node
}

// New returns a tree holding only a root directory (mode 0755, root:root).
func New() *Tree {
	r := NewDir(0o755)
	r.links = 1
	return &Tree{Root: r}
}

// ErrNotExist and ErrNotDir are returned (wrapped) by lookups.
var (
	ErrNotExist = fs.ErrNotExist
	ErrNotDir   = errors.New("not a directory")
)

// Entry is one directory entry.
type Entry struct {
	Name string
	Node *Node
}

// Entries returns a directory's entries sorted by name (byte order), the
// order every writer uses so that output is deterministic.
func (n *Node) Entries() []Entry {
	es := make([]Entry, 0, len(n.entries))
	for name, c := range n.entries {
		es = append(es, Entry{name, c})
	}
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return es
}

// Lookup returns the node at path p without following symlinks.
func (t *Tree) Lookup(p string) (*Node, error) {
	cp, err := Clean(p)
	if err != nil {
		return nil, err
	}
	n := t.Root
	for _, name := range Split(cp) {
		if n.Type != TypeDir {
			return nil, &fs.PathError{Op: "lookup", Path: cp, Err: ErrNotDir}
		}
		c := n.entries[name]
		if c == nil {
			return nil, &fs.PathError{Op: "lookup", Path: cp, Err: ErrNotExist}
		}
		n = c
	}
	return n, nil
}

// Parent returns the directory that holds path p, creating missing
// directories as copies of tmpl when tmpl is non-nil. A non-directory in the
// way is an error: the caller decides whether to replace it.
func (t *Tree) Parent(p string, tmpl *Node) (dir *Node, name string, err error) {
	cp, err := Clean(p)
	if err != nil {
		return nil, "", err
	}
	if cp == "" {
		return nil, "", fmt.Errorf("%q: the root has no parent", p)
	}
	parts := Split(cp)
	n := t.Root
	for i, part := range parts[:len(parts)-1] {
		c := n.entries[part]
		if c == nil {
			if tmpl == nil {
				return nil, "", &fs.PathError{Op: "lookup", Path: strings.Join(parts[:i+1], "/"), Err: ErrNotExist}
			}
			c = tmpl.CopyMeta()
			c.Type = TypeDir
			c.entries = map[string]*Node{}
			n.attach(part, c)
		} else if c.Type != TypeDir {
			return nil, "", &fs.PathError{Op: "lookup", Path: strings.Join(parts[:i+1], "/"), Err: ErrNotDir}
		}
		n = c
	}
	return n, parts[len(parts)-1], nil
}

// Put places node at path p, replacing whatever was there (a replaced
// directory takes its whole subtree with it). Missing parents are created as
// copies of tmpl, or are an error when tmpl is nil. Putting the same
// non-directory node at a second path makes a hardlink.
func (t *Tree) Put(p string, node *Node, tmpl *Node) error {
	if node.Type == TypeDir && node.links > 0 {
		return fmt.Errorf("%s: a directory cannot have two names", p)
	}
	if node.Type == TypeDir && node.entries == nil {
		node.entries = map[string]*Node{}
	}
	dir, name, err := t.Parent(p, tmpl)
	if err != nil {
		return err
	}
	dir.SetChild(name, node)
	return nil
}

// Remove deletes the entry at path p (and a directory's subtree). It
// reports whether there was anything to delete.
func (t *Tree) Remove(p string) (bool, error) {
	dir, name, err := t.Parent(p, nil)
	if err != nil {
		if errors.Is(err, ErrNotExist) || errors.Is(err, ErrNotDir) {
			return false, nil
		}
		return false, err
	}
	if dir.entries[name] == nil {
		return false, nil
	}
	dir.RemoveChild(name)
	return true, nil
}

// Clear removes every entry of directory n.
func (n *Node) Clear() {
	for name := range n.entries {
		n.RemoveChild(name)
	}
}

// RemoveChild removes the entry called name from directory n.
func (n *Node) RemoveChild(name string) {
	c := n.entries[name]
	if c == nil {
		return
	}
	delete(n.entries, name)
	if n.live() {
		c.unlink()
	}
}

// SetChild places c in directory n under name, replacing any entry.
func (n *Node) SetChild(name string, c *Node) {
	if old := n.entries[name]; old != nil {
		if old == c {
			return
		}
		n.RemoveChild(name)
	}
	if c.Type == TypeDir && c.entries == nil {
		c.entries = map[string]*Node{}
	}
	n.attach(name, c)
}

// Link counts are kept for names reachable from a tree's root: a
// directory built apart and then put into a tree brings its entries'
// names along, and a directory removed from the tree takes them away, so
// a hardlink with one name inside a removed subtree and one outside keeps
// the right count. A directory is live while it has its one name (the
// root always has).
func (n *Node) live() bool { return n.Type == TypeDir && n.links > 0 }

func (n *Node) attach(name string, c *Node) {
	// The name is copied: callers often cut it from a whole path (a tar
	// header's), which a substring would keep alive for the tree's life,
	// several times the name's own size over a million entries.
	n.entries[strings.Clone(name)] = c
	if n.live() {
		c.link()
	}
}

func (n *Node) link() {
	n.addLinks(1)
	if n.Type == TypeDir && n.links == 1 {
		for _, c := range n.entries {
			c.link()
		}
	}
}

func (n *Node) unlink() {
	n.addLinks(-1)
	if n.Type == TypeDir && n.links == 0 {
		for _, c := range n.entries {
			c.unlink()
		}
	}
}

// MkdirAll makes sure path p is a directory, creating it and its parents as
// copies of tmpl (or 0755 root:root directories when tmpl is nil).
func (t *Tree) MkdirAll(p string, tmpl *Node) (*Node, error) {
	if tmpl == nil {
		tmpl = NewDir(0o755)
	}
	cp, err := Clean(p)
	if err != nil {
		return nil, err
	}
	if cp == "" {
		return t.Root, nil
	}
	dir, name, err := t.Parent(cp, tmpl)
	if err != nil {
		return nil, err
	}
	if c := dir.entries[name]; c != nil {
		if c.Type != TypeDir {
			return nil, &fs.PathError{Op: "mkdir", Path: cp, Err: ErrNotDir}
		}
		return c, nil
	}
	c := tmpl.CopyMeta()
	c.Type = TypeDir
	c.entries = map[string]*Node{}
	dir.attach(name, c)
	return c, nil
}

// SkipDir, returned by a WalkFunc for a directory, skips its entries.
var SkipDir = fs.SkipDir

// WalkFunc is called for every node in a walk; p is "" for the root.
type WalkFunc func(p string, n *Node) error

// Walk visits every entry of the tree depth-first, parents before their
// entries, siblings in name order. A hardlinked node is visited once per
// name.
func (t *Tree) Walk(fn WalkFunc) error {
	err := walk("", t.Root, fn)
	if err == SkipDir {
		return nil
	}
	return err
}

func walk(p string, n *Node, fn WalkFunc) error {
	if err := fn(p, n); err != nil {
		return err
	}
	if n.Type != TypeDir {
		return nil
	}
	for _, e := range n.Entries() {
		cp := e.Name
		if p != "" {
			cp = p + "/" + e.Name
		}
		if err := walk(cp, e.Node, fn); err != nil && err != SkipDir {
			return err
		}
	}
	return nil
}

// Stats are counts over a tree, used to size filesystems.
type Stats struct {
	Inodes   int   // distinct nodes, the root included
	Dirs     int   // directories, the root included
	Entries  int   // directory entries (names), the root excluded
	Bytes    int64 // sum of regular file sizes, each inode once
	NameLen  int64 // sum of entry name lengths
	Symlinks int64 // sum of symlink target lengths
	Xattrs   int64 // sum of xattr name and value lengths
}

// Stats walks the tree once and counts it.
func (t *Tree) Stats() Stats {
	var s Stats
	seen := map[*Node]bool{}
	_ = t.Walk(func(p string, n *Node) error {
		if p != "" {
			s.Entries++
			s.NameLen += int64(len(p) - strings.LastIndexByte(p, '/') - 1)
		}
		if seen[n] {
			return nil
		}
		seen[n] = true
		s.Inodes++
		switch n.Type {
		case TypeDir:
			s.Dirs++
		case TypeRegular:
			s.Bytes += n.Size
		case TypeSymlink:
			s.Symlinks += int64(len(n.Target))
		}
		for k, v := range n.Xattrs {
			s.Xattrs += int64(len(k) + len(v))
		}
		return nil
	})
	return s
}
