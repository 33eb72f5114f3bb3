package xz

import "errors"

// The LZMA decoder proper: a range decoder over one LZMA2 chunk's bytes and
// the probability model, writing into a window (see window.go). It follows
// the LZMA specification (lzma-specification.txt in the LZMA SDK); the
// names are the specification's.

const (
	numStates   = 12
	maxPosBits  = 4 // pb and lp are at most 4
	minMatchLen = 2
	maxMatchLen = minMatchLen + 8 + 8 + 256 - 1 // 273

	probBits     = 11
	probInit     = 1 << (probBits - 1)
	moveBits     = 5
	topValue     = 1 << 24
	endPosModel  = 14  // slots from here on code their low bits through align
	fullDistance = 128 // distances below this have their own probabilities
	alignBits    = 4
)

var errCorrupt = errors.New("corrupt LZMA2 data")

type prob uint16

// slack is how far past a chunk's end the range decoder may read before a
// check notices: more than one symbol's worth of bytes. Chunk buffers have
// that much capacity beyond their length (see memSource and parser), so
// the byte reads need no bounds test of their own.
const slack = 64

// rangeDecoder is the range decoder's state. It is a value, passed to and
// returned from the functions that decode with it, so that the compiler
// keeps it in registers: the decoder spends most of its time here. It
// reads in, one chunk's bytes and the slack after them; past the chunk's
// end it reads on and counts, so that one check after each symbol
// (overrun) replaces a test per byte.
type rangeDecoder struct {
	rng, code uint32
	pos       int
}

// newRangeDecoder starts on a chunk and returns the buffer to read it
// from, which has slack bytes beyond the chunk.
func newRangeDecoder(in []byte) (rangeDecoder, []byte, error) {
	if len(in) < 5 || in[0] != 0 {
		return rangeDecoder{}, nil, errCorrupt
	}
	if cap(in)-len(in) < slack {
		in = append(in[:len(in):len(in)], make([]byte, slack)...)
	}
	rc := rangeDecoder{rng: 0xFFFFFFFF, pos: 5,
		code: uint32(in[1])<<24 | uint32(in[2])<<16 | uint32(in[3])<<8 | uint32(in[4])}
	if rc.code == rc.rng {
		return rangeDecoder{}, nil, errCorrupt
	}
	return rc, in[:cap(in)], nil
}

// finished reports a chunk of end bytes read exactly to its end, as LZMA2
// requires.
func (rc rangeDecoder) finished(in []byte, end int) bool {
	if rc.rng < topValue { // the normalization a next bit would do
		rc.code = rc.code<<8 | uint32(in[rc.pos])
		rc.pos++
	}
	return rc.pos == end && rc.code == 0
}

// bit decodes one bit with probability p. It normalizes first, as the
// specification's decoder does. It is written to stay within the
// compiler's inlining budget, which matters more than anything else here.
func (rc rangeDecoder) bit(in []byte, p *prob) (rangeDecoder, uint32) {
	if rc.rng < topValue {
		rc.rng <<= 8
		rc.code = rc.code<<8 | uint32(in[rc.pos])
		rc.pos++
	}
	bound := (rc.rng >> probBits) * uint32(*p)
	if rc.code < bound {
		*p += (1<<probBits - *p) >> moveBits
		rc.rng = bound
		return rc, 0
	}
	*p -= *p >> moveBits
	rc.rng -= bound
	rc.code -= bound
	return rc, 1
}

// normalized returns rc after the normalization bit and bitFree need.
func (rc rangeDecoder) normalized(in []byte) rangeDecoder {
	if rc.rng < topValue {
		rc.rng <<= 8
		rc.code = rc.code<<8 | uint32(in[rc.pos])
		rc.pos++
	}
	return rc
}

// bitFree is bit, on a normalized decoder, without a branch on the bit
// decoded, for the trees of literals, lengths and distances, whose bits
// are the least predictable: both outcomes are computed and a mask keeps
// the right one, so that there is no wrong guess for the processor to
// pay for.
func (rc rangeDecoder) bitFree(p *prob) (rangeDecoder, uint32) {
	v := uint32(*p)
	bound := (rc.rng >> probBits) * v
	m := uint32((int64(rc.code) - int64(bound)) >> 63) // all ones for a 0 bit
	rc.rng = bound&m | (rc.rng-bound)&^m
	rc.code -= bound &^ m
	*p = prob(v + (1<<probBits-v)>>moveBits&m - v>>moveBits&^m)
	return rc, ^m & 1
}

// tree decodes n bits, most significant first, with probs[1 : 1<<n].
func (rc rangeDecoder) tree(in []byte, probs []prob, n uint) (rangeDecoder, uint32) {
	m := uint32(1)
	for range n {
		var b uint32
		rc, b = rc.normalized(in).bitFree(&probs[m])
		m = m<<1 | b
	}
	return rc, m - 1<<n
}

