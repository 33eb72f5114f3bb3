package xz

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"unsafe"
)

// bt4 is the binary-tree match finder of liblzma's "bt4" (the LZMA SDK's
// BinTree with four hashed bytes), over one block held in memory. For
// each position it gives the matches of increasing length within the
// dictionary that a walk of at most depth nodes finds: the nearest match
// of two and of three bytes (from small hash tables of the latest
// positions), then the tree's. The tree orders the positions whose first
// four bytes hash alike by the bytes that follow; inserting a position
// walks from the newest towards older ones, and splits the tree around the
// new root as it goes, so that finding and inserting are one walk.
//
// Positions are stored plus cyc, so that zero, the value of an empty slot,
// is never within the dictionary. Each position has two slots in son, its
// smaller and its larger subtree, at its index modulo cyc.
type bt4 struct {
	buf       []byte
	pos       int    // the next position to look up or insert
	cycPos    uint32 // pos modulo cyc
	cyc       uint32 // the dictionary size plus one
	hash      []uint32
	hash4Mask uint32
	son       []uint32
	niceLen   uint32
	depth     int
	ring      [4]struct {
		pos        int
		h2, h3, h4 uint32
	}
}

// match is a match the finder found: its length and its distance minus one.
type match struct{ len, dist uint32 }

const (
	hash2Size = 1 << 10
	hash3Size = 1 << 16
	hash4At   = hash2Size + hash3Size
)

// newBT4 sizes a match finder for blocks of up to blockSize bytes.
func newBT4(dictSize, blockSize int, niceLen, depth int) *bt4 {
	cyc := min(dictSize, blockSize) + 1
	// The four-byte hash table as liblzma sizes it: half the dictionary
	// (here no more than the block) rounded up to a power of two, at least
	// 64 Ki and at most 16 Mi entries.
	hs := uint32(min(dictSize, blockSize) - 1)
	hs |= hs >> 1
	hs |= hs >> 2
	hs |= hs >> 4
	hs |= hs >> 8
	hs |= hs >> 16
	hs >>= 1
	hs |= 0xFFFF
	hs = min(hs, 1<<24-1)
	m := &bt4{
		cyc:       uint32(cyc),
		hash:      make([]uint32, hash4At+int(hs)+1),
		hash4Mask: hs,
		son:       make([]uint32, 2*cyc),
		niceLen:   uint32(niceLen),
		depth:     depth,
	}
	hugePages(m.hash)
	hugePages(m.son)
	return m
}

// reset starts on a block. The trees need no clearing: only slots written
// since the hash tables were emptied can be reached.
func (m *bt4) reset(buf []byte) {
	clear(m.hash)
	m.buf, m.pos, m.cycPos = buf, 0, 0
	for i := range m.ring {
		m.ring[i].pos = -1
	}
}

// hashes returns the slots of the two-, three- and four-byte hashes of
// b[0:4]. They are liblzma's: given equal first bytes, equal two- or
// three-byte hashes mean equal second (and third) bytes, so that a match
// they find needs only its first byte checked.
// hashesAt returns the hashes of the four bytes at p, which ahead has
// usually worked out already.
func (m *bt4) hashesAt(p int) (h2, h3, h4 uint32) {
	e := &m.ring[p&3]
	if e.pos != p {
		e.pos = p
		e.h2, e.h3, e.h4 = m.hashes(m.buf[p:])
	}
	return e.h2, e.h3, e.h4
}

func (m *bt4) hashes(b []byte) (h2, h3, h4 uint32) {
	t := crc32.IEEETable
	_ = b[3]
	temp := t[b[0]] ^ uint32(b[1])
	h2 = temp & (hash2Size - 1)
	temp ^= uint32(b[2]) << 8
	h3 = hash2Size + temp&(hash3Size-1)
	h4 = hash4At + (temp^t[b[3]]<<5)&m.hash4Mask
	return
}

