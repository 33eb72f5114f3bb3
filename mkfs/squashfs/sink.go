package squashfs

import (
	"fmt"
	"io"
)

// sink writes the filesystem front to back into an io.WriterAt, gathering
// small writes (metadata blocks, short data blocks) into large ones. With
// a limit it writes nothing past it and only counts, so that a filesystem
// too big for its region still learns its size for the error.
type sink struct {
	w     io.WriterAt
	off   int64 // where the filesystem starts in w
	limit int64 // bytes the filesystem may take; negative for no limit
	pos   int64 // bytes so far: the next byte's position in the filesystem
	buf   []byte
	bufAt int64 // filesystem position of buf[0]
}

func newSink(w io.WriterAt, off, limit, start int64) *sink {
	return &sink{w: w, off: off, limit: limit, pos: start, bufAt: start, buf: make([]byte, 0, 1<<20)}
}

// over reports whether the filesystem has outgrown its region.
func (s *sink) over() bool { return s.limit >= 0 && s.pos > s.limit }

func (s *sink) write(p []byte) error {
	s.pos += int64(len(p))
	if s.over() {
		s.buf = s.buf[:0]
		return nil
	}
	if len(s.buf)+len(p) > cap(s.buf) {
		if err := s.flush(); err != nil {
			return err
		}
		if len(p) >= cap(s.buf) {
			return s.writeAt(p, s.pos-int64(len(p)))
		}
	}
	if len(s.buf) == 0 {
		s.bufAt = s.pos - int64(len(p))
	}
	s.buf = append(s.buf, p...)
	return nil
}

func (s *sink) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.writeAt(s.buf, s.bufAt)
	s.buf = s.buf[:0]
	return err
}

// writeAt writes p at filesystem position at, unless that is past the
// limit.
func (s *sink) writeAt(p []byte, at int64) error {
	if s.limit >= 0 && at+int64(len(p)) > s.limit {
		return nil
	}
	if _, err := s.w.WriteAt(p, s.off+at); err != nil {
		return fmt.Errorf("write %d bytes at %d: %w", len(p), at, err)
	}
	return nil
}
