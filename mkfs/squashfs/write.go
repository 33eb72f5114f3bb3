package squashfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"time"
)

const (
	magic          = 0x73717368 // "hsqs"
	superblockSize = 96
	// noTable marks an absent table in the superblock.
	noTable = ^uint64(0)
)

// Superblock flags. Linux reads only flagOptions; the others tell
// unsquashfs -s how the filesystem was made.
const (
	flagAlwaysFrag = 0x0020 // every file's tail goes into a fragment
	flagExportable = 0x0080 // there is an export table
	flagNoXattrs   = 0x0200
	flagOptions    = 0x0400 // compressor options follow the superblock
)

// writer holds the state of one write of the filesystem.
type writer struct {
	f     *FS
	p     *plan
	codec *codec
	bs    int
	cpus  int
	now   time.Time
	out   *sink

	// mc compresses metadata on the writing goroutine once the data is
	// done: one of the data compressors, since some (zstd's best levels)
	// hold tens of MiB of tables each.
	mc      compressor
	inodes  *metaWriter
	dirs    *metaWriter
	dirBuf  bytes.Buffer
	frags   []fragEntry
	scratch []byte
}

// write writes the whole filesystem at off in w, writing nothing past
// limit bytes (when not negative), and returns its size padded to 4 KiB.
func (f *FS) write(w io.WriterAt, off, limit int64) (int64, error) {
	p, err := f.getPlan()
	if err != nil {
		return 0, err
	}
	bs := f.opts.BlockSize
	if bs == 0 {
		bs = defaultBlockSize
	}
	if bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return 0, fmt.Errorf("squashfs: block size %d: want a power of two from 4096 to 1048576", bs)
	}
	c, err := newCodec(f.opts.Compression, f.opts.Level, bs)
	if err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	now := f.opts.Time
	if now.IsZero() {
		now = p.newest
	}
	start := int64(superblockSize)
	if c.options != nil {
		start += 2 + int64(len(c.options))
	}
	wr := &writer{f: f, p: p, codec: c, bs: bs, cpus: runtime.GOMAXPROCS(0), now: now,
		out: newSink(w, off, limit, start)}
	f.opts.Log.Debug("squashfs", "compression", c.name, "block size", bs, "inodes", len(p.inodes),
		"files", len(p.files), "bytes", p.bytes)
	size, err := wr.run()
	if err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	return size, nil
}

func (wr *writer) run() (int64, error) {
	if err := wr.data(); err != nil {
		return 0, err
	}
	var sb superblock
	sb.inodeTable = uint64(wr.out.pos)
	wr.inodes = newMetaWriter(wr.mc, wr.out.write)
	wr.dirs = newMetaWriter(wr.mc, func(b []byte) error { _, err := wr.dirBuf.Write(b); return err })
	for i := range wr.p.inodes {
		in := &wr.p.inodes[i]
		var l *listing
		if in.n.IsDir() {
			var err error
			if l, err = wr.listing(in); err != nil {
				return 0, err
			}
		}
		if err := wr.putInode(uint32(i+1), in, l); err != nil {
			return 0, err
		}
	}
	if err := wr.inodes.flush(); err != nil {
		return 0, err
	}
	if err := wr.dirs.flush(); err != nil {
		return 0, err
	}
	sb.dirTable = uint64(wr.out.pos)
	if err := wr.out.write(wr.dirBuf.Bytes()); err != nil {
		return 0, err
	}
	wr.dirBuf = bytes.Buffer{}
	if err := wr.tables(&sb); err != nil {
		return 0, err
	}
	sb.bytesUsed = uint64(wr.out.pos)
	if err := wr.out.flush(); err != nil {
		return 0, err
	}
	if err := wr.superblock(&sb); err != nil {
		return 0, err
	}
	return (wr.out.pos + devBlock - 1) / devBlock * devBlock, nil
}

type superblock struct {
	inodeTable, dirTable, fragTable, exportTable, idTable, xattrTable uint64
	bytesUsed                                                         uint64
}

