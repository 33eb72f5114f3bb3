package xz

// The range encoder and the price of coding bits with it: the encoder's
// side of rangeDecoder, and what the optimal parser (optimum.go) weighs
// its choices with.

// rangeEncoder codes the bits of one LZMA2 chunk into out.
type rangeEncoder struct {
	low       uint64
	rng       uint32
	cache     byte
	cacheSize int // bytes held back: cache and the 0xFF bytes after it
	out       []byte
}

func (e *rangeEncoder) reset() {
	e.low, e.rng, e.cache, e.cacheSize = 0, 0xFFFFFFFF, 0, 1
	e.out = e.out[:0]
}

// size is the size of the chunk's data if it were flushed now.
func (e *rangeEncoder) size() int { return len(e.out) + e.cacheSize + 4 }

// shiftLow moves the top byte of low out. A byte can only be written once
// no carry can reach it: 0xFF bytes wait in cacheSize until one arrives
// or cannot arrive any more.
func (e *rangeEncoder) shiftLow() {
	if uint32(e.low) < 0xFF000000 || e.low>>32 != 0 {
		carry := byte(e.low >> 32)
		b := e.cache
		for ; e.cacheSize > 0; e.cacheSize-- {
			e.out = append(e.out, b+carry)
			b = 0xFF
		}
		e.cache = byte(e.low >> 24)
	}
	e.cacheSize++
	e.low = e.low & 0x00FFFFFF << 8
}

// bit codes bit b (0 or 1) with probability p and updates p.
func (e *rangeEncoder) bit(p *prob, b uint32) {
	bound := (e.rng >> probBits) * uint32(*p)
	if b == 0 {
		e.rng = bound
		*p += (1<<probBits - *p) >> moveBits
	} else {
		e.low += uint64(bound)
		e.rng -= bound
		*p -= *p >> moveBits
	}
	if e.rng < topValue {
		e.rng <<= 8
		e.shiftLow()
	}
}

// tree codes the n low bits of sym, most significant first, with
// probs[1 : 1<<n].
func (e *rangeEncoder) tree(probs []prob, n uint, sym uint32) {
	m := uint32(1)
	for i := n; i > 0; i-- {
		b := sym >> (i - 1) & 1
		e.bit(&probs[m], b)
		m = m<<1 | b
	}
}

// reverse codes the n low bits of sym, least significant first.
func (e *rangeEncoder) reverse(probs []prob, n uint, sym uint32) {
	m := uint32(1)
	for range n {
		b := sym & 1
		sym >>= 1
		e.bit(&probs[m], b)
		m = m<<1 | b
	}
}

// direct codes the n low bits of v with probability one half.
func (e *rangeEncoder) direct(v uint32, n uint) {
	for i := n; i > 0; i-- {
		e.rng >>= 1
		if v>>(i-1)&1 != 0 {
			e.low += uint64(e.rng)
		}
		if e.rng < topValue {
			e.rng <<= 8
			e.shiftLow()
		}
	}
}

// flush writes out what low still holds: the chunk ends here.
func (e *rangeEncoder) flush() {
	for range 5 {
		e.shiftLow()
	}
}

// Prices are costs in sixteenths of a bit.
const (
	priceBits     = 4 // sixteenths
	reducingBits  = 4 // probabilities are looked up in steps of 16
	infinityPrice = 1 << 30
)

// bitPrices holds -log2(p) in sixteenths of a bit for the probabilities
// (of the bit coded being 0) at the middle of each step of 16. It is
// worked out in integers, squaring four times (each squaring doubles the
// bits of the logarithm to keep), so that it is the same everywhere.
var bitPrices = func() (t [1 << (probBits - reducingBits)]uint32) {
	for i := uint32(1<<reducingBits) / 2; i < 1<<probBits; i += 1 << reducingBits {
		w, bits := i, uint32(0)
		for range priceBits {
			w *= w
			bits <<= 1
			for w >= 1<<16 {
				w >>= 1
				bits++
			}
		}
		t[i>>reducingBits] = probBits<<priceBits - 15 - bits
	}
	return t
}()

func price0(p prob) uint32 { return bitPrices[p>>reducingBits] }
func price1(p prob) uint32 { return bitPrices[(p^(1<<probBits-1))>>reducingBits] }

func bitPrice(p prob, b uint32) uint32 {
	return bitPrices[(uint32(p)^(-b&(1<<probBits-1)))>>reducingBits]
}

// treePrice is the price of tree(probs, n, sym).
func treePrice(probs []prob, n uint, sym uint32) uint32 {
	var price uint32
	sym |= 1 << n
	for sym != 1 {
		b := sym & 1
		sym >>= 1
		price += bitPrice(probs[sym], b)
	}
	return price
}

// reversePrice is the price of reverse(probs, n, sym).
func reversePrice(probs []prob, n uint, sym uint32) uint32 {
	var price uint32
	m := uint32(1)
	for range n {
		b := sym & 1
		sym >>= 1
		price += bitPrice(probs[m], b)
		m = m<<1 | b
	}
	return price
}
