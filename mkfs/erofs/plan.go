package erofs

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// inode is what the writer keeps per inode, in the order inodes are laid
// out and written.
type inode struct {
	n      *fstree.Node
	pos    int64  // the inode's byte position: its nid is pos / 32
	blk    uint32 // first data block, or nullAddr
	blocks int64  // data blocks
	size   int64  // i_size: a file's, a symlink target's, a directory's listing
	parent int32  // directories: the parent's index
	nlink  uint32
	ino    uint32 // i_ino, for 32-bit stat: the index
	layout uint8
	// extended picks the 64-byte inode: for an mtime other than the build
	// time, owners or a link count above 16 bits, or a size above 32.
	extended bool
	tail     uint16 // data bytes stored after the inode and its xattrs
	xattr    []byte // the inode's xattr area; nil without xattrs
}

func (in *inode) nid() uint64 { return uint64(in.pos / slotSize) }

// isize is the inode's size without its inline data.
func (in *inode) isize() int64 {
	s := int64(compactSize)
	if in.extended {
		s = extendedSize
	}
	return s + int64(len(in.xattr))
}

// plan is the whole layout, learnt from the tree's metadata: every
// inode's place and blocks, and the shared xattr table.
type plan struct {
	inodes     []inode
	index      map[*fstree.Node]int32
	xattrs     *xattrTable
	xattrBlock uint32 // where the shared xattr table starts; 0 for none
	blocks     int64  // the filesystem's size in blocks
	bytes      int64  // file content to copy
	build      time.Time
	lastUse    map[int64]int32 // per metadata block, the last inode in it
}