// reverse decodes n bits, least significant first, with probs[1 : 1<<n].
func (rc rangeDecoder) reverse(in []byte, probs []prob, n uint) (rangeDecoder, uint32) {
	m, sym := uint32(1), uint32(0)
	for i := range n {
		var b uint32
		rc, b = rc.normalized(in).bitFree(&probs[m])
		m = m<<1 | b
		sym |= b << i
	}
	return rc, sym
}

// direct decodes n bits of probability one half.
func (rc rangeDecoder) direct(in []byte, n uint) (rangeDecoder, uint32) {
	var v uint32
	for range n {
		if rc.rng < topValue {
			rc.rng <<= 8
			rc.code = rc.code<<8 | uint32(in[rc.pos])
			rc.pos++
		}
		rc.rng >>= 1
		rc.code -= rc.rng
		t := 0 - (rc.code >> 31) // all ones when code was below rng
		rc.code += rc.rng & t
		v = v<<1 + (t + 1)
	}
	return rc, v
}

// literal decodes a literal byte.
func (rc rangeDecoder) literal(in []byte, probs *[0x400]prob) (rangeDecoder, byte) {
	sym := uint32(1)
	for sym < 0x100 {
		var b uint32
		rc, b = rc.normalized(in).bitFree(&probs[sym])
		sym = sym<<1 | b
	}
	return rc, byte(sym)
}

// matchedLiteral decodes a literal after a match, with the byte at
// distance rep0 as context for as long as their bits agree.
func (rc rangeDecoder) matchedLiteral(in []byte, probs *[0x400]prob, match uint32) (rangeDecoder, byte) {
	sym, off := uint32(1), uint32(0x100)
	for sym < 0x100 {
		match <<= 1
		mbit := match & off
		var b uint32
		rc, b = rc.normalized(in).bitFree(&probs[(off+mbit+sym)&0x3FF])
		sym = sym<<1 | b
		off &= mbit ^ (b - 1) // stays while the bits agree
	}
	return rc, byte(sym)
}

// lenModel is the probabilities of match lengths: a choice between
// the low (2-9), middle (10-17) and high (18-273) trees. The encoder uses
// the same layout.
type lenModel struct {
	choice, choice2 prob
	low, mid        [1 << maxPosBits][1 << 3]prob
	high            [1 << 8]prob
}

func (l *lenModel) reset() {
	l.choice, l.choice2 = probInit, probInit
	for i := range l.low {
		fill(l.low[i][:])
		fill(l.mid[i][:])
	}
	fill(l.high[:])
}

// decode returns the match length minus minMatchLen.
func (l *lenModel) decode(rc rangeDecoder, in []byte, posState uint32) (rangeDecoder, uint32) {
	rc, b := rc.bit(in, &l.choice)
	if b == 0 {
		return rc.tree(in, l.low[posState&(1<<maxPosBits-1)][:], 3)
	}
	rc, b = rc.bit(in, &l.choice2)
	var n uint32
	if b == 0 {
		rc, n = rc.tree(in, l.mid[posState&(1<<maxPosBits-1)][:], 3)
		return rc, 8 + n
	}
	rc, n = rc.tree(in, l.high[:], 8)
	return rc, 16 + n
}

// lzmaState is the model: the probabilities, the state machine and the
// last four match distances. The encoder keeps its model in the same
// shape.
type lzmaState struct {
	lc, lp, pb uint
	literal    []prob // 0x400 per literal context (0x300 used): 1 << (lc+lp) contexts
	isMatch    [numStates << maxPosBits]prob
	isRep      [numStates]prob
	isRepG0    [numStates]prob
	isRepG1    [numStates]prob
	isRepG2    [numStates]prob
	isRep0Long [numStates << maxPosBits]prob
	posSlot    [4][1 << 6]prob
	posSpecial [1 + fullDistance - endPosModel]prob // from index 1, as the trees
	align      [1 << alignBits]prob
	matchLen   lenModel
	repLen     lenModel

	state uint32
	rep   [4]uint32
}

// setProps sets lc, lp and pb from the LZMA2 properties byte.
func (s *lzmaState) setProps(b byte) error {
	if b > (4*5+4)*9+8 {
		return errCorrupt
	}
	lc, rest := uint(b)%9, uint(b)/9
	lp, pb := rest%5, rest/5
	if lc+lp > 4 || pb > 4 {
		return errCorrupt
	}
	s.lc, s.lp, s.pb = lc, lp, pb
	if n := 0x400 << (lc + lp); cap(s.literal) >= n {
		s.literal = s.literal[:n]
	} else {
		s.literal = make([]prob, n)
	}
	return nil
}

// reset starts the model afresh (an LZMA2 state reset).
func (s *lzmaState) reset() {
	fill(s.literal)
	fill(s.isMatch[:])
	fill(s.isRep[:])
	fill(s.isRepG0[:])
	fill(s.isRepG1[:])
	fill(s.isRepG2[:])
	fill(s.isRep0Long[:])
	for i := range s.posSlot {
		fill(s.posSlot[i][:])
	}
	fill(s.posSpecial[:])
	fill(s.align[:])
	s.matchLen.reset()
	s.repLen.reset()
	s.state = 0
	s.rep = [4]uint32{}
}

