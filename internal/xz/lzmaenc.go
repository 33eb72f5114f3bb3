package xz

import "math/bits"

// The LZMA encoder: the model (lzmaState, as the decoder keeps it), the
// price tables the optimal parser reads, the coding of the symbols it
// chooses, and LZMA2's cutting of a block into chunks. It follows liblzma's
// encoder in "normal" mode (lzma_encoder.c, lzma2_encoder.c), which is the
// LZMA SDK's.

const (
	repDistances   = 4
	startPosModel  = 4 // distance slots below this code the distance itself
	lenToPosStates = 4 // matches of 2, 3, 4 and 5+ bytes code slots apart
	posSlotBits    = 6
	lenLowSymbols  = 8
	lenMidSymbols  = 8
	lenSymbols     = maxMatchLen - minMatchLen + 1

	// literal is the back of a literal; a back below repDistances is a
	// repeated distance, and any other is a distance plus repDistances.
	literal = ^uint32(0)

	// chunkMargin is kept free in a chunk's 64 KiB of compressed data: no
	// symbol codes to more (at most about 60 bits, each costing under
	// seven bits).
	chunkMargin = 512
)

// encoderConfig is what the LZMA2 encoder is set up with.
type encoderConfig struct {
	dictSize   int
	niceLen    int
	depth      int
	lc, lp, pb uint
}

// lenPrices caches the prices of match lengths for each position state;
// a table is worked out anew after as many uses as it has entries.
type lenPrices struct {
	prices   [1 << maxPosBits][lenSymbols]uint32
	counters [1 << maxPosBits]uint32
	size     uint32 // lengths priced, from minMatchLen on
}

func (lp *lenPrices) update(m *lenModel, posState uint32) {
	lp.counters[posState] = lp.size
	a0, a1 := price0(m.choice), price1(m.choice)
	b0, b1 := a1+price0(m.choice2), a1+price1(m.choice2)
	p := &lp.prices[posState]
	i := uint32(0)
	for ; i < lp.size && i < lenLowSymbols; i++ {
		p[i] = a0 + treePrice(m.low[posState][:], 3, i)
	}
	for ; i < lp.size && i < lenLowSymbols+lenMidSymbols; i++ {
		p[i] = b0 + treePrice(m.mid[posState][:], 3, i-lenLowSymbols)
	}
	for ; i < lp.size; i++ {
		p[i] = b1 + treePrice(m.high[:], 8, i-lenLowSymbols-lenMidSymbols)
	}
}

// optimal is a node of the optimal parser: the cheapest known way to
// reach a position, and the state and distances it leaves.
type optimal struct {
	price    uint32
	posPrev  uint32 // where the last symbol starts
	backPrev uint32 // what it is
	// prev1IsLiteral: the last symbol is a literal, before which comes
	// the symbol in posPrev and backPrev; with prev2, that one is itself
	// preceded by the match at posPrev2 and backPrev2.
	prev1IsLiteral, prev2 bool
	posPrev2              uint32
	backPrev2             uint32
	state                 uint32
	backs                 [repDistances]uint32
}

func (o *optimal) makeLiteral() {
	o.backPrev = literal
	o.prev1IsLiteral = false
}

func (o *optimal) makeShortRep() {
	o.backPrev = 0
	o.prev1IsLiteral = false
}

// optsSize is how far the optimal parser looks ahead (liblzma's OPTS).
const optsSize = 1 << 12

// lzmaEncoder encodes blocks, one at a time, as LZMA2.
type lzmaEncoder struct {
	s       lzmaState
	rc      rangeEncoder
	mf      *bt4
	buf     []byte // the block
	niceLen uint32
	pbMask  uint32
	lpMask  uint32
	lc      uint
	props   byte

	matchLenPrices, repLenPrices lenPrices
	distSlotPrices               [lenToPosStates][1 << posSlotBits]uint32
	distPrices                   [lenToPosStates][fullDistance]uint32
	alignPrices                  [1 << alignBits]uint32
	matchPriceCount              uint32 // matches coded since distPrices
	alignPriceCount              uint32 // aligned distances coded since alignPrices
	distTableSize                uint32

	opts             [optsSize]optimal
	optsEnd, optsCur uint32 // symbols chosen and not yet coded: optsCur to optsEnd
	matches          [maxMatchLen + 2]match
	matchCount       int
	longest          uint32
	readAhead        int // positions the match finder is ahead of the coder
}

