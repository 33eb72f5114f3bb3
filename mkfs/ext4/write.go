package ext4

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/outfile"
)

// writer holds the state of one WriteAt: the layout, the allocation
// cursor, and the inode table of the group being filled.
type writer struct {
	fs       *FS
	p        *plan
	g        *geometry
	out      *blockWriter
	w        io.WriterAt
	off      int64
	csumSeed uint32
	hashSeed [4]uint32
	now      time.Time

	cursor   int64  // next block to try when allocating
	seen     bitset // inodes written
	itab     []byte // inode table of group itabGrp
	itabGrp  int64
	itabHigh int64 // inodes of itabGrp in use (highest index + 1)
	grpDirs  []uint32
	grpInos  []int64 // inodes in use per group (highest index + 1)

	in       inode  // the inode being written (see base)
	buf      []byte // content read buffer
	blk      []byte // one block of scratch
	done     int64
	jnlBlock [60]byte
	uuid     [16]byte
	hseed    [16]byte
}

// WriteAt writes the filesystem, size bytes, at offset off of w. A tree
// that does not fit fails before anything is written.
func (f *FS) WriteAt(w io.WriterAt, off, size int64) error {
	p, err := f.getPlan()
	if err != nil {
		return err
	}
	want := p.inodes + int64(float64(p.inodes)*f.headroom())
	g, gerr := newGeometry(size, p.inodes, want, !f.opts.NoJournal)
	if gerr != nil || p.used(g) > g.blocks {
		need, err := f.fitSize(0, 0)
		if err != nil {
			return err
		}
		if gerr != nil {
			return fmt.Errorf("ext4: the tree needs %d bytes, the filesystem size is %d: %w", need, size, gerr)
		}
		return fmt.Errorf("ext4: the tree needs %d bytes, the filesystem size is %d", need, size)
	}
	uuid, hseed := f.ids(p)
	now := f.opts.Time
	if now.IsZero() {
		now = p.newest
		if now.IsZero() {
			now = time.Unix(0, 0)
		}
	}
	wr := &writer{
		fs: f, p: p, g: g, w: w, off: off, now: now, uuid: uuid, hseed: hseed,
		out:      newBlockWriter(w, off),
		csumSeed: crc32c(^uint32(0), uuid[:]),
		hashSeed: hashSeedWords(hseed),
		itab:     make([]byte, g.inodesPerGrp*inodeSize),
		grpDirs:  make([]uint32, g.groups),
		grpInos:  make([]int64, g.groups),
		buf:      make([]byte, 1<<20),
		blk:      make([]byte, blockSize),
		seen:     newBitset(p.inodes + 1),
	}
	f.opts.Log.Debug("ext4 layout", "size", size, "blocks", g.blocks, "groups", g.groups,
		"inodes", g.groups*g.inodesPerGrp, "journal", g.journal, "tree inodes", p.inodes)
	if err := wr.run(f.tree); err != nil {
		wr.out.wait() // no write outlives WriteAt
		return fmt.Errorf("ext4: %w", err)
	}
	if err := wr.finish(); err != nil {
		return fmt.Errorf("ext4: %w", err)
	}
	return outfile.Extend(w, off+size)
}

func (wr *writer) run(t *fstree.Tree) error {
	// Inodes 1 to 10 are reserved; 8 is the journal.
	wr.grpInos[0] = firstIno - 1
	if wr.g.journal > 0 {
		if err := wr.journal(); err != nil {
			return err
		}
	}
	return wr.visit(nil, "", t.Root, rootIno, rootIno)
}

// visit writes n, inode ino, first seen as name in directory dir (inode
// parent) and, for a directory, everything below it, in the order the plan
// numbered them. A file's path is made only for an error: one per entry
// would be garbage the size of the tree.
func (wr *writer) visit(dir *fstree.EntryPath, name string, n *fstree.Node, ino, parent uint32) error {
	if wr.seen.get(int64(ino)) {
		return nil // a hardlink to an inode written under an earlier name
	}
	wr.seen.set(int64(ino))
	if n.Type != fstree.TypeDir {
		if err := wr.nonDir(n, ino); err != nil {
			return fmt.Errorf("%s: %w", dir.Child(name), err)
		}
		return nil
	}
	path := dir
	if n != wr.p.root {
		path = dir.Child(name)
	}
	es := wr.p.children(n)
	inos := wr.p.entryInos(n, es, nil)
	if err := wr.dir(path, n, ino, parent, es, inos); err != nil {
		return err
	}
	for i, e := range es {
		if err := wr.visit(path, e.Name, e.Node, inos[i], ino); err != nil {
			return err
		}
	}
	return nil
}