func (m *bt4) advance() {
	m.pos++
	m.cycPos++
	if m.cycPos == m.cyc {
		m.cycPos = 0
	}
}

// ahead prefetches what the next positions will read first, so that those
// misses overlap the walk at p: the four-byte hash slot of p+2, and the
// tree node and bytes of the first candidate of p+1, whose slot was
// prefetched at p-1.
func (m *bt4) ahead(p int) {
	if p+6 > len(m.buf) {
		return
	}
	_, _, h := m.hashesAt(p + 2)
	a := uintptr(unsafe.Pointer(&m.hash[h]))
	b, c := a, a
	_, _, h = m.hashesAt(p + 1)
	delta := uint32(p+1) + m.cyc - m.hash[h]
	if delta < m.cyc && delta <= uint32(p+1) {
		slot := m.cycPos + 1 - delta
		if delta > m.cycPos+1 {
			slot += m.cyc
		}
		if slot >= m.cyc {
			slot -= m.cyc
		}
		b = uintptr(unsafe.Pointer(&m.son[2*slot]))
		c = uintptr(unsafe.Pointer(&m.buf[p+1-int(delta)]))
	}
	prefetch3(a, b, c)
}

// jump moves on to pos without inserting the positions before it.
func (m *bt4) jump(pos int) {
	m.pos = pos
	m.cycPos = uint32(pos % int(m.cyc))
}

// find looks up the matches at pos, inserts pos and moves on. It returns
// the number of matches written to ms (shortest first) and the length of
// the longest, extended beyond niceLen up to maxMatchLen when it reaches
// niceLen.
func (m *bt4) find(ms []match) (int, uint32) {
	avail := len(m.buf) - m.pos
	limit := m.niceLen
	if avail < int(limit) {
		if avail < 4 {
			m.advance()
			return 0, 0
		}
		limit = uint32(avail)
	}
	p := m.pos
	cur := m.buf[p:]
	cv := uint32(p) + m.cyc
	h2, h3, h4 := m.hashesAt(p)
	hash := m.hash
	d2 := cv - hash[h2]
	d3 := cv - hash[h3]
	next := hash[h4]
	hash[h2], hash[h3], hash[h4] = cv, cv, cv
	m.ahead(p)

	n := 0
	best := uint32(1)
	if d2 < m.cyc && m.buf[p-int(d2)] == cur[0] {
		best = 2
		ms[0] = match{2, d2 - 1}
		n = 1
	}
	if d2 != d3 && d3 < m.cyc && m.buf[p-int(d3)] == cur[0] {
		best = 3
		ms[n].dist = d3 - 1
		n++
		d2 = d3
	}
	if n > 0 {
		best = uint32(matchLen(cur, m.buf[p-int(d2):], int(best), int(limit)))
		ms[n-1].len = best
		if best == limit {
			m.tree(limit, cv, next, nil, 0, 0)
			m.advance()
			return n, m.extend(ms[n-1])
		}
	}
	best = max(best, 3)
	n = m.tree(limit, cv, next, ms, n, best)
	m.advance()
	if n == 0 {
		return 0, 0
	}
	return n, m.extend(ms[n-1])
}

// extend lengthens a longest match of niceLen bytes as far as it goes.
func (m *bt4) extend(mt match) uint32 {
	if mt.len < m.niceLen {
		return mt.len
	}
	p := m.pos - 1
	limit := min(len(m.buf)-p, maxMatchLen)
	return uint32(matchLen(m.buf[p:], m.buf[p-int(mt.dist)-1:], int(mt.len), limit))
}

// skip inserts the next n positions without reporting matches.
func (m *bt4) skip(n int) {
	for range n {
		avail := len(m.buf) - m.pos
		limit := m.niceLen
		if avail < int(limit) {
			if avail < 4 {
				m.advance()
				continue
			}
			limit = uint32(avail)
		}
		cv := uint32(m.pos) + m.cyc
		h2, h3, h4 := m.hashesAt(m.pos)
		next := m.hash[h4]
		m.hash[h2], m.hash[h3], m.hash[h4] = cv, cv, cv
		m.ahead(m.pos)
		m.tree(limit, cv, next, nil, 0, 0)
		m.advance()
	}
}

