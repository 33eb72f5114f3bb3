package inflate

import "errors"

// A decode table maps the next bits of the stream (least significant
// first, as DEFLATE packs them) to an entry that says how many bits the
// codeword takes and what it means. Codewords longer than the primary
// table's index point to a subtable indexed by the bits that follow, as
// in zlib and libdeflate: the primary table stays small enough for the
// cache while one lookup decodes almost every symbol.
//
// An entry is a uint32:
//
//	bits 0-7    bits this level of the codeword takes
//	bits 8-11   extra bits that follow (length and distance symbols);
//	            for a subtable pointer, the subtable's index bits
//	bit 12      subtable pointer
//	bit 13      literal
//	bit 14      end of block
//	bit 15      invalid: the stream is corrupt if it decodes to this
//	bits 16-31  value: the literal, the base length or distance, or the
//	            subtable's offset
const (
	entSub     = 1 << 12
	entLiteral = 1 << 13
	entEOB     = 1 << 14
	entInvalid = 1 << 15
	// entSpecial is what sends the fast loop out: the end of the block or
	// a symbol the stream may not use.
	entSpecial = entEOB | entInvalid
)

const (
	maxCodeLen = 15 // the longest codeword DEFLATE allows
	litlenBits = 11 // index bits of the literal/length primary table
	distBits   = 8  // index bits of the distance primary table
	clenBits   = 7  // the code-length code's longest codeword: one level
)

// table is one decode table: a primary of 1<<bits entries and the
// subtables after it.
type table struct {
	bits  uint
	mask  uint64
	entry []uint32
}

func newTable(bits uint) *table {
	// Subtables need at most a few hundred entries past the primary for
	// the codes DEFLATE allows (zlib's enough: 852 for litlen with 9
	// index bits, fewer with 11); capacity for them up front.
	return &table{bits: bits, mask: 1<<bits - 1, entry: make([]uint32, 1<<bits, 1<<bits+1024)}
}

var (
	errOversubscribed = errors.New("a Huffman code has more codewords than fit (over-subscribed)")
	errIncomplete     = errors.New("a Huffman code leaves codewords unused (incomplete)")
)

// build makes t the decode table of the canonical code with these
// codeword lengths (0: symbol unused); symbol s decodes to syms[s] with
// the codeword's length filled in. A code must be complete, except that
// one of a single codeword of length 1, or of none, is allowed: RFC 1951
// permits them for distances, and zlib and Go take them for literals too
// (the stream is corrupt only if it uses a codeword the code lacks).
func (t *table) build(lens []uint8, syms []uint32) error {
	var count [maxCodeLen + 1]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left := 1
	maxLen := 0
	for l := 1; l <= maxCodeLen; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return errOversubscribed
		}
		if count[l] > 0 {
			maxLen = l
		}
	}
	primary := t.entry[:1<<t.bits]
	t.entry = primary
	if left > 0 {
		if !(maxLen == 0 || maxLen == 1 && count[1] == 1) {
			return errIncomplete
		}
		for i := range primary {
			primary[i] = entInvalid
		}
	}
	if maxLen == 0 {
		return nil
	}
	// Canonical codes: the first of each length follows the last of the
	// length before, shifted; symbols of one length take them in order.
	var next [maxCodeLen + 2]uint32
	code := uint32(0)
	for l := 1; l <= maxCodeLen; l++ {
		code = (code + uint32(count[l-1])) << 1
		next[l] = code
	}
	// Place short codes first so that the codes sharing a subtable come
	// in canonical order, which the subtable sizing relies on.
	remaining := count
	subPrefix, subStart, subBits := -1, 0, uint(0)
	for l := 1; l <= maxLen; l++ {
		for s, sl := range lens {
			if int(sl) != l {
				continue
			}
			c := next[l]
			next[l]++
			remaining[l]--
			rev := reverse(c, uint(l))
			if uint(l) <= t.bits {
				e := syms[s] | uint32(l)
				for i := rev; i < 1<<t.bits; i += 1 << l {
					primary[i] = e
				}
				continue
			}
			prefix := int(rev & uint32(t.mask))
			if prefix != subPrefix {
				// A new subtable, as wide as the codes with this prefix
				// need: zlib's sizing over the codes not yet placed
				// (this one counted back in).
				remaining[l]++
				cur := uint(l) - t.bits
				room := 1 << cur
				for int(cur+t.bits) < maxLen {
					room -= remaining[cur+t.bits]
					if room <= 0 {
						break
					}
					cur++
					room <<= 1
				}
				remaining[l]--
				subPrefix, subStart, subBits = prefix, len(t.entry), cur
				for range 1 << cur {
					t.entry = append(t.entry, entInvalid)
				}
				t.entry[prefix] = entSub | uint32(subStart)<<16 | uint32(cur)<<8 | uint32(t.bits)
			}
			sub := t.entry[subStart : subStart+1<<subBits]
			e := syms[s] | uint32(uint(l)-t.bits)
			for i := rev >> t.bits; i < 1<<subBits; i += 1 << (uint(l) - t.bits) {
				sub[i] = e
			}
		}
	}
	return nil
}

// reverse returns the low n bits of c in reverse order: canonical codes
// are defined most significant bit first, but DEFLATE packs them from the
// least significant bit of each byte.
func reverse(c uint32, n uint) uint32 {
	var r uint32
	for range n {
		r = r<<1 | c&1
		c >>= 1
	}
	return r
}

// Symbol meanings.
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// symbols holds what each symbol of the three codes decodes to, and the
// tables of the fixed code (RFC 1951 3.2.6), made once and only read.
type symbols struct {
	litlen [288]uint32
	dist   [32]uint32
	clen   [19]uint32

	fixedLitlen, fixedDist *table
}

func newSymbols() *symbols {
	s := &symbols{}
	for i := range 256 {
		s.litlen[i] = entLiteral | uint32(i)<<16
	}
	s.litlen[256] = entEOB
	for i := range 29 {
		s.litlen[257+i] = uint32(lengthBase[i])<<16 | uint32(lengthExtra[i])<<8
	}
	s.litlen[286], s.litlen[287] = entInvalid, entInvalid
	for i := range 30 {
		s.dist[i] = uint32(distBase[i])<<16 | uint32(distExtra[i])<<8
	}
	s.dist[30], s.dist[31] = entInvalid, entInvalid
	for i := range 19 {
		s.clen[i] = uint32(i) << 16
	}
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	s.fixedLitlen = newTable(litlenBits)
	if err := s.fixedLitlen.build(lens[:], s.litlen[:]); err != nil {
		panic(err) // the fixed code is complete
	}
	var dlens [32]uint8
	for i := range dlens {
		dlens[i] = 5
	}
	s.fixedDist = newTable(distBits)
	if err := s.fixedDist.build(dlens[:], s.dist[:]); err != nil {
		panic(err)
	}
	return s
}
