package xz

import "encoding/binary"

// The optimal parser of LZMA's "normal" mode (liblzma's
// lzma_encoder_optimum_normal.c, the LZMA SDK's GetOptimum): from the
// current position it prices every way of coding the bytes ahead with a
// literal, a short rep, the repeated distances and the matches found, and
// some pairs of those (a match, a literal, then rep0), as a shortest-path
// search over positions, until a match of niceLen bytes ends the look-ahead
// or no path reaches further; then it codes the cheapest path.

// find runs the match finder at the next position.
func (e *lzmaEncoder) find() (int, uint32) {
	n, longest := e.mf.find(e.matches[:])
	e.readAhead++
	return n, longest
}

// skip moves the match finder over n positions.
func (e *lzmaEncoder) skip(n uint32) {
	e.mf.skip(int(n))
	e.readAhead += int(n)
}

func (e *lzmaEncoder) literalPrice(pos int, matched bool, matchByte, b uint32) uint32 {
	probs := e.literalProbs(pos)
	if !matched {
		return treePrice(probs, 8, b)
	}
	var price uint32
	off := uint32(0x100)
	sym := b | 0x100
	for sym < 0x10000 {
		matchByte <<= 1
		mbit := matchByte & off
		price += bitPrice(probs[off+mbit+sym>>8], sym>>7&1)
		sym <<= 1
		off &^= matchByte ^ sym
	}
	return price
}

func (e *lzmaEncoder) shortRepPrice(state, posState uint32) uint32 {
	return price0(e.s.isRepG0[state]) + price0(e.s.isRep0Long[state<<maxPosBits|posState])
}

func (e *lzmaEncoder) pureRepPrice(rep, state, posState uint32) uint32 {
	s := &e.s
	if rep == 0 {
		return price0(s.isRepG0[state]) + price1(s.isRep0Long[state<<maxPosBits|posState])
	}
	price := price1(s.isRepG0[state])
	if rep == 1 {
		return price + price0(s.isRepG1[state])
	}
	return price + price1(s.isRepG1[state]) + bitPrice(s.isRepG2[state], rep-2)
}

func (e *lzmaEncoder) repPrice(rep, length, state, posState uint32) uint32 {
	return e.repLenPrices.prices[posState][length-minMatchLen] + e.pureRepPrice(rep, state, posState)
}

func (e *lzmaEncoder) distLenPrice(dist, length, posState uint32) uint32 {
	ls := lenToPosState(length)
	var price uint32
	if dist < fullDistance {
		price = e.distPrices[ls][dist]
	} else {
		price = e.distSlotPrices[ls][distSlot(dist)] + e.alignPrices[dist&(1<<alignBits-1)]
	}
	return price + e.matchLenPrices.prices[posState][length-minMatchLen]
}

// optimum returns the next symbol to code at pos, which is where the
// match finder is (readAhead 0) or one behind it (readAhead 1): back (see
// literal) and length.
func (e *lzmaEncoder) optimum(pos int) (back, length uint32) {
	if e.optsEnd != e.optsCur {
		o := &e.opts[e.optsCur]
		length = o.posPrev - e.optsCur
		back = o.backPrev
		e.optsCur = o.posPrev
		return back, length
	}
	if back, length, ok := e.run(pos); ok {
		return back, length
	}
	if e.readAhead == 0 {
		if e.matchPriceCount >= 1<<7 {
			e.fillDistPrices()
		}
		if e.alignPriceCount >= 1<<alignBits {
			e.fillAlignPrices()
		}
	}
	lenEnd, back, length := e.start(pos)
	if lenEnd == 0 {
		return back, length
	}
	reps := e.s.rep
	cur := uint32(1)
	for ; cur < lenEnd; cur++ {
		e.matchCount, e.longest = e.find()
		if e.longest >= e.niceLen {
			break
		}
		avail := min(uint32(len(e.buf)-pos)-cur, optsSize-1-cur)
		lenEnd = e.step(&reps, pos+int(cur), lenEnd, cur, avail)
	}
	return e.backward(cur)
}

// runMin is the shortest run of one byte value that run takes: longer
// than a match, and whole words.
const runMin = 512

