package squashfs

import (
	"fmt"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// noIndex marks an absent fragment or xattr index.
const noIndex = 0xffffffff

// inode is what the writer keeps per inode, by inode number - 1.
type inode struct {
	n      *fstree.Node
	ref    uint64 // where the inode is in the inode table, once written
	parent uint32 // directories: the parent's inode number
	nlink  uint32
	xattr  uint32 // index into the xattr id table, or noIndex
	uid    uint16 // indexes into the id table
	gid    uint16
	file   int32 // regular files: index into plan.files, else -1
}

// plan is what the writer learns from the tree before writing: inode
// numbers in the order inodes are written, the id table, the distinct
// xattr sets, and the regular files in the order their data goes out.
type plan struct {
	inodes []inode
	ino    map[*fstree.Node]uint32
	files  []fileData
	ids    []uint32
	xattrs []xattrSet // distinct sets, by xattr id
	bytes  int64      // file content to compress
	newest time.Time
}

func newPlan(t *fstree.Tree, opts *Options) (*plan, error) {
	if t.Root == nil || t.Root.Type != fstree.TypeDir {
		return nil, fmt.Errorf("the tree's root is not a directory")
	}
	p := &plan{ino: map[*fstree.Node]uint32{}}
	idx := map[uint32]uint16{}
	sets := map[string]uint32{}
	// number gives n the next inode number. Inodes are numbered, and
	// written, depth first: a directory's subdirectories (each with
	// everything below it), then its other entries in name order, then
	// the directory itself, so that the root comes last and every
	// directory's listing refers to inodes already written.
	number := func(path *fstree.EntryPath, n *fstree.Node) error {
		if len(p.inodes) == 1<<32-1 {
			return fmt.Errorf("more than 2^32-1 inodes")
		}
		in := inode{n: n, xattr: noIndex, file: -1, nlink: uint32(max(n.Links(), 1))}
		var err error
		if in.uid, err = p.id(idx, n.UID); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if in.gid, err = p.id(idx, n.GID); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := p.check(path, n); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(n.Xattrs) > 0 {
			set, err := encodeXattrs(path, n.Xattrs, opts)
			if err != nil {
				return err
			}
			if set.count > 0 {
				id, ok := sets[string(set.kv)]
				if !ok {
					id = uint32(len(p.xattrs))
					sets[string(set.kv)] = id
					p.xattrs = append(p.xattrs, set)
				}
				in.xattr = id
			}
		}
		if n.Type == fstree.TypeRegular {
			in.file = int32(len(p.files))
			p.files = append(p.files, fileData{ino: uint32(len(p.inodes) + 1), frag: noIndex})
			p.bytes += n.Size
		}
		if n.Mtime.After(p.newest) {
			p.newest = n.Mtime
		}
		p.inodes = append(p.inodes, in)
		p.ino[n] = uint32(len(p.inodes))
		return nil
	}
	var dir func(path *fstree.EntryPath, d *fstree.Node) error
	dir = func(path *fstree.EntryPath, d *fstree.Node) error {
		es := d.Entries()
		subdirs := 0
		for _, e := range es {
			cp := path.Child(e.Name)
			if err := fstree.CheckName(e.Name); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if e.Node.Type != fstree.TypeDir {
				continue
			}
			if e.Node.Links() > 1 {
				return fmt.Errorf("%s: a directory with %d names", cp, e.Node.Links())
			}
			subdirs++
			if err := dir(cp, e.Node); err != nil {
				return err
			}
		}
		for _, e := range es {
			if _, ok := p.ino[e.Node]; !ok && e.Node.Type != fstree.TypeDir {
				if err := number(path.Child(e.Name), e.Node); err != nil {
					return err
				}
			}
		}
		if err := number(path, d); err != nil {
			return err
		}
		ino := p.ino[d]
		in := &p.inodes[ino-1]
		// A directory's links: its name, its own ".", and each
		// subdirectory's "..".
		in.nlink = uint32(2 + subdirs)
		for _, e := range es {
			if e.Node.Type == fstree.TypeDir {
				p.inodes[p.ino[e.Node]-1].parent = ino
			}
		}
		return nil
	}
	if err := dir(nil, t.Root); err != nil {
		return nil, err
	}
	// The root's ".." is itself; mksquashfs stores one past the last
	// inode there, which Linux never follows.
	p.inodes[len(p.inodes)-1].parent = uint32(len(p.inodes) + 1)
	return p, nil
}

// id returns the id table index of a uid or gid, adding it when new.
func (p *plan) id(idx map[uint32]uint16, v uint32) (uint16, error) {
	if i, ok := idx[v]; ok {
		return i, nil
	}
	if len(p.ids) == 0xffff {
		return 0, fmt.Errorf("more than 65535 distinct owners and groups; squashfs holds at most 65535")
	}
	i := uint16(len(p.ids))
	idx[v] = i
	p.ids = append(p.ids, v)
	return i, nil
}

// check refuses what squashfs, or Linux reading it, cannot hold.
func (p *plan) check(path *fstree.EntryPath, n *fstree.Node) error {
	switch n.Type {
	case fstree.TypeRegular:
		if n.Size < 0 {
			return fmt.Errorf("file size %d out of range", n.Size)
		}
		if n.Size > 0 && n.Content == nil {
			return fmt.Errorf("file of %d bytes has no content", n.Size)
		}
	case fstree.TypeDir:
	case fstree.TypeSymlink:
		switch {
		case n.Target == "":
			return fmt.Errorf("symlink with an empty target")
		case len(n.Target) >= 4096:
			return fmt.Errorf("symlink target of %d bytes: longer than 4095", len(n.Target))
		case strings.IndexByte(n.Target, 0) >= 0:
			return fmt.Errorf("symlink target contains NUL")
		}
	case fstree.TypeCharDev, fstree.TypeBlockDev:
		if n.Major >= 1<<12 || n.Minor >= 1<<20 {
			return fmt.Errorf("device %d,%d: squashfs holds 12-bit majors and 20-bit minors", n.Major, n.Minor)
		}
	case fstree.TypeFIFO, fstree.TypeSocket:
	default:
		return fmt.Errorf("unknown node type %s", n.Type)
	}
	return nil
}