// tree walks the tree from the newest position with pos's hash, next,
// inserting pos as the new root and, when ms is not nil, recording in
// ms[n:] each match longer than best. It returns the new n.
//
// This walk is most of the encoder's time, and a chase of pointers
// through memory the caches do not hold; with slices the compiler runs
// out of registers for their lengths and spills the loop's state. So it
// reads through unsafe pointers, within bounds that hold by construction:
// a candidate within the dictionary is a position q = p - delta in
// [0, p), compared over at most limit bytes, which p has after it; its
// slots are at 2*(q mod cyc) in son, of 2*cyc entries.
func (m *bt4) tree(limit, cv, next uint32, ms []match, n int, best uint32) int {
	son := unsafe.Pointer(unsafe.SliceData(m.son))
	cur := unsafe.Pointer(unsafe.SliceData(m.buf[m.pos : m.pos+int(limit)]))
	cyc, cycPos := m.cyc, m.cycPos
	ptr0 := unsafe.Add(son, (2*cycPos+1)*4)
	ptr1 := unsafe.Add(son, 2*cycPos*4)
	var len0, len1 uint32
	for depth := m.depth; ; depth-- {
		delta := cv - next
		if depth == 0 || delta >= cyc {
			*(*uint32)(ptr0), *(*uint32)(ptr1) = 0, 0
			return n
		}
		slot := cycPos - delta
		if delta > cycPos {
			slot += cyc
		}
		pair := unsafe.Add(son, slot*8)
		back := unsafe.Add(cur, -int(delta))
		l := min(len0, len1)
		if *(*byte)(unsafe.Add(back, l)) == *(*byte)(unsafe.Add(cur, l)) {
			l = matchLenPtr(cur, back, l+1, limit)
			if ms != nil && l > best {
				best = l
				ms[n] = match{l, delta - 1}
				n++
			}
			if l == limit {
				*(*uint32)(ptr1) = *(*uint32)(pair)
				*(*uint32)(ptr0) = *(*uint32)(unsafe.Add(pair, 4))
				return n
			}
		}
		if *(*byte)(unsafe.Add(back, l)) < *(*byte)(unsafe.Add(cur, l)) {
			*(*uint32)(ptr1) = next
			ptr1 = unsafe.Add(pair, 4)
			next = *(*uint32)(ptr1)
			len1 = l
		} else {
			*(*uint32)(ptr0) = next
			ptr0 = pair
			next = *(*uint32)(ptr0)
			len0 = l
		}
	}
}

// bigEndian tells the order of the bytes of a word loaded from memory.
var bigEndian = binary.NativeEndian.Uint16([]byte{0, 1}) == 1

// matchLenPtr is matchLen for tree: how far a and b agree from i on, up
// to limit, which both have.
func matchLenPtr(a, b unsafe.Pointer, i, limit uint32) uint32 {
	for i+8 <= limit {
		if x := *(*uint64)(unsafe.Add(a, i)) ^ *(*uint64)(unsafe.Add(b, i)); x != 0 {
			if bigEndian {
				return i + uint32(bits.LeadingZeros64(x)/8)
			}
			return i + uint32(bits.TrailingZeros64(x)/8)
		}
		i += 8
	}
	for i < limit && *(*byte)(unsafe.Add(a, i)) == *(*byte)(unsafe.Add(b, i)) {
		i++
	}
	return i
}

// matchLen returns how far a and b agree from i on, up to limit (at most
// the length of both); i itself when it is not below limit.
func matchLen(a, b []byte, i, limit int) int {
	if i >= limit {
		return i
	}
	a, b = a[:limit], b[:limit]
	for i+8 <= limit {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
		i += 8
	}
	for i < limit && a[i] == b[i] {
		i++
	}
	return i
}