func fill(p []prob) {
	for i := range p {
		p[i] = probInit
	}
}

// decode decodes symbols into w until w.pos reaches end, which must fall
// on a symbol boundary (LZMA2 chunks end on one), reading with rc from in,
// whose chunk ends at inEnd.
func (s *lzmaState) decode(rc rangeDecoder, in []byte, inEnd int, w *window, end int) (rangeDecoder, error) {
	pbMask := uint32(1)<<s.pb - 1
	lpMask := uint32(1)<<s.lp - 1
	lc := s.lc
	buf := w.buf[:end]
	pos := w.pos
	floor := w.floor
	dictSize := w.dictSize
	state := s.state
	rep0, rep1, rep2, rep3 := s.rep[0], s.rep[1], s.rep[2], s.rep[3]
	var err error
	for pos < end {
		if rc.pos > inEnd {
			err = errCorrupt
			break
		}
		abs := uint32(pos) + w.phase
		posState := abs & pbMask
		var b uint32
		rc, b = rc.bit(in, &s.isMatch[(state<<maxPosBits|posState)])
		if b == 0 {
			var prev uint32
			if pos > floor {
				prev = uint32(buf[pos-1])
			}
			ctx := (abs&lpMask)<<lc + prev>>(8-lc)
			probs := (*[0x400]prob)(s.literal[0x400*ctx:])
			var c byte
			if state < 7 {
				rc, c = rc.literal(in, probs)
			} else {
				if int(rep0) >= pos-floor {
					err = errCorrupt
					break
				}
				rc, c = rc.matchedLiteral(in, probs, uint32(buf[pos-int(rep0)-1]))
			}
			buf[pos] = c
			pos++
			switch {
			case state < 4:
				state = 0
			case state < 10:
				state -= 3
			default:
				state -= 6
			}
			continue
		}

		var n uint32
		if rc, b = rc.bit(in, &s.isRep[state]); b == 0 {
			rc, n = s.matchLen.decode(rc, in, posState)
			if state < 7 {
				state = 7
			} else {
				state = 10
			}
			var dist uint32
			rc, dist = s.distance(rc, in, n)
			rep3, rep2, rep1, rep0 = rep2, rep1, rep0, dist
		} else {
			if rc, b = rc.bit(in, &s.isRepG0[state]); b == 0 {
				if rc, b = rc.bit(in, &s.isRep0Long[(state<<maxPosBits|posState)]); b == 0 {
					// A short rep: one byte from distance rep0.
					if int(rep0) >= pos-floor {
						err = errCorrupt
						break
					}
					if state < 7 {
						state = 9
					} else {
						state = 11
					}
					buf[pos] = buf[pos-int(rep0)-1]
					pos++
					continue
				}
			} else {
				var dist uint32
				if rc, b = rc.bit(in, &s.isRepG1[state]); b == 0 {
					dist = rep1
				} else {
					if rc, b = rc.bit(in, &s.isRepG2[state]); b == 0 {
						dist = rep2
					} else {
						dist = rep3
						rep3 = rep2
					}
					rep2 = rep1
				}
				rep1 = rep0
				rep0 = dist
			}
			rc, n = s.repLen.decode(rc, in, posState)
			if state < 7 {
				state = 8
			} else {
				state = 11
			}
		}
		length := int(n) + minMatchLen
		d := int(rep0) + 1
		// rep0 is 0xFFFFFFFF for an end marker, which LZMA2 has none of:
		// it fails the first test.
		if d > pos-floor || d > dictSize || length > end-pos {
			err = errCorrupt
			break
		}
		src := pos - d
		if d >= length {
			copy(buf[pos:pos+length], buf[src:src+length])
			pos += length
		} else {
			// An overlapping match repeats the last d bytes: copy what is
			// there, which doubles each time.
			for left := length; left > 0; {
				k := copy(buf[pos:pos+left], buf[src:pos])
				pos += k
				left -= k
			}
		}
	}
	if err == nil && rc.pos > inEnd {
		err = errCorrupt
	}
	w.pos = pos
	s.state = state
	s.rep = [4]uint32{rep0, rep1, rep2, rep3}
	return rc, err
}

// distance decodes a match distance (minus one) for a match of length
// n+minMatchLen.
func (s *lzmaState) distance(rc rangeDecoder, in []byte, n uint32) (rangeDecoder, uint32) {
	rc, slot := rc.tree(in, s.posSlot[min(n, 3)][:], 6)
	if slot < 4 {
		return rc, slot
	}
	nd := uint(slot>>1) - 1
	dist := (2 | slot&1) << nd
	if slot < endPosModel {
		var low uint32
		rc, low = rc.reverse(in, s.posSpecial[dist-slot:], nd)
		return rc, dist + low
	}
	var mid, low uint32
	rc, mid = rc.direct(in, nd-alignBits)
	rc, low = rc.reverse(in, s.align[:], alignBits)
	return rc, dist + mid<<alignBits + low
}
