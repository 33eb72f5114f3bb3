package erofs

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/ocidisk/ocidisk/fstree"
)

// chunk is how much file content is read at a time.
const chunk = 1 << 20

// writer holds the state of one write of the filesystem.
type writer struct {
	f   *FS
	p   *plan
	out *sink
	// meta holds the metadata blocks being filled, by block number,
	// until the last inode the layout put into each is written.
	meta map[int64][]byte
	free [][]byte // metadata block buffers for reuse
	// block0 holds block 0 until the end: the superblock's checksum
	// covers the inodes after it.
	block0 []byte
	// expect is the target's Expect, when it has one and BlockDigests
	// is set.
	expect func(off int64, digests []byte) error
	hash   hash.Hash // every metadata block written: the UUID of last resort
	rec    []byte    // an inode's bytes, reused
	tail   []byte
	done   int64
}

func (f *FS) write(w io.WriterAt, off int64, p *plan) error {
	wr := &writer{f: f, p: p, out: newSink(w, off), meta: map[int64][]byte{}, block0: make([]byte, blockSize),
		hash: sha256.New(), tail: make([]byte, blockSize)}
	if e, ok := w.(expecter); ok && f.opts.BlockDigests != nil {
		wr.expect = e.Expect
	}
	f.opts.Log.Debug("erofs", "inodes", len(p.inodes), "blocks", p.blocks, "bytes", p.bytes,
		"shared xattr bytes", len(p.xattrs.data))
	for i := range p.inodes {
		if err := wr.inode(int32(i), &p.inodes[i]); err != nil {
			return err
		}
	}
	if len(wr.meta) > 0 {
		return fmt.Errorf("%d metadata blocks left unwritten", len(wr.meta))
	}
	if len(p.xattrs.data) > 0 {
		x := make([]byte, (len(p.xattrs.data)+blockSize-1)&^(blockSize-1))
		copy(x, p.xattrs.data)
		wr.hash.Write(x)
		if err := wr.out.writeAt(x, int64(p.xattrBlock)*blockSize); err != nil {
			return err
		}
	}
	if err := wr.out.flush(); err != nil {
		return err
	}
	putSuperblock(wr.block0, superblock{
		rootNid:    uint16(p.inodes[0].nid()),
		inodes:     uint64(len(p.inodes)),
		buildTime:  p.build,
		blocks:     uint32(p.blocks),
		xattrBlock: p.xattrBlock,
		uuid:       f.uuid(wr.hash.Sum(nil)),
		label:      f.opts.Label,
	})
	return wr.out.put(wr.block0, 0)
}