func newLZMAEncoder(c encoderConfig, blockSize int) *lzmaEncoder {
	e := &lzmaEncoder{
		mf:      newBT4(c.dictSize, blockSize, c.niceLen, c.depth),
		niceLen: uint32(c.niceLen),
		pbMask:  1<<c.pb - 1,
		lpMask:  1<<c.lp - 1,
		lc:      c.lc,
		props:   byte((c.pb*5+c.lp)*9 + c.lc),
	}
	if err := e.s.setProps(e.props); err != nil {
		panic("xz: bad lc/lp/pb")
	}
	e.distTableSize = 2 * uint32(bits.Len32(uint32(c.dictSize-1)))
	e.matchLenPrices.size = uint32(c.niceLen) + 1 - minMatchLen
	e.repLenPrices.size = e.matchLenPrices.size
	return e
}

// resetState starts the model afresh, as an LZMA2 state reset does, and
// forgets the symbols chosen and not coded.
func (e *lzmaEncoder) resetState() {
	e.s.reset()
	for ps := uint32(0); ps <= e.pbMask; ps++ {
		e.matchLenPrices.update(&e.s.matchLen, ps)
		e.repLenPrices.update(&e.s.repLen, ps)
	}
	e.matchPriceCount = 1 << 30
	e.alignPriceCount = 1 << 30
	e.optsEnd, e.optsCur = 0, 0
}

func literalState(s uint32) uint32 {
	switch {
	case s < 4:
		return 0
	case s < 10:
		return s - 3
	}
	return s - 6
}

func matchState(s uint32) uint32 {
	if s < 7 {
		return 7
	}
	return 10
}

func longRepState(s uint32) uint32 {
	if s < 7 {
		return 8
	}
	return 11
}

func shortRepState(s uint32) uint32 {
	if s < 7 {
		return 9
	}
	return 11
}

// distSlot returns the slot of a distance (minus one): its highest two bits
// and their position.
func distSlot(d uint32) uint32 {
	if d < startPosModel {
		return d
	}
	n := uint32(bits.Len32(d)) - 1
	return 2*n + d>>(n-1)&1
}

func lenToPosState(length uint32) uint32 {
	return min(length-minMatchLen, lenToPosStates-1)
}

// literalProbs returns the literal coder for the byte at pos.
func (e *lzmaEncoder) literalProbs(pos int) []prob {
	var prev uint32
	if pos > 0 {
		prev = uint32(e.buf[pos-1])
	}
	ctx := (uint32(pos)&e.lpMask)<<e.lc + prev>>(8-e.lc)
	return e.s.literal[0x400*ctx : 0x400*ctx+0x400]
}

// encodeSymbol codes the symbol at pos.
func (e *lzmaEncoder) encodeSymbol(back, length uint32, pos int) {
	s := &e.s
	posState := uint32(pos) & e.pbMask
	st := s.state
	if back == literal {
		e.rc.bit(&s.isMatch[st<<maxPosBits|posState], 0)
		probs := e.literalProbs(pos)
		b := uint32(e.buf[pos])
		if st < 7 {
			e.rc.tree(probs, 8, b)
		} else {
			e.matchedLiteral(probs, uint32(e.buf[pos-int(s.rep[0])-1]), b)
		}
		s.state = literalState(st)
		return
	}
	e.rc.bit(&s.isMatch[st<<maxPosBits|posState], 1)
	if back < repDistances {
		e.rc.bit(&s.isRep[st], 1)
		if back == 0 {
			e.rc.bit(&s.isRepG0[st], 0)
			var long uint32
			if length != 1 {
				long = 1
			}
			e.rc.bit(&s.isRep0Long[st<<maxPosBits|posState], long)
		} else {
			d := s.rep[back]
			e.rc.bit(&s.isRepG0[st], 1)
			if back == 1 {
				e.rc.bit(&s.isRepG1[st], 0)
			} else {
				e.rc.bit(&s.isRepG1[st], 1)
				e.rc.bit(&s.isRepG2[st], back-2)
				if back == 3 {
					s.rep[3] = s.rep[2]
				}
				s.rep[2] = s.rep[1]
			}
			s.rep[1] = s.rep[0]
			s.rep[0] = d
		}
		if length == 1 {
			s.state = shortRepState(st)
		} else {
			e.encodeLen(&s.repLen, &e.repLenPrices, length, posState)
			s.state = longRepState(st)
		}
		return
	}
	e.rc.bit(&s.isRep[st], 0)
	s.state = matchState(st)
	e.encodeLen(&s.matchLen, &e.matchLenPrices, length, posState)
	d := back - repDistances
	slot := distSlot(d)
	e.rc.tree(s.posSlot[lenToPosState(length)][:], posSlotBits, slot)
	if slot >= startPosModel {
		footer := uint(slot>>1 - 1)
		base := (2 | slot&1) << footer
		if slot < endPosModel {
			e.rc.reverse(s.posSpecial[base-slot:], footer, d-base)
		} else {
			e.rc.direct((d-base)>>alignBits, footer-alignBits)
			e.rc.reverse(s.align[:], alignBits, d&(1<<alignBits-1))
			e.alignPriceCount++
		}
	}
	s.rep = [4]uint32{d, s.rep[0], s.rep[1], s.rep[2]}
	e.matchPriceCount++
}