func newPlan(t *fstree.Tree, opts *Options) (*plan, error) {
	if t.Root == nil || t.Root.Type != fstree.TypeDir {
		return nil, fmt.Errorf("the tree's root is not a directory")
	}
	p := &plan{index: map[*fstree.Node]int32{}}
	var newest time.Time
	// entries holds each inode's encoded xattrs until the shared table is
	// known; counts how many inodes carry each, in the order first met.
	entries := [][][]byte{}
	counts := map[string]int{}
	var order []string

	// Inodes are numbered and laid out depth first, a directory before
	// its entries, so that the root comes first (its nid must fit 16 bits)
	// and a directory's inodes sit near it.
	var visit func(path *fstree.EntryPath, n *fstree.Node, parent int32) error
	visit = func(path *fstree.EntryPath, n *fstree.Node, parent int32) error {
		if _, ok := p.index[n]; ok {
			return nil // a hardlink, laid out at its first name
		}
		if len(p.inodes) == 1<<32-1 {
			return fmt.Errorf("more than 2^32-1 inodes")
		}
		if err := check(n); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		i := int32(len(p.inodes))
		p.index[n] = i
		in := inode{n: n, parent: parent, ino: uint32(i), nlink: uint32(max(n.Links(), 1))}
		if n.Type == fstree.TypeRegular {
			in.size = n.Size
			p.bytes += n.Size
		}
		if n.Type == fstree.TypeSymlink {
			in.size = int64(len(n.Target))
		}
		if n.Mtime.After(newest) {
			newest = n.Mtime
		}
		es, err := nodeXattrs(path, n, opts)
		if err != nil {
			return err
		}
		for _, e := range es {
			if counts[string(e)] == 0 {
				order = append(order, string(e))
			}
			counts[string(e)]++
		}
		p.inodes = append(p.inodes, in)
		entries = append(entries, es)
		if n.Type != fstree.TypeDir {
			return nil
		}
		children := n.Entries()
		subdirs := 0
		for _, e := range children {
			if err := fstree.CheckName(e.Name); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if e.Node.Type == fstree.TypeDir {
				if _, ok := p.index[e.Node]; ok || e.Node.Links() > 1 {
					return fmt.Errorf("%s: a directory with more than one name", path.Child(e.Name))
				}
				subdirs++
			}
		}
		// A directory's links: its name, its own ".", and each
		// subdirectory's "..".
		p.inodes[i].nlink = uint32(2 + subdirs)
		p.inodes[i].size = packDir(dirents(children), nil)
		for _, e := range children {
			if err := visit(path.Child(e.Name), e.Node, i); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(nil, t.Root, 0); err != nil {
		return nil, err
	}

	p.build = opts.Time
	if p.build.IsZero() {
		p.build = newest
	}
	if p.build.Unix() < 0 {
		p.build = time.Unix(0, 0)
	}
	p.xattrs = share(counts, order)

	// The shared xattr table goes last, so that nothing it holds moves
	// the root's inode out of block 0.
	a := newAllocator()
	for i := range p.inodes {
		in := &p.inodes[i]
		var err error
		if in.xattr, err = p.xattrs.body(entries[i]); err != nil {
			return nil, fmt.Errorf("inode %d: %w", i, err)
		}
		entries[i] = nil
		in.extended = in.size > 0xffffffff || in.n.UID > 0xffff || in.n.GID > 0xffff || in.nlink > 0xffff ||
			!mtime(in.n, p.build).Equal(p.build)
		tail := in.size % blockSize
		if tail > 0 && in.isize()+tail <= blockSize {
			in.layout, in.tail = layoutInline, uint16(tail)
			in.blocks = in.size / blockSize
		} else {
			in.layout = layoutPlain
			in.blocks = (in.size + blockSize - 1) / blockSize
		}
		in.pos = a.meta(int32(i), in.isize()+int64(in.tail))
		in.blk = nullAddr
		if in.blocks > 0 {
			in.blk = uint32(a.next)
			a.next += in.blocks
		}
		if a.next >= 1<<32-1 {
			return nil, fmt.Errorf("more than 2^32-1 blocks of 4 KiB")
		}
	}
	if root := p.inodes[0].nid(); root > 0xffff {
		return nil, fmt.Errorf("the root's inode (nid %d) is past what the superblock can point at", root)
	}
	if len(p.xattrs.data) > 0 {
		p.xattrBlock = uint32(a.next)
		a.next += (int64(len(p.xattrs.data)) + blockSize - 1) / blockSize
	}
	p.blocks = a.next
	p.lastUse = a.lastUse
	if p.blocks >= 1<<32 {
		return nil, fmt.Errorf("more than 2^32-1 blocks of 4 KiB")
	}
	return p, nil
}

// allocator hands out inode places and data blocks. Inodes are packed into
// metadata blocks at 32-byte slots, each into the first of the open blocks
// (the last few started) with room for it, so that none that fits a block
// crosses one (an inline tail must not) and little of a block is left
// over; when none has room, a new one starts at the next free block. Data
// blocks follow wherever the allocation has got to. lastUse records, per
// metadata block, the last inode placed in it: the writer then has it
// whole.
type allocator struct {
	open    []openBlock
	next    int64 // the next free block
	lastUse map[int64]int32
}

type openBlock struct {
	blk  int64
	used int64
}

// maxOpen is how many metadata blocks take inodes at once: enough to fill
// them to 94% on the Debian test tree (16 fill them to 87%), few enough
// that the writer holds 1 MiB of them at most.
const maxOpen = 256

func newAllocator() *allocator {
	// The root's inode goes into block 0 after the superblock.
	return &allocator{open: []openBlock{{0, superOffset + superSize}}, next: 1, lastUse: map[int64]int32{}}
}

func (a *allocator) meta(i int32, need int64) int64 {
	for k := range a.open {
		o := &a.open[k]
		pos := (o.used + slotSize - 1) &^ (slotSize - 1)
		if pos+need <= blockSize {
			o.used = pos + need
			a.lastUse[o.blk] = i
			at := o.blk*blockSize + pos
			if o.used > blockSize-compactSize {
				a.open = slices.Delete(a.open, k, k+1) // full: no inode fits any more
			}
			return at
		}
	}
	// An inode larger than a block (xattrs of many KiB) takes blocks of
	// its own from a block boundary; what is left of its last block
	// serves the inodes after it.
	n := max(1, (need+blockSize-1)/blockSize)
	pos := a.next * blockSize
	for b := a.next; b < a.next+n; b++ {
		a.lastUse[b] = i
	}
	a.next += n
	if len(a.open) == maxOpen {
		a.open = a.open[1:]
	}
	a.open = append(a.open, openBlock{a.next - 1, need - (n-1)*blockSize})
	return pos
}

// check refuses what EROFS, or Linux reading it, cannot hold.
func check(n *fstree.Node) error {
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
			return fmt.Errorf("device %d,%d: EROFS holds 12-bit majors and 20-bit minors", n.Major, n.Minor)
		}
	case fstree.TypeFIFO, fstree.TypeSocket:
	default:
		return fmt.Errorf("unknown node type %s", n.Type)
	}
	return nil
}

// dirent is one entry of a directory's listing; a nil node stands for
// "." (self) or ".." (parent).
type dirent struct {
	name string
	node *fstree.Node
}

// dirents returns a directory's listing: its entries with "." and "..",
// sorted by name as Linux's lookup (a binary search) needs; some names
// sort before ".".
func dirents(children []fstree.Entry) []dirent {
	ds := make([]dirent, 0, len(children)+2)
	ds = append(ds, dirent{name: "."}, dirent{name: ".."})
	for _, e := range children {
		ds = append(ds, dirent{e.Name, e.Node})
	}
	slices.SortFunc(ds, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	return ds
}

// packDir splits a listing into blocks, each an array of dirents followed
// by their names, and calls fn (when not nil) with each block's entries;
// it returns the listing's size: whole blocks, then what the last one
// uses.
func packDir(ds []dirent, fn func(block []dirent, used int)) int64 {
	var size int64
	start, used := 0, 0
	for i, d := range ds {
		need := direntSize + len(d.name)
		if used+need > blockSize {
			if fn != nil {
				fn(ds[start:i], used)
			}
			size += blockSize
			start, used = i, 0
		}
		used += need
	}
	if fn != nil {
		fn(ds[start:], used)
	}
	return size + int64(used)
}