// alloc takes up to n free blocks in a row from the cursor.
func (wr *writer) alloc(n int64) (start, got int64, err error) {
	s := wr.g.used.nextFree(wr.cursor, wr.g.blocks)
	if s >= wr.g.blocks {
		return 0, 0, errors.New("out of space (the size estimate was wrong)")
	}
	e := wr.g.used.nextUsed(s, min(wr.g.blocks, s+n))
	wr.g.used.setRange(s, e-s)
	wr.cursor = e
	return s, e - s, nil
}

// allocRun places n logical blocks from lblk and returns their extents.
func (wr *writer) allocRun(l *extentList, lblk, n int64) error {
	for n > 0 {
		s, got, err := wr.alloc(n)
		if err != nil {
			return err
		}
		l.add(uint32(lblk), s, got)
		lblk += got
		n -= got
	}
	return nil
}

// base fills the fields every inode takes from its node, in the writer's
// one inode record: an inode is encoded before the next is begun, and a
// new record for each would be a quarter of a kilobyte of garbage per
// entry.
func (wr *writer) base(n *fstree.Node) *inode {
	in := &wr.in
	*in = inode{mode: uint16(n.UnixMode()), uid: n.UID, gid: n.GID, links: uint16(min(n.Links(), 65000)),
		mtime: n.Mtime, atime: n.Atime(), ctime: n.Ctime(), crtime: wr.now}
	if in.mtime.IsZero() {
		in.mtime = wr.now
	}
	if in.atime.IsZero() {
		in.atime = in.mtime
	}
	if in.ctime.IsZero() {
		in.ctime = in.mtime
	}
	return in
}

// xattrs places n's xattrs in the inode and, when they overflow, a block.
func (wr *writer) xattrs(n *fstree.Node, in *inode) error {
	if len(n.Xattrs) == 0 {
		return nil
	}
	xs, err := toXattrs(n.Xattrs)
	if err != nil {
		return err
	}
	inline, block := splitXattrs(xs)
	in.inlineXattrs = inodeXattrs(inline)
	if len(block) > 0 {
		b, _, err := wr.alloc(1)
		if err != nil {
			return err
		}
		xattrBlock(wr.blk, block, b, wr.csumSeed)
		if err := wr.out.write(b, wr.blk); err != nil {
			return err
		}
		in.xattrBlock = b
		in.blocks++
	}
	return nil
}

func (wr *writer) nonDir(n *fstree.Node, ino uint32) error {
	in := wr.base(n)
	if err := wr.xattrs(n, in); err != nil {
		return err
	}
	switch n.Type {
	case fstree.TypeRegular:
		if err := wr.file(n, in, ino); err != nil {
			return err
		}
	case fstree.TypeSymlink:
		in.size = int64(len(n.Target))
		if len(n.Target) < 60 {
			copy(in.block[:], n.Target)
			break
		}
		var l extentList
		if err := wr.allocRun(&l, 0, 1); err != nil {
			return err
		}
		clear(wr.blk)
		copy(wr.blk, n.Target)
		if err := wr.out.write(l[0].pblk, wr.blk); err != nil {
			return err
		}
		if err := wr.mapExtents(in, ino, l, 1); err != nil {
			return err
		}
	case fstree.TypeCharDev, fstree.TypeBlockDev:
		if n.Major < 256 && n.Minor < 256 {
			putLE32(in.block[0:], n.Major<<8|n.Minor)
		} else {
			putLE32(in.block[4:], n.Minor&0xff|n.Major<<8|(n.Minor&^0xff)<<12)
		}
	}
	return wr.putInode(ino, in, false)
}