func (e *lzmaEncoder) matchedLiteral(probs []prob, matchByte, b uint32) {
	off := uint32(0x100)
	sym := b | 0x100
	for sym < 0x10000 {
		matchByte <<= 1
		mbit := matchByte & off
		e.rc.bit(&probs[off+mbit+sym>>8], sym>>7&1)
		sym <<= 1
		off &^= matchByte ^ sym
	}
}

func (e *lzmaEncoder) encodeLen(m *lenModel, lp *lenPrices, length, posState uint32) {
	l := length - minMatchLen
	switch {
	case l < lenLowSymbols:
		e.rc.bit(&m.choice, 0)
		e.rc.tree(m.low[posState][:], 3, l)
	case l < lenLowSymbols+lenMidSymbols:
		e.rc.bit(&m.choice, 1)
		e.rc.bit(&m.choice2, 0)
		e.rc.tree(m.mid[posState][:], 3, l-lenLowSymbols)
	default:
		e.rc.bit(&m.choice, 1)
		e.rc.bit(&m.choice2, 1)
		e.rc.tree(m.high[:], 8, l-lenLowSymbols-lenMidSymbols)
	}
	lp.counters[posState]--
	if lp.counters[posState] == 0 {
		lp.update(m, posState)
	}
}

func (e *lzmaEncoder) fillDistPrices() {
	s := &e.s
	for ls := range lenToPosStates {
		sp := &e.distSlotPrices[ls]
		for slot := uint32(0); slot < e.distTableSize; slot++ {
			sp[slot] = treePrice(s.posSlot[ls][:], posSlotBits, slot)
		}
		for slot := uint32(endPosModel); slot < e.distTableSize; slot++ {
			sp[slot] += (slot>>1 - 1 - alignBits) << priceBits
		}
		copy(e.distPrices[ls][:startPosModel], sp[:startPosModel])
	}
	for d := uint32(startPosModel); d < fullDistance; d++ {
		slot := distSlot(d)
		footer := uint(slot>>1 - 1)
		base := (2 | slot&1) << footer
		price := reversePrice(s.posSpecial[base-slot:], footer, d-base)
		for ls := range lenToPosStates {
			e.distPrices[ls][d] = price + e.distSlotPrices[ls][slot]
		}
	}
	e.matchPriceCount = 0
}

func (e *lzmaEncoder) fillAlignPrices() {
	for i := range uint32(1 << alignBits) {
		e.alignPrices[i] = reversePrice(e.s.align[:], alignBits, i)
	}
	e.alignPriceCount = 0
}

// encodeBlock appends the LZMA2 data of one block, which it starts with a
// dictionary reset, to out.
func (e *lzmaEncoder) encodeBlock(data, out []byte) []byte {
	e.buf = data
	e.mf.reset(data)
	e.readAhead = 0
	e.resetState()
	dictReset, props, stateReset := true, true, false
	pos := 0
	for pos < len(data) {
		if stateReset {
			e.resetState()
		}
		start := pos
		e.rc.reset()
		if pos == 0 {
			// The first byte has nothing before it to match.
			e.rc.bit(&e.s.isMatch[0], 0)
			e.rc.tree(e.literalProbs(0), 8, uint32(data[0]))
			e.mf.skip(1)
			pos = 1
		}
		for pos < len(data) && pos-start < maxChunk-maxMatchLen && e.rc.size() < 1<<16-chunkMargin {
			back, length := e.optimum(pos)
			e.encodeSymbol(back, length, pos)
			e.readAhead -= int(length)
			pos += int(length)
		}
		e.rc.flush()
		if n := pos - start; len(e.rc.out) >= n {
			// Stored is smaller: the bytes the match finder has seen go in
			// too, and the model starts afresh after them.
			end := pos + e.readAhead
			for i := start; i < end; i += 1 << 16 {
				chunk := data[i:min(end, i+1<<16)]
				ctl := byte(2)
				if dictReset {
					ctl = 1
					dictReset = false
				}
				out = append(out, ctl, byte((len(chunk)-1)>>8), byte(len(chunk)-1))
				out = append(out, chunk...)
			}
			e.readAhead = 0
			pos = end
			stateReset = true
			continue
		}
		ctl := byte(0x80)
		switch {
		case dictReset:
			ctl = 0xE0
		case props:
			ctl = 0xC0
		case stateReset:
			ctl = 0xA0
		}
		u, c := pos-start-1, len(e.rc.out)-1
		out = append(out, ctl|byte(u>>16), byte(u>>8), byte(u), byte(c>>8), byte(c))
		if props {
			out = append(out, e.props)
		}
		out = append(out, e.rc.out...)
		dictReset, props, stateReset = false, false, false
	}
	return append(out, 0)
}
