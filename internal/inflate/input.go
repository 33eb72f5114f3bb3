package inflate

import (
	"errors"
	"io"
	"strconv"
)

// input is the compressed stream, buffered: the decoder reads it eight
// bytes at a time straight from buf, and the gzip framing byte by byte.
type input struct {
	r      io.Reader
	buf    []byte
	ip, ie int   // next unread byte, end of the bytes read
	pos    int64 // stream offset of buf[0], for errors
	err    error // from r; io.EOF once it has ended
}

const (
	inputSize = 256 << 10
	// keepBack bytes before ip survive a refill: the decoder's bit
	// buffer can hold up to 7 bytes it read ahead, which it gives back
	// at the end of the stream (see decoder.unread).
	keepBack = 8
)

func newInput(r io.Reader) *input {
	return &input{r: r, buf: make([]byte, inputSize)}
}

// more reads from r after the unread bytes, keeping keepBack bytes
// before them. It returns false when r has nothing more: in.err says why.
func (in *input) more() bool {
	if in.err != nil {
		return false
	}
	if in.ip > keepBack {
		shift := in.ip - keepBack
		copy(in.buf, in.buf[shift:in.ie])
		in.ip -= shift
		in.ie -= shift
		in.pos += int64(shift)
	}
	for range 100 {
		n, err := in.r.Read(in.buf[in.ie:])
		in.ie += n
		if err != nil {
			in.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	in.err = io.ErrNoProgress
	return false
}

// errUnexpected is in.err when the stream needs more bytes: an early end
// of r is an unexpected one.
func (in *input) errUnexpected() error {
	if in.err == nil || in.err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return in.err
}

// readByte returns the next byte; the error is io.EOF only when r ended
// exactly here, before the byte.
func (in *input) readByte() (byte, error) {
	if in.ip == in.ie && !in.more() {
		if in.err == io.EOF {
			return 0, io.EOF
		}
		return 0, in.err
	}
	b := in.buf[in.ip]
	in.ip++
	return b, nil
}

// full fills p; an early end of r is io.ErrUnexpectedEOF.
func (in *input) full(p []byte) error {
	for len(p) > 0 {
		if in.ip == in.ie && !in.more() {
			return in.errUnexpected()
		}
		n := copy(p, in.buf[in.ip:in.ie])
		in.ip += n
		p = p[n:]
	}
	return nil
}

// offset is the stream offset of the next unread byte.
func (in *input) offset() int64 { return in.pos + int64(in.ip) }

// CorruptError reports a stream that breaks the format, at the offset
// of the compressed byte where the decoder found it.
type CorruptError struct {
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return "corrupt input at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Reason
}

// ErrChecksum and ErrHeader are the gzip framing's errors.
var (
	ErrHeader   = errors.New("gzip: invalid header")
	ErrChecksum = errors.New("gzip: invalid checksum")
)