func putLE32(p []byte, v uint32) {
	p[0], p[1], p[2], p[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// mapExtents records l (blocks data blocks) in in, writing tree blocks
// when l has more extents than the inode holds.
func (wr *writer) mapExtents(in *inode, ino uint32, l extentList, blocks int64) error {
	in.flags |= flagExtents
	in.blocks += blocks
	if len(l) <= inodeExtents {
		putExtentHeader(in.block[:], len(l), inodeExtents, 0)
		for i, e := range l {
			putExtent(in.block[12+12*i:], e)
		}
		return nil
	}
	// Build the tree bottom up: full leaves of extents, then index
	// blocks, until the top level fits in the inode.
	seed := inodeSeed(wr.csumSeed, ino)
	type ref struct {
		lblk uint32
		blk  int64
	}
	var level []ref
	for i := 0; i < len(l); i += extentsPerBlk {
		part := l[i:min(i+extentsPerBlk, len(l))]
		b, _, err := wr.alloc(1)
		if err != nil {
			return err
		}
		clear(wr.blk)
		putExtentHeader(wr.blk, len(part), extentsPerBlk, 0)
		for j, e := range part {
			putExtent(wr.blk[12+12*j:], e)
		}
		wr.extentTail(seed)
		if err := wr.out.write(b, wr.blk); err != nil {
			return err
		}
		in.blocks++
		level = append(level, ref{part[0].lblk, b})
	}
	depth := 1
	for len(level) > inodeExtents {
		var up []ref
		for i := 0; i < len(level); i += extentsPerBlk {
			part := level[i:min(i+extentsPerBlk, len(level))]
			b, _, err := wr.alloc(1)
			if err != nil {
				return err
			}
			clear(wr.blk)
			putExtentHeader(wr.blk, len(part), extentsPerBlk, depth)
			for j, r := range part {
				putIndex(wr.blk[12+12*j:], r.lblk, r.blk)
			}
			wr.extentTail(seed)
			if err := wr.out.write(b, wr.blk); err != nil {
				return err
			}
			in.blocks++
			up = append(up, ref{part[0].lblk, b})
		}
		level = up
		depth++
	}
	putExtentHeader(in.block[:], len(level), inodeExtents, depth)
	for i, r := range level {
		putIndex(in.block[12+12*i:], r.lblk, r.blk)
	}
	return nil
}

func (wr *writer) extentTail(seed uint32) {
	const tail = 12 + 12*extentsPerBlk
	putLE32(wr.blk[tail:], crc32c(seed, wr.blk[:tail]))
}

// putInode encodes in as inode ino into the table of its group, flushing
// the previous group's table when ino starts a new one.
func (wr *writer) putInode(ino uint32, in *inode, dir bool) error {
	g := int64(ino-1) / wr.g.inodesPerGrp
	idx := int64(ino-1) % wr.g.inodesPerGrp
	if g != wr.itabGrp {
		if g < wr.itabGrp {
			return fmt.Errorf("inode %d written out of order", ino)
		}
		if err := wr.flushInodes(); err != nil {
			return err
		}
		wr.itabGrp, wr.itabHigh = g, 0
	}
	in.encode(wr.itab[idx*inodeSize:(idx+1)*inodeSize], ino, wr.csumSeed)
	wr.itabHigh = max(wr.itabHigh, idx+1)
	wr.grpInos[g] = max(wr.grpInos[g], idx+1)
	if dir {
		wr.grpDirs[g]++
	}
	return nil
}

// flushInodes writes the used blocks of the current group's inode table.
func (wr *writer) flushInodes() error {
	n := (wr.grpInos[wr.itabGrp]*inodeSize + blockSize - 1) / blockSize * blockSize
	if n > 0 {
		pos := wr.off + wr.g.inodeTable[wr.itabGrp]*blockSize
		if err := wr.out.wait(); err != nil { // one writer at a time
			return err
		}
		if _, err := wr.w.WriteAt(wr.itab[:n], pos); err != nil {
			return fmt.Errorf("write inode table of group %d: %w", wr.itabGrp, err)
		}
	}
	clear(wr.itab)
	return nil
}
