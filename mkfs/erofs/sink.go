package erofs

import (
	"bytes"
	"fmt"
	"io"
)

// zeroer is diskimage.ZeroWriterAt's method: ZeroAt records that a range
// must read as zeros without writing it.
type zeroer interface {
	ZeroAt(off, n int64) error
}

// sink gathers the filesystem's writes into large ones. It buffers one
// contiguous range; a write that continues it is appended, one inside it
// is copied in (a metadata block finished after the data blocks behind
// it), anything else flushes it. Whole blocks of zeros are never written:
// a zeroer is told about them instead, or they are left as the target
// has them (zeros, as the package requires).
type sink struct {
	w     io.WriterAt
	z     zeroer
	off   int64 // where the filesystem starts in w
	buf   []byte
	bufAt int64 // filesystem position of buf[0]
	zero  [blockSize]byte
}

func newSink(w io.WriterAt, off int64) *sink {
	s := &sink{w: w, off: off, buf: make([]byte, 0, 4<<20)}
	s.z, _ = w.(zeroer)
	return s
}

// space returns n bytes of buffer (n at most its capacity) for the
// filesystem bytes at position at, for the caller to fill.
func (s *sink) space(at int64, n int) ([]byte, error) {
	if at != s.bufAt+int64(len(s.buf)) || len(s.buf)+n > cap(s.buf) {
		if err := s.flush(); err != nil {
			return nil, err
		}
		s.bufAt = at
	}
	l := len(s.buf)
	s.buf = s.buf[:l+n]
	return s.buf[l : l+n], nil
}

// writeAt writes p at filesystem position at.
func (s *sink) writeAt(p []byte, at int64) error {
	end := s.bufAt + int64(len(s.buf))
	switch {
	case at >= s.bufAt && at+int64(len(p)) <= end:
		copy(s.buf[at-s.bufAt:], p)
		return nil
	case at == end && len(p) <= cap(s.buf):
		b, err := s.space(at, len(p))
		if err != nil {
			return err
		}
		copy(b, p)
		return nil
	}
	return s.put(p, at)
}

func (s *sink) flush() error {
	err := s.put(s.buf, s.bufAt)
	s.buf = s.buf[:0]
	return err
}

// put writes p at filesystem position at, leaving out the blocks of
// zeros in it.
func (s *sink) put(p []byte, at int64) error {
	run, runZero := 0, false // the run of chunks being gathered: from run, all zero or none
	for i := 0; i <= len(p); {
		var j int
		var zero bool
		if i < len(p) {
			// The chunk up to the next block boundary.
			j = min(i+blockSize-int((at+int64(i))%blockSize), len(p))
			zero = bytes.Equal(p[i:j], s.zero[:j-i])
			if i == run {
				runZero = zero
			}
		}
		if i == len(p) || zero != runZero {
			var err error
			switch {
			case run == i:
			case !runZero:
				_, err = s.w.WriteAt(p[run:i], s.off+at+int64(run))
			case s.z != nil:
				err = s.z.ZeroAt(s.off+at+int64(run), int64(i-run))
			}
			if err != nil {
				return fmt.Errorf("write %d bytes at %d: %w", i-run, at+int64(run), err)
			}
			if i == len(p) {
				return nil
			}
			run, runZero = i, zero
		}
		i = j
	}
	return nil
}
