package inflate

import (
	"encoding/binary"
	"hash/crc32"
	"io"
)

// GzipReader decodes a gzip file: one member, or several concatenated
// (as pigz and cat make them), read as one stream. Each member's CRC-32
// and size are checked at its end, and its header's CRC when it has one;
// bytes after the last member that do not start another are ErrHeader,
// as with compress/gzip.
type GzipReader struct {
	in   *input
	d    *decoder
	crc  uint32
	size uint32
	err  error
}

// maxString bounds a header's name and comment, with their NUL, as
// compress/gzip does (the RFC sets no bound): the image tools that run
// layers are Go programs, and a layer they refuse is refused here too.
const maxString = 512

const (
	flagHCRC    = 1 << 1
	flagExtra   = 1 << 2
	flagName    = 1 << 3
	flagComment = 1 << 4
)

// NewGzipReader reads the first member's header from r. An r with no
// bytes at all is io.EOF, as with compress/gzip.
func NewGzipReader(r io.Reader) (*GzipReader, error) {
	in := newInput(r)
	z := &GzipReader{in: in}
	if err := z.header(); err != nil {
		return nil, err
	}
	z.d = newDecoder(in)
	return z, nil
}

// Read returns the decoded bytes of the members in turn, and io.EOF
// after the last one's trailer checked.
func (z *GzipReader) Read(p []byte) (int, error) {
	b, err := z.chunk()
	if err != nil {
		return 0, err
	}
	n := copy(p, b)
	z.consume(b[:n])
	return n, nil
}

// WriteTo writes the decoded members to w from the decoder's own buffer,
// without the copy into a caller's that Read makes.
func (z *GzipReader) WriteTo(w io.Writer) (int64, error) {
	return writeChunks(w, z.chunk, z.consume)
}

// chunk returns the next decoded bytes, going on to the next member at
// the end of one.
func (z *GzipReader) chunk() ([]byte, error) {
	for z.err == nil {
		b, err := z.d.chunk()
		if err == nil {
			return b, nil
		}
		if err != io.EOF {
			z.err = err
			break
		}
		z.err = z.next()
	}
	return nil, z.err
}

// consume takes b, the start of the last chunk, as read: into the
// member's CRC and size.
func (z *GzipReader) consume(b []byte) {
	z.crc = crc32.Update(z.crc, crc32.IEEETable, b)
	z.size += uint32(len(b))
	z.d.rp += len(b)
}

// Close releases nothing: the reader holds no goroutine or file.
func (z *GzipReader) Close() error { return nil }

// next checks the member's trailer and reads the next member's header;
// io.EOF when the input ends after the trailer.
func (z *GzipReader) next() error {
	var t [8]byte
	if err := z.in.full(t[:]); err != nil {
		return err
	}
	if binary.LittleEndian.Uint32(t[0:]) != z.crc || binary.LittleEndian.Uint32(t[4:]) != z.size {
		return ErrChecksum
	}
	if err := z.header(); err != nil {
		return err
	}
	z.d.reset()
	z.crc, z.size = 0, 0
	return nil
}

// header reads a member header (RFC 1952 2.3). io.EOF: no byte at all.
func (z *GzipReader) header() error {
	in := z.in
	b, err := in.readByte()
	if err != nil {
		return err
	}
	var h [10]byte
	h[0] = b
	if err := in.full(h[1:]); err != nil {
		return err
	}
	// Reserved flag bits are ignored, as compress/gzip does: the gzip
	// tool refuses them, but images are made and run by Go programs, and a
	// layer they take must build.
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
		return ErrHeader
	}
	flags := h[3]
	crc := crc32.Update(0, crc32.IEEETable, h[:])
	if flags&flagExtra != 0 {
		var x [2]byte
		if err := in.full(x[:]); err != nil {
			return err
		}
		crc = crc32.Update(crc, crc32.IEEETable, x[:])
		extra := make([]byte, binary.LittleEndian.Uint16(x[:]))
		if err := in.full(extra); err != nil {
			return err
		}
		crc = crc32.Update(crc, crc32.IEEETable, extra)
	}
	for _, f := range []byte{flagName, flagComment} {
		if flags&f == 0 {
			continue
		}
		for i := 0; ; i++ {
			if i == maxString {
				return ErrHeader
			}
			c, err := in.readByte()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return err
			}
			crc = crc32.Update(crc, crc32.IEEETable, []byte{c})
			if c == 0 {
				break
			}
		}
	}
	if flags&flagHCRC != 0 {
		var x [2]byte
		if err := in.full(x[:]); err != nil {
			return err
		}
		if binary.LittleEndian.Uint16(x[:]) != uint16(crc) {
			return ErrHeader
		}
	}
	return nil
}
