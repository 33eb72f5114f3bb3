package xz

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
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
	return &bt4{
		cyc:       uint32(cyc),
		hash:      make([]uint32, hash4At+int(hs)+1),
		hash4Mask: hs,
		son:       make([]uint32, 2*cyc),
		niceLen:   uint32(niceLen),
		depth:     depth,
	}
}

// reset starts on a block. The trees need no clearing: only slots written
// since the hash tables were emptied can be reached.
func (m *bt4) reset(buf []byte) {
	clear(m.hash)
	m.buf, m.pos, m.cycPos = buf, 0, 0
}

// hashes returns the slots of the two-, three- and four-byte hashes of
// b[0:4]. They are liblzma's: given equal first bytes, equal two- or
// three-byte hashes mean equal second (and third) bytes, so that a match
// they find needs only its first byte checked.
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
	h2, h3, h4 := m.hashes(cur)
	hash := m.hash
	d2 := cv - hash[h2]
	d3 := cv - hash[h3]
	next := hash[h4]
	hash[h2], hash[h3], hash[h4] = cv, cv, cv

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
		h2, h3, h4 := m.hashes(m.buf[m.pos:])
		next := m.hash[h4]
		m.hash[h2], m.hash[h3], m.hash[h4] = cv, cv, cv
		m.tree(limit, cv, next, nil, 0, 0)
		m.advance()
	}
}

// tree walks the tree from the newest position with pos's hash, next,
// inserting pos as the new root and, when ms is not nil, recording in
// ms[n:] each match longer than best. It returns the new n.
func (m *bt4) tree(limit, cv, next uint32, ms []match, n int, best uint32) int {
	son, buf, cyc, cycPos := m.son, m.buf, m.cyc, m.cycPos
	p := m.pos
	cur := buf[p : p+int(limit)]
	ptr0, ptr1 := 2*cycPos+1, 2*cycPos
	var len0, len1 uint32
	for depth := m.depth; ; depth-- {
		delta := cv - next
		if depth == 0 || delta >= cyc {
			son[ptr0], son[ptr1] = 0, 0
			return n
		}
		pair := cycPos - delta
		if delta > cycPos {
			pair += cyc
		}
		pair *= 2
		back := buf[p-int(delta):]
		l := min(len0, len1)
		if back[l] == cur[l] {
			l = uint32(matchLen(cur, back, int(l)+1, int(limit)))
			if ms != nil && l > best {
				best = l
				ms[n] = match{l, delta - 1}
				n++
			}
			if l == limit {
				son[ptr1], son[ptr0] = son[pair], son[pair+1]
				return n
			}
		}
		if back[l] < cur[l] {
			son[ptr1] = next
			ptr1 = pair + 1
			next = son[ptr1]
			len1 = l
		} else {
			son[ptr0] = next
			ptr0 = pair
			next = son[ptr0]
			len0 = l
		}
	}
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