// inode writes in's data blocks, then the inode with its xattrs and
// inline data into its metadata block.
func (wr *writer) inode(i int32, in *inode) error {
	size := in.isize() + int64(in.tail)
	first, last := in.pos/blockSize, (in.pos+size-1)/blockSize
	if err := wr.openMeta(first, last); err != nil {
		return err
	}
	var tail []byte
	var err error
	switch in.n.Type {
	case fstree.TypeRegular:
		tail, err = wr.file(in)
	case fstree.TypeDir:
		tail, err = wr.dir(in)
	case fstree.TypeSymlink:
		tail, err = wr.symlink(in)
	}
	if err != nil {
		return err
	}
	rec := appendInode(wr.rec[:0], in, wr.p.build)
	rec = append(rec, in.xattr...)
	rec = append(rec, tail...)
	wr.rec = rec
	if int64(len(rec)) != size {
		return fmt.Errorf("%s: inode of %d bytes, %d laid out", wr.path(in.n), len(rec), size)
	}
	for b := first; b <= last; b++ {
		rec = rec[copy(wr.meta[b][max(in.pos-b*blockSize, 0):], rec):]
		if wr.p.lastUse[b] == i {
			if err := wr.flushMeta(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// openMeta makes buffers for the metadata blocks first to last that have
// none yet. A new block is reserved in the sink at once when it continues
// the sink's run, so that the data blocks laid out after it continue the
// run too and the block joins them once filled.
func (wr *writer) openMeta(first, last int64) error {
	for b := first; b <= last; b++ {
		if wr.meta[b] != nil {
			continue
		}
		var buf []byte
		if n := len(wr.free); n > 0 {
			buf, wr.free = wr.free[n-1], wr.free[:n-1]
			clear(buf)
		} else {
			buf = make([]byte, blockSize)
		}
		wr.meta[b] = buf
		if at := b * blockSize; b != 0 && at == wr.out.bufAt+int64(len(wr.out.buf)) {
			s, err := wr.out.space(at, blockSize)
			if err != nil {
				return err
			}
			clear(s)
		}
	}
	return nil
}

// flushMeta writes metadata block b, whose last inode is in, and frees
// its buffer.
func (wr *writer) flushMeta(b int64) error {
	m := wr.meta[b]
	delete(wr.meta, b)
	wr.free = append(wr.free, m)
	wr.hash.Write(m)
	if b == 0 {
		copy(wr.block0, m) // written last, with the superblock
		return nil
	}
	return wr.out.writeAt(m, b*blockSize)
}

// file copies a regular file's content into its data blocks and returns
// its inline tail.
func (wr *writer) file(in *inode) ([]byte, error) {
	n := in.n
	if n.Size == 0 {
		return nil, nil
	}
	r, err := n.Content.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: open content: %w", wr.path(n), err)
	}
	defer r.Close()
	inBlocks := min(n.Size, in.blocks*blockSize)
	at := int64(in.blk) * blockSize
	if err := wr.expectBlocks(in, at); err != nil {
		return nil, err
	}
	for done := int64(0); done < inBlocks; {
		m := min(chunk, inBlocks-done)
		b, err := wr.out.space(at+done, int((m+blockSize-1)&^(blockSize-1)))
		if err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(r, b[:m]); err != nil {
			return nil, fmt.Errorf("%s: read content at %d of %d bytes: %w", wr.path(n), done, n.Size, err)
		}
		clear(b[m:])
		done += m
		wr.progress(m)
	}
	tail := wr.tail[:in.tail]
	if _, err := io.ReadFull(r, tail); err != nil {
		return nil, fmt.Errorf("%s: read content at %d of %d bytes: %w", wr.path(n), inBlocks, n.Size, err)
	}
	wr.progress(int64(len(tail)))
	var one [1]byte
	if k, _ := r.Read(one[:]); k > 0 {
		return nil, fmt.Errorf("%s: content is longer than its size, %d bytes", wr.path(n), n.Size)
	}
	return tail, nil
}

// expecter is verity.Writer's method: the digests of blocks about to be
// written (Options.BlockDigests).
type expecter interface {
	Expect(off int64, digests []byte) error
}

// expectBlocks passes on to the target the digests of file in's data
// blocks, at filesystem position at, when BlockDigests has them.
func (wr *writer) expectBlocks(in *inode, at int64) error {
	if wr.expect == nil || in.blocks == 0 {
		return nil
	}
	const digestSize = 32
	d := wr.f.opts.BlockDigests(in.n)
	if int64(len(d)) != (in.n.Size+blockSize-1)/blockSize*digestSize {
		return nil // none, or not of content of this size
	}
	if err := wr.expect(wr.out.off+at, d[:in.blocks*digestSize]); err != nil {
		return fmt.Errorf("%s: %w", wr.path(in.n), err)
	}
	return nil
}

func (wr *writer) progress(n int64) {
	wr.done += n
	if wr.f.opts.Progress != nil && n > 0 {
		wr.f.opts.Progress(wr.done, wr.p.bytes)
	}
}

// dir writes a directory's listing: its whole blocks into its data
// blocks, and returns the last one's used part when that is inline.
func (wr *writer) dir(in *inode) ([]byte, error) {
	p := wr.p
	ds := dirents(in.n.Entries())
	var tail []byte
	var err error
	k := int64(0)
	le := binary.LittleEndian
	packDir(ds, func(block []dirent, used int) {
		if err != nil {
			return
		}
		b := wr.tail[:blockSize]
		clear(b)
		nameoff := direntSize * len(block)
		for j, d := range block {
			var nid uint64
			var ft uint8
			switch {
			case d.node != nil:
				c := &p.inodes[p.index[d.node]]
				nid, ft = c.nid(), fileType(d.node.Type)
			case d.name == ".":
				nid, ft = in.nid(), fileType(fstree.TypeDir)
			default:
				nid, ft = p.inodes[in.parent].nid(), fileType(fstree.TypeDir)
			}
			e := b[direntSize*j:]
			le.PutUint64(e, nid)
			le.PutUint16(e[8:], uint16(nameoff))
			e[10] = ft
			nameoff += copy(b[nameoff:], d.name)
		}
		if k == in.blocks {
			tail = b[:used]
			return
		}
		wr.hash.Write(b)
		err = wr.out.writeAt(b, (int64(in.blk)+k)*blockSize)
		k++
	})
	return tail, err
}

// symlink returns a symlink's target to store inline, or writes it into
// its block.
func (wr *writer) symlink(in *inode) ([]byte, error) {
	if in.layout == layoutInline {
		return []byte(in.n.Target), nil
	}
	b := wr.tail[:blockSize]
	clear(b)
	copy(b, in.n.Target)
	wr.hash.Write(b)
	return nil, wr.out.writeAt(b, int64(in.blk)*blockSize)
}

// path names node n for an error: its first name, found by a walk, since
// errors are rare and the writer keeps no paths.
func (wr *writer) path(target *fstree.Node) string {
	found := "?"
	_ = wr.f.tree.Walk(func(p string, n *fstree.Node) error {
		if n == target {
			found = "/" + p
			return errFound
		}
		return nil
	})
	return found
}

var errFound = errors.New("found")