// run codes the runs of one byte value, the zeros of sparse disk images
// above all, without the parser and the match finder: a run of at least
// runMin bytes, going on from the byte before pos, becomes matches of the
// longest length at distance one (a repeated one when there is one),
// which is also what the parser would choose. The match finder jumps over
// the run, leaving the bytes inside out of its trees; it is given the end
// of the run, so that what follows the run can still match into it.
func (e *lzmaEncoder) run(pos int) (back, length uint32, ok bool) {
	buf := e.buf
	if pos == 0 || len(buf)-pos < runMin || buf[pos] != buf[pos-1] {
		return 0, 0, false
	}
	c := uint64(buf[pos]) * 0x0101010101010101
	for i := pos; i < pos+runMin; i += 8 {
		if binary.LittleEndian.Uint64(buf[i:]) != c {
			return 0, 0, false
		}
	}
	back = repDistances // distance 1
	for i, r := range e.s.rep {
		if r == 0 {
			back = uint32(i)
			break
		}
	}
	e.mf.jump(pos + maxMatchLen)
	e.readAhead = maxMatchLen
	return back, maxMatchLen, true
}

// start prices the ways to code the first symbol. It returns lenEnd 0
// when the choice is plain (nothing to match, or a match of niceLen),
// with the symbol.
func (e *lzmaEncoder) start(p int) (lenEnd, back, length uint32) {
	var lenMain uint32
	var count int
	if e.readAhead == 0 {
		count, lenMain = e.find()
	} else {
		count, lenMain = e.matchCount, e.longest
	}
	buf := e.buf
	bufAvail := min(len(buf)-p, maxMatchLen)
	if bufAvail < 2 {
		return 0, literal, 1
	}
	s := &e.s
	var repLens [repDistances]uint32
	repMax := 0
	for i := range repDistances {
		b := p - int(s.rep[i]) - 1
		if buf[p] != buf[b] || buf[p+1] != buf[b+1] {
			continue
		}
		repLens[i] = uint32(matchLen(buf[p:], buf[b:], 2, bufAvail))
		if repLens[i] > repLens[repMax] {
			repMax = i
		}
	}
	if repLens[repMax] >= e.niceLen {
		e.skip(repLens[repMax] - 1)
		return 0, uint32(repMax), repLens[repMax]
	}
	if lenMain >= e.niceLen {
		e.skip(lenMain - 1)
		return 0, e.matches[count-1].dist + repDistances, lenMain
	}
	curByte := uint32(buf[p])
	matchByte := uint32(buf[p-int(s.rep[0])-1])
	if lenMain < 2 && curByte != matchByte && repLens[repMax] < 2 {
		return 0, literal, 1
	}

	opts := &e.opts
	state := s.state
	opts[0].state = state
	posState := uint32(p) & e.pbMask
	isMatch := s.isMatch[state<<maxPosBits|posState]
	opts[1].price = price0(isMatch) + e.literalPrice(p, state >= 7, matchByte, curByte)
	opts[1].makeLiteral()
	matchPrice := price1(isMatch)
	repMatchPrice := matchPrice + price1(s.isRep[state])
	if matchByte == curByte {
		if sr := repMatchPrice + e.shortRepPrice(state, posState); sr < opts[1].price {
			opts[1].price = sr
			opts[1].makeShortRep()
		}
	}
	lenEnd = max(lenMain, repLens[repMax])
	if lenEnd < 2 {
		return 0, opts[1].backPrev, 1
	}
	opts[1].posPrev = 0
	opts[0].backs = s.rep
	for l := lenEnd; l >= 2; l-- {
		opts[l].price = infinityPrice
	}
	for i, rl := range repLens {
		if rl < 2 {
			continue
		}
		price := repMatchPrice + e.pureRepPrice(uint32(i), state, posState)
		for ; rl >= 2; rl-- {
			if c := price + e.repLenPrices.prices[posState][rl-minMatchLen]; c < opts[rl].price {
				o := &opts[rl]
				o.price, o.posPrev, o.backPrev, o.prev1IsLiteral = c, 0, uint32(i), false
			}
		}
	}
	normalMatchPrice := matchPrice + price0(s.isRep[state])
	l := uint32(2)
	if repLens[0] >= 2 {
		l = repLens[0] + 1
	}
	if l <= lenMain {
		i := 0
		for l > e.matches[i].len {
			i++
		}
		for ; ; l++ {
			dist := e.matches[i].dist
			if c := normalMatchPrice + e.distLenPrice(dist, l, posState); c < opts[l].price {
				o := &opts[l]
				o.price, o.posPrev, o.backPrev, o.prev1IsLiteral = c, 0, dist+repDistances, false
			}
			if l == e.matches[i].len {
				if i++; i == count {
					break
				}
			}
		}
	}
	return lenEnd, 0, 0
}

