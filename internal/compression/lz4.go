package compression

import (
	"encoding/binary"
	"io"
)

// The LZ4 frame format: a magic number, a descriptor (flags, block size,
// optionally the content size and a dictionary ID, a header checksum),
// blocks each led by its 4-byte size (the top bit marks a block stored
// uncompressed) and optionally followed by a checksum, an end mark (a zero
// size), optionally a checksum of the content. Skippable frames are a
// magic and a 4-byte size. Frames may be concatenated.
const (
	lz4Magic          = 0x184D2204
	lz4SkippableMagic = 0x184D2A50 // the low four bits are free
	lz4SkippableMask  = 0xFFFFFFF0

	lz4FlagContentSize     = 0x08
	lz4FlagContentChecksum = 0x04
	lz4FlagBlockChecksum   = 0x10
	lz4FlagDictID          = 0x01
)

// lz4Scanner follows the frame structure of the bytes read through it, so
// that an end of input anywhere but between frames is io.ErrUnexpectedEOF,
// not the io.EOF that pierrec/lz4 would take as the end of a frame whose
// end mark is missing. It only counts: the decoder checks everything else.
type lz4Scanner struct {
	r     io.Reader
	state lz4State
	hdr   [8]byte // the header field being collected
	have  int     // bytes of hdr collected
	skip  int64   // bytes to pass in lz4Skip
	after lz4State
	flags byte
	begun bool // a frame has started: an empty input is not a frame
}

type lz4State uint8

const (
	lz4Between   lz4State = iota // between frames: the only place input may end
	lz4Magic4                    // collecting a magic number
	lz4Flags                     // collecting flags and block size
	lz4DescRest                  // content size, dictionary ID, header checksum
	lz4SkipSize                  // a skippable frame's size
	lz4BlockSize                 // a block size or the end mark
	lz4Skip                      // passing bytes, then after
)

func (s *lz4Scanner) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.scan(p[:n])
	if err == io.EOF && (s.state != lz4Between || !s.begun) {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// collect gathers want header bytes from b; it reports whether they are
// complete and how many bytes of b it used.
func (s *lz4Scanner) collect(b []byte, want int) (bool, int) {
	k := copy(s.hdr[s.have:want], b)
	s.have += k
	if s.have < want {
		return false, k
	}
	s.have = 0
	return true, k
}

func (s *lz4Scanner) scan(b []byte) {
	for len(b) > 0 {
		switch s.state {
		case lz4Between:
			s.state, s.begun = lz4Magic4, true
		case lz4Magic4:
			done, k := s.collect(b, 4)
			b = b[k:]
			if !done {
				continue
			}
			switch m := binary.LittleEndian.Uint32(s.hdr[:4]); {
			case m == lz4Magic:
				s.state = lz4Flags
			case m&lz4SkippableMask == lz4SkippableMagic:
				s.state = lz4SkipSize
			default:
				// Not a frame: the decoder says so. Stop following.
				s.state, s.skip, s.after = lz4Skip, 1<<62, lz4Skip
			}
		case lz4Flags:
			done, k := s.collect(b, 2)
			b = b[k:]
			if done {
				s.flags = s.hdr[0]
				s.state = lz4DescRest
			}
		case lz4DescRest:
			want := 1
			if s.flags&lz4FlagContentSize != 0 {
				want += 8
			}
			if s.flags&lz4FlagDictID != 0 {
				want += 4
			}
			s.state, s.skip, s.after = lz4Skip, int64(want), lz4BlockSize
		case lz4SkipSize:
			done, k := s.collect(b, 4)
			b = b[k:]
			if done {
				s.state, s.skip, s.after = lz4Skip, int64(binary.LittleEndian.Uint32(s.hdr[:4])), lz4Between
			}
		case lz4BlockSize:
			done, k := s.collect(b, 4)
			b = b[k:]
			if !done {
				continue
			}
			size := int64(binary.LittleEndian.Uint32(s.hdr[:4]))
			if size == 0 { // the end mark
				s.state, s.skip, s.after = lz4Skip, 0, lz4Between
				if s.flags&lz4FlagContentChecksum != 0 {
					s.skip = 4
				}
				continue
			}
			s.state, s.skip, s.after = lz4Skip, size&0x7FFFFFFF, lz4BlockSize
			if s.flags&lz4FlagBlockChecksum != 0 {
				s.skip += 4
			}
		case lz4Skip:
			k := min(s.skip, int64(len(b)))
			b = b[k:]
			s.skip -= k
		}
		if s.state == lz4Skip && s.skip == 0 {
			s.state = s.after
		}
	}
	if s.state == lz4Skip && s.skip == 0 {
		s.state = s.after
	}
}
