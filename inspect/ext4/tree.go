package ext4

import (
	"fmt"
	"io/fs"
	"path"

	"github.com/ocidisk/ocidisk/fstree"
)

// Tree returns the subtree at dir ("." for the whole filesystem) as an
// fstree.Tree, the model every ocidisk writer reads: each entry's type,
// mode (with setuid, setgid and sticky), owner, mtime, xattrs (all
// namespaces, trusted.* included), symlink target and device numbers. A
// file with several names is one node, as its inode is, so that a writer
// keeps the hardlinks. dir's own metadata becomes the tree's root. File
// content is a reference read from the filesystem when a writer opens it:
// the io.ReaderAt given to Open must stay open while the tree is used.
//
// It is how ocidisk commit reads the upper directory a guest's overlayfs
// left on a scratch disk: whiteouts there are character devices 0:0 and
// opaque directories carry trusted.overlay.opaque.
func (f *FS) Tree(dir string) (*fstree.Tree, error) {
	top, err := f.resolve("tree", dir, false)
	if err != nil {
		return nil, err
	}
	if !top.info.IsDir() {
		return nil, &fs.PathError{Op: "tree", Path: dir, Err: fmt.Errorf("not a directory")}
	}
	t := fstree.New()
	setMeta(t.Root, top)
	b := &treeBuilder{f: f, inodes: map[uint32]*fstree.Node{}}
	if err := b.fill(t.Root, top, dir); err != nil {
		return nil, err
	}
	return t, nil
}

// treeBuilder builds a tree, one node per inode.
type treeBuilder struct {
	f      *FS
	inodes map[uint32]*fstree.Node // non-directories with more than one link
}

// fill adds the entries of directory inode dir (named p in messages) to
// directory node into.
func (b *treeBuilder) fill(into *fstree.Node, dir *node, p string) error {
	ents, err := dir.entries()
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, e := range ents {
		cp := path.Join(p, e.name)
		if err := fstree.CheckName(e.name); err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		if n := b.inodes[e.ino]; n != nil {
			into.SetChild(e.name, n)
			continue
		}
		in, err := b.f.node(e.ino, e.name)
		if err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		n, err := b.newNode(in)
		if err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		into.SetChild(e.name, n)
		if n.IsDir() {
			if err := b.fill(n, in, cp); err != nil {
				return err
			}
		} else if in.info.St.Nlink > 1 {
			b.inodes[e.ino] = n
		}
	}
	return nil
}

// newNode makes the fstree node of inode in.
func (b *treeBuilder) newNode(in *node) (*fstree.Node, error) {
	st := in.info.St
	var n *fstree.Node
	m := in.info.M
	switch {
	case m.IsDir():
		n = fstree.NewDir(0)
	case m.IsRegular():
		n = fstree.NewFile(0, in.info.Sz, nil)
		if in.info.Sz > 0 {
			r, err := in.content()
			if err != nil {
				return nil, err
			}
			n.Content = fstree.Section{R: r, N: in.info.Sz}
		}
	case m&fs.ModeSymlink != 0:
		n = fstree.NewSymlink(st.Target)
	case m&fs.ModeCharDevice != 0:
		n = fstree.NewDevice(fstree.TypeCharDev, 0, st.Major, st.Minor)
	case m&fs.ModeDevice != 0:
		n = fstree.NewDevice(fstree.TypeBlockDev, 0, st.Major, st.Minor)
	case m&fs.ModeNamedPipe != 0:
		n = fstree.NewDevice(fstree.TypeFIFO, 0, 0, 0)
	case m&fs.ModeSocket != 0:
		n = fstree.NewDevice(fstree.TypeSocket, 0, 0, 0)
	default:
		return nil, fmt.Errorf("inode %d: unknown file type (mode %v)", in.ino, m)
	}
	setMeta(n, in)
	return n, nil
}

// setMeta copies inode in's mode bits, owner, mtime and xattrs to n.
// system.data is not an attribute but where inline data continues.
func setMeta(n *fstree.Node, in *node) {
	n.Mode = fstree.ModeBits(in.info.M)
	st := in.info.St
	n.UID, n.GID, n.Mtime = st.UID, st.GID, in.info.Mtime
	if len(st.Xattrs) > 0 {
		n.Xattrs = make(map[string]string, len(st.Xattrs))
		for k, v := range st.Xattrs {
			if k != "system.data" {
				n.Xattrs[k] = string(v)
			}
		}
		if len(n.Xattrs) == 0 {
			n.Xattrs = nil
		}
	}
}