// step extends the search from position cur of the look-ahead (p in the
// block), which the match finder has just looked up, given availFull bytes
// from there on, and returns the new end of the look-ahead.
func (e *lzmaEncoder) step(reps *[repDistances]uint32, p int, lenEnd, cur, availFull uint32) uint32 {
	opts := &e.opts
	s := &e.s
	buf := e.buf
	o := &opts[cur]
	count := e.matchCount
	newLen := e.longest

	// The state and distances the cheapest path to cur leaves.
	posPrev := o.posPrev
	var state uint32
	if o.prev1IsLiteral {
		posPrev--
		if o.prev2 {
			state = opts[o.posPrev2].state
			if o.backPrev2 < repDistances {
				state = longRepState(state)
			} else {
				state = matchState(state)
			}
		} else {
			state = opts[posPrev].state
		}
		state = literalState(state)
	} else {
		state = opts[posPrev].state
	}
	if posPrev == cur-1 {
		if o.backPrev == 0 {
			state = shortRepState(state)
		} else {
			state = literalState(state)
		}
	} else {
		var b uint32
		if o.prev1IsLiteral && o.prev2 {
			posPrev = o.posPrev2
			b = o.backPrev2
			state = longRepState(state)
		} else {
			b = o.backPrev
			if b < repDistances {
				state = longRepState(state)
			} else {
				state = matchState(state)
			}
		}
		prev := &opts[posPrev].backs
		if b < repDistances {
			reps[0] = prev[b]
			i := uint32(1)
			for ; i <= b; i++ {
				reps[i] = prev[i-1]
			}
			for ; i < repDistances; i++ {
				reps[i] = prev[i]
			}
		} else {
			*reps = [4]uint32{b - repDistances, prev[0], prev[1], prev[2]}
		}
	}
	o.state = state
	o.backs = *reps

	curPrice := o.price
	curByte := uint32(buf[p])
	matchByte := uint32(buf[p-int(reps[0])-1])
	posState := uint32(p) & e.pbMask
	isMatch := s.isMatch[state<<maxPosBits|posState]
	cur1Price := curPrice + price0(isMatch) + e.literalPrice(p, state >= 7, matchByte, curByte)
	next := &opts[cur+1]
	nextIsLiteral := false
	if cur1Price < next.price {
		next.price = cur1Price
		next.posPrev = cur
		next.makeLiteral()
		nextIsLiteral = true
	}
	matchPrice := curPrice + price1(isMatch)
	repMatchPrice := matchPrice + price1(s.isRep[state])
	if matchByte == curByte && !(next.posPrev < cur && next.backPrev == 0) {
		if sr := repMatchPrice + e.shortRepPrice(state, posState); sr <= next.price {
			next.price = sr
			next.posPrev = cur
			next.makeShortRep()
			nextIsLiteral = true
		}
	}
	if availFull < 2 {
		return lenEnd
	}
	bufAvail := min(availFull, e.niceLen)
	here := buf[p : p+int(availFull)]

	if !nextIsLiteral && matchByte != curByte {
		// A literal, then rep0.
		back := buf[p-int(reps[0])-1:]
		limit := min(availFull, e.niceLen+1)
		if lt := uint32(matchLen(here, back, 1, int(limit))) - 1; lt >= 2 {
			st2 := literalState(state)
			psNext := uint32(p+1) & e.pbMask
			price := cur1Price + price1(s.isMatch[st2<<maxPosBits|psNext]) + price1(s.isRep[st2]) +
				e.repPrice(0, lt, st2, psNext)
			offset := cur + 1 + lt
			for lenEnd < offset {
				lenEnd++
				opts[lenEnd].price = infinityPrice
			}
			if o := &opts[offset]; price < o.price {
				o.price, o.posPrev, o.backPrev = price, cur+1, 0
				o.prev1IsLiteral, o.prev2 = true, false
			}
		}
	}

	startLen := uint32(2)
	for ri := range uint32(repDistances) {
		back := buf[p-int(reps[ri])-1:]
		if here[0] != back[0] || here[1] != back[1] {
			continue
		}
		lt := uint32(matchLen(here, back, 2, int(bufAvail)))
		for lenEnd < cur+lt {
			lenEnd++
			opts[lenEnd].price = infinityPrice
		}
		price := repMatchPrice + e.pureRepPrice(ri, state, posState)
		for l := lt; l >= 2; l-- {
			if c := price + e.repLenPrices.prices[posState][l-minMatchLen]; c < opts[cur+l].price {
				o := &opts[cur+l]
				o.price, o.posPrev, o.backPrev, o.prev1IsLiteral = c, cur, ri, false
			}
		}
		if ri == 0 {
			startLen = lt + 1
		}
		// The rep match, a literal, then rep0.
		limit := min(availFull, lt+1+e.niceLen)
		lt2 := uint32(matchLen(here, back, int(lt)+1, int(limit))) - (lt + 1)
		if lt2 >= 2 {
			price := price + e.repLenPrices.prices[posState][lt-minMatchLen]
			lenEnd = e.literalRep0(p, cur, lt, lt2, lenEnd, longRepState(state), price, ri, back, here)
		}
	}

	ms := e.matches[:]
	if newLen > bufAvail {
		newLen = bufAvail
		count = 0
		for newLen > ms[count].len {
			count++
		}
		ms[count].len = newLen
		count++
	}
	if newLen < startLen {
		return lenEnd
	}
	normalMatchPrice := matchPrice + price0(s.isRep[state])
	for lenEnd < cur+newLen {
		lenEnd++
		opts[lenEnd].price = infinityPrice
	}
	i := 0
	for startLen > ms[i].len {
		i++
	}
	lenPrices := &e.matchLenPrices.prices[posState]
	l := startLen
	for ; i < count; i++ {
		// The distance's price for each length state, then each length.
		dist := ms[i].dist
		var dp [lenToPosStates]uint32
		if dist < fullDistance {
			for ls := range dp {
				dp[ls] = e.distPrices[ls][dist]
			}
		} else {
			slot, align := distSlot(dist), e.alignPrices[dist&(1<<alignBits-1)]
			for ls := range dp {
				dp[ls] = e.distSlotPrices[ls][slot] + align
			}
		}
		var price uint32
		for ; l <= ms[i].len; l++ {
			price = normalMatchPrice + dp[min(l-minMatchLen, lenToPosStates-1)] + lenPrices[l-minMatchLen]
			if o := &opts[cur+l]; price < o.price {
				o.price, o.posPrev, o.backPrev, o.prev1IsLiteral = price, cur, dist+repDistances, false
			}
		}
		l--
		// The longest match at this distance, a literal, then rep0.
		back := buf[p-int(dist)-1:]
		limit := min(availFull, l+1+e.niceLen)
		if lt2 := uint32(matchLen(here, back, int(l)+1, int(limit))) - (l + 1); lt2 >= 2 {
			lenEnd = e.literalRep0(p, cur, l, lt2, lenEnd, matchState(state), price, dist+repDistances, back, here)
		}
		l++
	}
	return lenEnd
}

