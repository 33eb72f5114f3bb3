package xz

import (
	"fmt"
	"io"
)

// maxChunk is the most an LZMA2 chunk decompresses to.
const maxChunk = 1 << 21

// window is the decoder's output and dictionary: bytes are decoded at pos
// and matches copy from the bytes between floor and pos.
//
// A block decoded whole (its size known) gets a window of exactly its
// size, which is also its output. Otherwise the window holds the dictionary
// plus room for a chunk: before a chunk that does not fit, the bytes not
// yet handed out go to flush and the last dictSize bytes slide to the
// front.
type window struct {
	buf      []byte
	pos      int
	start    int    // buf[start:pos] has not been flushed
	floor    int    // where the dictionary begins: the last reset
	phase    uint32 // added to pos, counts from the reset: pb and lp use it mod 16
	dictSize int
	flush    func([]byte) error // nil for a window of the whole block
}

// reset empties the dictionary (an LZMA2 dictionary reset).
func (w *window) reset() error {
	if w.flush == nil {
		// The output stays; the dictionary starts here.
		w.floor = w.pos
		w.phase = -uint32(w.pos)
		return nil
	}
	if w.pos > w.start {
		if err := w.flush(w.buf[w.start:w.pos]); err != nil {
			return err
		}
	}
	w.pos, w.start, w.floor, w.phase = 0, 0, 0, 0
	return nil
}

// room makes room for n more bytes.
func (w *window) room(n int) error {
	if len(w.buf)-w.pos >= n {
		return nil
	}
	if w.flush == nil {
		return fmt.Errorf("%w: more data than the block header says", errCorrupt)
	}
	if w.pos > w.start {
		if err := w.flush(w.buf[w.start:w.pos]); err != nil {
			return err
		}
	}
	w.start = w.pos
	if want := w.dictSize + maxChunk; len(w.buf) < want {
		// Grow towards the full size: small streams stay small.
		nb := make([]byte, min(want, max(2*len(w.buf), w.pos+n, 1<<20)))
		copy(nb, w.buf[:w.pos])
		w.buf = nb
		if len(w.buf)-w.pos >= n {
			return nil
		}
	}
	keep := min(w.pos-w.floor, w.dictSize)
	copy(w.buf, w.buf[w.pos-keep:w.pos])
	w.phase += uint32(w.pos - keep)
	w.pos, w.start, w.floor = keep, keep, 0
	return nil
}

// source yields a block's bytes: from memory for blocks read whole, from
// the stream otherwise.
type source interface {
	io.ByteReader
	// next returns the following n bytes, valid until the next call.
	next(n int) ([]byte, error)
}

type memSource struct {
	b   []byte
	off int
}

func (m *memSource) ReadByte() (byte, error) {
	if m.off >= len(m.b) {
		return 0, io.ErrUnexpectedEOF
	}
	m.off++
	return m.b[m.off-1], nil
}

func (m *memSource) next(n int) ([]byte, error) {
	if n > len(m.b)-m.off {
		return nil, io.ErrUnexpectedEOF
	}
	m.off += n
	return m.b[m.off-n : m.off], nil
}

// lzma2 decodes an LZMA2 stream, chunk by chunk.
type lzma2 struct {
	s             lzmaState
	w             window
	needDictReset bool
	needProps     bool
}

func newLZMA2(dictSize int) *lzma2 {
	return &lzma2{w: window{dictSize: dictSize}, needDictReset: true, needProps: true}
}

// chunk decodes the next chunk from src; it returns false after the end
// marker.
func (d *lzma2) chunk(src source) (bool, error) {
	ctl, err := src.ReadByte()
	if err != nil {
		return false, noEOF(err)
	}
	switch {
	case ctl == 0x00:
		return false, nil
	case ctl == 0x01 || ctl == 0x02:
		if ctl == 0x01 {
			if err := d.w.reset(); err != nil {
				return false, err
			}
			d.needDictReset = false
		} else if d.needDictReset {
			return false, errCorrupt
		}
		hdr, err := src.next(2)
		if err != nil {
			return false, noEOF(err)
		}
		n := int(hdr[0])<<8 | int(hdr[1]) + 1
		data, err := src.next(n)
		if err != nil {
			return false, noEOF(err)
		}
		if err := d.w.room(n); err != nil {
			return false, err
		}
		copy(d.w.buf[d.w.pos:], data)
		d.w.pos += n
		return true, nil
	case ctl < 0x80:
		return false, fmt.Errorf("%w: control byte %#x", errCorrupt, ctl)
	}

	reset := ctl >> 5 & 3
	hdr, err := src.next(4)
	if err != nil {
		return false, noEOF(err)
	}
	unpacked := int(ctl&0x1F)<<16 | int(hdr[0])<<8 | int(hdr[1]) + 1
	packed := int(hdr[2])<<8 | int(hdr[3]) + 1
	if reset == 3 {
		if err := d.w.reset(); err != nil {
			return false, err
		}
		d.needDictReset = false
	} else if d.needDictReset {
		return false, errCorrupt
	}
	if reset >= 2 {
		p, err := src.ReadByte()
		if err != nil {
			return false, noEOF(err)
		}
		if err := d.s.setProps(p); err != nil {
			return false, err
		}
		d.needProps = false
	} else if d.needProps {
		return false, errCorrupt
	}
	if reset >= 1 {
		d.s.reset()
	}
	in, err := src.next(packed)
	if err != nil {
		return false, noEOF(err)
	}
	if err := d.w.room(unpacked); err != nil {
		return false, err
	}
	rc, buf, err := newRangeDecoder(in)
	if err != nil {
		return false, err
	}
	if rc, err = d.s.decode(rc, buf, len(in), &d.w, d.w.pos+unpacked); err != nil {
		return false, err
	}
	if !rc.finished(buf, len(in)) {
		return false, fmt.Errorf("%w: chunk does not end where its header says", errCorrupt)
	}
	return true, nil
}

// noEOF turns the end of input inside a block into a truncation error.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
