package squashfs

import (
	"encoding/binary"
	"fmt"
)

// metaSize is the uncompressed size of a metadata block.
const metaSize = 8192

// Bit 15 of a metadata block's header says it is stored as it is.
const metaRaw = 1 << 15

// metaWriter packs a stream of records (inodes, directory entries, table
// entries) into metadata blocks: 8 KiB of the stream each, compressed when
// that helps, behind a 2-byte header. Records may cross blocks. Positions
// in a table are (block start relative to the table, offset in the
// uncompressed block).
type metaWriter struct {
	c       compressor
	emit    func([]byte) error // appends encoded bytes to the table
	buf     []byte
	written uint64   // bytes emitted: where the current block starts
	starts  []uint64 // where each block started, when recording
	record  bool
}

func newMetaWriter(c compressor, emit func([]byte) error) *metaWriter {
	return &metaWriter{c: c, emit: emit, buf: make([]byte, 0, metaSize)}
}

// pos returns where the next byte goes.
func (m *metaWriter) pos() (block uint64, off uint16, err error) {
	if len(m.buf) == metaSize {
		if err := m.flush(); err != nil {
			return 0, 0, err
		}
	}
	return m.written, uint16(len(m.buf)), nil
}

// ref returns the next byte's position as a 64-bit reference: the block
// start shifted left by 16, or'ed with the offset.
func (m *metaWriter) ref() (uint64, error) {
	b, o, err := m.pos()
	return b<<16 | uint64(o), err
}

func (m *metaWriter) write(p []byte) error {
	for len(p) > 0 {
		if len(m.buf) == metaSize {
			if err := m.flush(); err != nil {
				return err
			}
		}
		k := min(len(p), metaSize-len(m.buf))
		m.buf = append(m.buf, p[:k]...)
		p = p[k:]
	}
	return nil
}

// flush emits the current block, if it holds anything.
func (m *metaWriter) flush() error {
	if len(m.buf) == 0 {
		return nil
	}
	data, err := m.c.compress(m.buf)
	if err != nil {
		return fmt.Errorf("compress metadata: %w", err)
	}
	hdr := uint16(len(data))
	if data == nil {
		data, hdr = m.buf, uint16(len(m.buf))|metaRaw
	}
	if m.record {
		m.starts = append(m.starts, m.written)
	}
	var h [2]byte
	binary.LittleEndian.PutUint16(h[:], hdr)
	if err := m.emit(h[:]); err != nil {
		return err
	}
	if err := m.emit(data); err != nil {
		return err
	}
	m.written += uint64(2 + len(data))
	m.buf = m.buf[:0]
	return nil
}

// table writes a lookup table (fixed-size entries in metadata blocks,
// then the list of those blocks' positions) at the sink's position, and
// returns the position of the list, which is what the superblock points
// at.
func (wr *writer) table(entries []byte) (uint64, error) { return wr.tableWith(entries, nil) }

// tableWith writes a lookup table with hdr between its blocks and their
// list, and returns the position of hdr.
func (wr *writer) tableWith(entries, hdr []byte) (uint64, error) {
	base := uint64(wr.out.pos)
	m := newMetaWriter(wr.mc, wr.out.write)
	m.record = true
	if err := m.write(entries); err != nil {
		return 0, err
	}
	if err := m.flush(); err != nil {
		return 0, err
	}
	at := uint64(wr.out.pos)
	if err := wr.out.write(hdr); err != nil {
		return 0, err
	}
	list := make([]byte, 0, 8*len(m.starts))
	for _, s := range m.starts {
		list = binary.LittleEndian.AppendUint64(list, base+s)
	}
	return at, wr.out.write(list)
}