// tables writes the lookup tables after the directory table, in the order
// Linux checks them: each table's list of blocks must end where the next
// table's first block starts.
func (wr *writer) tables(sb *superblock) error {
	le := binary.LittleEndian
	var err error
	sb.fragTable = noTable
	if len(wr.frags) > 0 {
		e := make([]byte, 0, 16*len(wr.frags))
		for _, f := range wr.frags {
			e = le.AppendUint64(e, f.start)
			e = le.AppendUint32(e, f.size)
			e = le.AppendUint32(e, 0)
		}
		if sb.fragTable, err = wr.table(e); err != nil {
			return err
		}
	}
	e := make([]byte, 0, 8*len(wr.p.inodes))
	for _, in := range wr.p.inodes {
		e = le.AppendUint64(e, in.ref)
	}
	if sb.exportTable, err = wr.table(e); err != nil {
		return err
	}
	e = make([]byte, 0, 4*len(wr.p.ids))
	for _, id := range wr.p.ids {
		e = le.AppendUint32(e, id)
	}
	if sb.idTable, err = wr.table(e); err != nil {
		return err
	}
	sb.xattrTable = noTable
	if len(wr.p.xattrs) > 0 {
		if sb.xattrTable, err = wr.xattrTable(); err != nil {
			return err
		}
	}
	return nil
}

// xattrTable writes the key/value sets, the table of where each set is,
// and the header the superblock points at.
func (wr *writer) xattrTable() (uint64, error) {
	le := binary.LittleEndian
	kvStart := uint64(wr.out.pos)
	kv := newMetaWriter(wr.mc, wr.out.write)
	ids := make([]byte, 0, 16*len(wr.p.xattrs))
	for _, s := range wr.p.xattrs {
		ref, err := kv.ref()
		if err != nil {
			return 0, err
		}
		if err := kv.write(s.kv); err != nil {
			return 0, err
		}
		ids = le.AppendUint64(ids, ref)
		ids = le.AppendUint32(ids, s.count)
		ids = le.AppendUint32(ids, uint32(len(s.kv)))
	}
	if err := kv.flush(); err != nil {
		return 0, err
	}
	// The header (where the sets start, and how many) goes between the
	// table's blocks and their list.
	hdr := le.AppendUint64(nil, kvStart)
	hdr = le.AppendUint32(hdr, uint32(len(wr.p.xattrs)))
	hdr = le.AppendUint32(hdr, 0)
	return wr.tableWith(ids, hdr)
}

func (wr *writer) superblock(sb *superblock) error {
	le := binary.LittleEndian
	c := wr.codec
	flags := uint16(flagAlwaysFrag | flagExportable)
	if len(wr.p.xattrs) == 0 {
		flags |= flagNoXattrs
	}
	if c.options != nil {
		flags |= flagOptions
	}
	b := make([]byte, 0, superblockSize+2+len(c.options))
	b = le.AppendUint32(b, magic)
	b = le.AppendUint32(b, uint32(len(wr.p.inodes)))
	b = le.AppendUint32(b, clampTime(wr.now.Unix()))
	b = le.AppendUint32(b, uint32(wr.bs))
	b = le.AppendUint32(b, uint32(len(wr.frags)))
	b = le.AppendUint16(b, c.id)
	b = le.AppendUint16(b, uint16(bits.TrailingZeros(uint(wr.bs))))
	b = le.AppendUint16(b, flags)
	b = le.AppendUint16(b, uint16(len(wr.p.ids)))
	b = le.AppendUint16(b, 4)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, wr.p.inodes[len(wr.p.inodes)-1].ref)
	b = le.AppendUint64(b, sb.bytesUsed)
	b = le.AppendUint64(b, sb.idTable)
	b = le.AppendUint64(b, sb.xattrTable)
	b = le.AppendUint64(b, sb.inodeTable)
	b = le.AppendUint64(b, sb.dirTable)
	b = le.AppendUint64(b, sb.fragTable)
	b = le.AppendUint64(b, sb.exportTable)
	if c.options != nil {
		// Always stored as it is.
		b = le.AppendUint16(b, uint16(len(c.options))|metaRaw)
		b = append(b, c.options...)
	}
	return wr.out.writeAt(b, 0)
}