// backward turns the cheapest path to cur into the list of symbols from
// the start, returns the first and leaves the rest for optimum.
func (e *lzmaEncoder) backward(cur uint32) (back, length uint32) {
	opts := &e.opts
	e.optsEnd = cur
	posMem := opts[cur].posPrev
	backMem := opts[cur].backPrev
	for {
		if opts[cur].prev1IsLiteral {
			opts[posMem].makeLiteral()
			opts[posMem].posPrev = posMem - 1
			if opts[cur].prev2 {
				opts[posMem-1].prev1IsLiteral = false
				opts[posMem-1].posPrev = opts[cur].posPrev2
				opts[posMem-1].backPrev = opts[cur].backPrev2
			}
		}
		posPrev, backCur := posMem, backMem
		backMem = opts[posPrev].backPrev
		posMem = opts[posPrev].posPrev
		opts[posPrev].backPrev = backCur
		opts[posPrev].posPrev = cur
		cur = posPrev
		if cur == 0 {
			break
		}
	}
	e.optsCur = opts[0].posPrev
	return opts[0].backPrev, opts[0].posPrev
}

// literalRep0 prices, after a match or rep match of length l at cur (of
// price price, leaving state st and coded as back), a literal and then rep0
// for lt2 bytes, and keeps that path to cur+l+1+lt2 if it is the cheapest
// yet. here is the input at cur, back the match's source. It returns the
// new end of the priced range.
func (e *lzmaEncoder) literalRep0(p int, cur, l, lt2, lenEnd, st, price, back uint32, src, here []byte) uint32 {
	s := &e.s
	opts := &e.opts
	psNext := uint32(p+int(l)) & e.pbMask
	price += price0(s.isMatch[st<<maxPosBits|psNext]) +
		e.literalPrice(p+int(l), true, uint32(src[l]), uint32(here[l]))
	st = literalState(st)
	psNext = (psNext + 1) & e.pbMask
	price += price1(s.isMatch[st<<maxPosBits|psNext]) + price1(s.isRep[st]) +
		e.repPrice(0, lt2, st, psNext)
	offset := cur + l + 1 + lt2
	for lenEnd < offset {
		lenEnd++
		opts[lenEnd].price = infinityPrice
	}
	if o := &opts[offset]; price < o.price {
		o.price, o.posPrev, o.backPrev = price, cur+l+1, 0
		o.prev1IsLiteral, o.prev2 = true, true
		o.posPrev2, o.backPrev2 = cur, back
	}
	return lenEnd
}
