package squashfs

import (
	"encoding/binary"
)

const (
	dirHeaderSize = 12 // count, inode block, base inode number
	dirEntrySize  = 8  // offset, inode delta, type, name length; then the name
	maxDirRun     = 256
)

// listing is where a directory's entries went in the directory table.
type listing struct {
	block uint32 // start of the metadata block, relative to the table
	off   uint16
	size  uint32 // bytes, headers included
	index []dirIndex
}

// dirIndex points a lookup at a run of entries: the run's header at
// index bytes into the listing, in the metadata block at block, and the
// name of its first entry.
type dirIndex struct {
	index uint32
	block uint32
	name  string
}

// listing writes directory d's entries into the directory table.
//
// Entries come in runs behind a header holding what they share: the
// metadata block of their inodes and a base inode number (each entry
// keeps a 16-bit offset into that block and a 16-bit difference from the
// base). A run ends when either changes too much, after 256 entries, or
// when the next entry would start in the next metadata block; the run
// that starts there gets an index entry, so that Linux finds a name by
// reading the index and then one or two metadata blocks, however big the
// directory.
func (wr *writer) listing(d *inode) (*listing, error) {
	es := d.n.Entries()
	blk, off, err := wr.dirs.pos()
	if err != nil {
		return nil, err
	}
	l := &listing{block: uint32(blk), off: off}
	le := binary.LittleEndian
	lastBlock := blk
	for i := 0; i < len(es); {
		hblk, hoff, err := wr.dirs.pos()
		if err != nil {
			return nil, err
		}
		base := wr.p.ino[es[i].Node]
		iblock := wr.p.inodes[base-1].ref >> 16
		j, used := i, dirHeaderSize
		for j < len(es) && j-i < maxDirRun {
			ino := wr.p.ino[es[j].Node]
			delta := int64(ino) - int64(base)
			if wr.p.inodes[ino-1].ref>>16 != iblock || delta < -32768 || delta > 32767 {
				break
			}
			if j > i && int(hoff)+used >= metaSize {
				break
			}
			used += dirEntrySize + len(es[j].Name)
			j++
		}
		if hblk != lastBlock {
			l.index = append(l.index, dirIndex{index: l.size, block: uint32(hblk), name: es[i].Name})
			lastBlock = hblk
		}
		b := le.AppendUint32(wr.scratch[:0], uint32(j-i-1))
		b = le.AppendUint32(b, uint32(iblock))
		b = le.AppendUint32(b, base)
		for _, e := range es[i:j] {
			ino := wr.p.ino[e.Node]
			c := &wr.p.inodes[ino-1]
			b = le.AppendUint16(b, uint16(c.ref))
			b = le.AppendUint16(b, uint16(int16(int64(ino)-int64(base))))
			b = le.AppendUint16(b, basicType(e.Node.Type))
			b = le.AppendUint16(b, uint16(len(e.Name)-1))
			b = append(b, e.Name...)
		}
		wr.scratch = b
		if err := wr.dirs.write(b); err != nil {
			return nil, err
		}
		l.size += uint32(len(b))
		i = j
	}
	return l, nil
}
