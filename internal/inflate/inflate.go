// Package inflate decodes DEFLATE streams (RFC 1951) and the gzip files
// that hold them (RFC 1952), about twice as fast as compress/flate and
// klauspost/compress on layer tars: gzip is how almost every image layer
// is stored, and decoding the last layer is on the critical path of a
// build from an empty cache.
//
// The decoder is shaped after libdeflate's: the whole history and the
// output being made share one buffer, so a match is a copy within it,
// eight bytes at a time; the bit buffer is 64 bits wide and refilled
// with one unaligned load per symbol, without a branch on how many bytes
// that takes; and the Huffman tables are indexed by 11 bits (literals and
// lengths) and 8 (distances), with subtables for the rare longer
// codewords, so one lookup decodes almost every symbol. A slow path,
// symbol by symbol with a check before each bit, takes over only where
// fewer than eight bytes of input are buffered: at the end of the stream.
package inflate

import (
	"encoding/binary"
	"io"
	"sync"
)

const (
	windowSize = 32 << 10  // the farthest a distance reaches
	chunkSize  = 256 << 10 // output decoded between two moves of the window
	maxMatch   = 258
	// outSlack is the room past the limit that one symbol decoded before
	// it may write: a match, and the up to seven bytes an eight-byte
	// copy writes past its end.
	outSlack = maxMatch + 8
)

const (
	stateHeader  = iota // at a block header
	stateStored         // in a stored block: d.stored bytes left
	stateHuffman        // in a block with Huffman codes
	stateEnd            // after the final block
)

var sharedSymbols = sync.OnceValue(newSymbols)

// decoder is a DEFLATE decoder over an input; gzip frames it.
type decoder struct {
	in  *input
	sym *symbols

	bits  uint64 // next bits of the stream, least significant first
	nbits uint   // how many of bits are valid; above them, either zeros or the stream's next bits

	out    []byte // history, then the output not yet read
	op, rp int    // end of the decoded output, start of the unread
	hist   int    // out[hist:op] is the history a distance may reach

	state  int
	final  bool // the current block is the last
	stored int

	ll, dt           *table // the current block's codes
	dynLL, dynDT, cl *table
	lens             [286 + 30]uint8
	err              error
}

func newDecoder(in *input) *decoder {
	return &decoder{
		in:  in,
		sym: sharedSymbols(),
		out: make([]byte, windowSize+chunkSize+outSlack),
	}
}

// reset starts a new stream at the input's position, without history.
func (d *decoder) reset() {
	d.bits, d.nbits = 0, 0
	d.op, d.rp, d.hist = 0, 0, 0
	d.state, d.final, d.stored = stateHeader, false, 0
	d.err = nil
}

// Reader decodes a raw DEFLATE stream.
type Reader struct{ d *decoder }

// NewReader returns a reader of the DEFLATE stream in r. It reads r in
// large blocks, possibly past the stream's end.
func NewReader(r io.Reader) *Reader {
	d := newDecoder(newInput(r))
	return &Reader{d: d}
}

func (r *Reader) Read(p []byte) (int, error) { return r.d.Read(p) }

// WriteTo writes the decoded stream to w without an intermediate copy.
func (r *Reader) WriteTo(w io.Writer) (int64, error) { return r.d.WriteTo(w) }

// chunk returns the decoded bytes not yet consumed (advance d.rp past
// those used), decoding more when there are none; io.EOF after the final
// block.
func (d *decoder) chunk() ([]byte, error) {
	for d.rp == d.op {
		if d.err != nil {
			return nil, d.err
		}
		if d.state == stateEnd {
			return nil, io.EOF
		}
		d.step()
	}
	return d.out[d.rp:d.op], nil
}

// Read returns decoded bytes; io.EOF after the final block.
func (d *decoder) Read(p []byte) (int, error) {
	b, err := d.chunk()
	n := copy(p, b)
	d.rp += n
	return n, err
}

// WriteTo writes the decoded bytes to w from the decoder's own buffer,
// without the copy into a caller's that Read makes.
func (d *decoder) WriteTo(w io.Writer) (int64, error) {
	return writeChunks(w, d.chunk, func(b []byte) { d.rp += len(b) })
}

// writeChunks writes to w each chunk that next returns until io.EOF,
// telling consume what w took of it; it is WriteTo for a raw stream and
// for gzip's members alike.
func writeChunks(w io.Writer, next func() ([]byte, error), consume func([]byte)) (int64, error) {
	var total int64
	for {
		b, err := next()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, err := w.Write(b)
		consume(b[:n])
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// step decodes up to chunkSize bytes, first moving the last window of
// history to the front of the buffer when the chunk before filled it.
// All the output before has been read.
func (d *decoder) step() {
	limit := windowSize + chunkSize
	if d.op >= limit {
		keep := min(windowSize, d.op-d.hist)
		copy(d.out, d.out[d.op-keep:d.op])
		d.op, d.rp, d.hist = keep, keep, 0
	}
	for d.op < limit && d.err == nil {
		switch d.state {
		case stateHeader:
			if d.final {
				d.finish()
				return
			}
			d.blockHeader()
		case stateStored:
			d.copyStored(limit)
		case stateHuffman:
			d.huffman(limit)
		case stateEnd:
			return
		}
	}
}

func (d *decoder) corrupt(reason string) {
	if d.err == nil {
		d.err = &CorruptError{Offset: d.in.offset() - int64(d.nbits/8), Reason: reason}
	}
}

// need makes at least n bits valid, byte by byte.
func (d *decoder) need(n uint) bool {
	in := d.in
	for d.nbits < n {
		if in.ip == in.ie && !in.more() {
			d.err = in.errUnexpected()
			return false
		}
		d.bits |= uint64(in.buf[in.ip]) << d.nbits
		in.ip++
		d.nbits += 8
	}
	return true
}

// fill makes as many bits valid as the buffer holds, up to 56, reading
// more input when it is out of it.
func (d *decoder) fill() {
	in := d.in
	for d.nbits <= 56 {
		if in.ip == in.ie && !in.more() {
			return
		}
		d.bits |= uint64(in.buf[in.ip]) << d.nbits
		in.ip++
		d.nbits += 8
	}
}

func (d *decoder) take(n uint) uint32 {
	v := uint32(d.bits & (1<<n - 1))
	d.bits >>= n
	d.nbits -= n
	return v
}

// align drops the bits up to the next byte boundary and gives the whole
// bytes left in the bit buffer back to the input, so that what follows a
// stored block's header or the stream is read from there. Those bytes are
// the last ones before in.ip, which input keeps.
func (d *decoder) align() {
	d.bits >>= d.nbits & 7
	d.nbits -= d.nbits & 7
	d.in.ip -= int(d.nbits / 8)
	d.bits, d.nbits = 0, 0
}

// finish ends the stream after its final block.
func (d *decoder) finish() {
	d.align()
	d.state = stateEnd
}

func (d *decoder) blockHeader() {
	if !d.need(3) {
		return
	}
	d.final = d.take(1) == 1
	switch d.take(2) {
	case 0:
		d.align()
		var h [4]byte
		if err := d.in.full(h[:]); err != nil {
			d.err = err
			return
		}
		n := binary.LittleEndian.Uint16(h[0:])
		if ^n != binary.LittleEndian.Uint16(h[2:]) {
			d.corrupt("a stored block's length and its complement disagree")
			return
		}
		d.stored = int(n)
		d.state = stateStored
	case 1:
		d.ll, d.dt = d.sym.fixedLitlen, d.sym.fixedDist
		d.state = stateHuffman
	case 2:
		if d.dynamic() {
			d.ll, d.dt = d.dynLL, d.dynDT
			d.state = stateHuffman
		}
	default:
		d.corrupt("reserved block type 3")
	}
}

func (d *decoder) copyStored(limit int) {
	in := d.in
	for d.stored > 0 && d.op < limit {
		if in.ip == in.ie && !in.more() {
			d.err = in.errUnexpected()
			return
		}
		n := copy(d.out[d.op:min(limit, d.op+d.stored)], in.buf[in.ip:in.ie])
		in.ip += n
		d.op += n
		d.stored -= n
	}
	if d.stored == 0 {
		d.state = stateHeader
	}
}

// clenOrder is the order in which a dynamic block lists the lengths of
// the code-length code's codewords.
var clenOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamic reads a dynamic block's codes into dynLL and dynDT.
func (d *decoder) dynamic() bool {
	if !d.need(14) {
		return false
	}
	nlit := int(d.take(5)) + 257
	ndist := int(d.take(5)) + 1
	nclen := int(d.take(4)) + 4
	if nlit > 286 || ndist > 30 {
		d.corrupt("too many length or distance symbols")
		return false
	}
	var clens [19]uint8
	for i := range nclen {
		if !d.need(3) {
			return false
		}
		clens[clenOrder[i]] = uint8(d.take(3))
	}
	if d.cl == nil {
		d.cl, d.dynLL, d.dynDT = newTable(clenBits), newTable(litlenBits), newTable(distBits)
	}
	if err := d.cl.build(clens[:], d.sym.clen[:]); err != nil {
		d.corrupt("code-length code: " + err.Error())
		return false
	}
	lens := d.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		e, ok := d.symbol(d.cl)
		if !ok {
			return false
		}
		sym := e >> 16
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				d.corrupt("a repeated code length with none before it")
				return false
			}
			if !d.need(2) {
				return false
			}
			rep, val = 3+int(d.take(2)), lens[i-1]
		case 17:
			if !d.need(3) {
				return false
			}
			rep = 3 + int(d.take(3))
		default:
			if !d.need(7) {
				return false
			}
			rep = 11 + int(d.take(7))
		}
		if i+rep > len(lens) {
			d.corrupt("code lengths run past the symbols")
			return false
		}
		for range rep {
			lens[i] = val
			i++
		}
	}
	if lens[256] == 0 {
		d.corrupt("the literal/length code has no end-of-block codeword")
		return false
	}
	if err := d.dynLL.build(lens[:nlit], d.sym.litlen[:nlit]); err != nil {
		d.corrupt("literal/length code: " + err.Error())
		return false
	}
	if err := d.dynDT.build(lens[nlit:], d.sym.dist[:ndist]); err != nil {
		d.corrupt("distance code: " + err.Error())
		return false
	}
	return true
}

// symbol decodes one symbol of t, checking that its bits are there: the
// slow path, at the end of the input.
func (d *decoder) symbol(t *table) (uint32, bool) {
	d.fill()
	e := t.entry[d.bits&t.mask]
	n := uint(e & 0xff)
	if e&entSub != 0 {
		e = t.entry[e>>16+uint32(d.bits>>t.bits)&(1<<(e>>8&15)-1)]
		n += uint(e & 0xff)
	}
	if e&entInvalid != 0 {
		if d.nbits < t.bits {
			// Unused codewords of an incomplete code look like this
			// too; with the bits missing, the stream is short.
			d.err = d.in.errUnexpected()
			return 0, false
		}
		d.corrupt("a codeword the code does not have")
		return 0, false
	}
	if n > d.nbits {
		d.err = d.in.errUnexpected()
		return 0, false
	}
	d.bits >>= n
	d.nbits -= n
	return e, true
}

// huffman decodes a Huffman block until its end or the output limit:
// fast while eight bytes of input are buffered, else symbol by symbol.
func (d *decoder) huffman(limit int) {
	in := d.in
	for d.state == stateHuffman && d.op < limit && d.err == nil {
		if in.ie-in.ip < 8 && in.err == nil {
			in.more()
			continue
		}
		if in.ie-in.ip >= 8 {
			d.fast(limit)
		} else {
			d.slow()
		}
	}
}

// slow decodes one symbol with every bit checked.
func (d *decoder) slow() {
	e, ok := d.symbol(d.ll)
	if !ok {
		return
	}
	if e&entLiteral != 0 {
		d.out[d.op] = byte(e >> 16)
		d.op++
		return
	}
	if e&entEOB != 0 {
		d.state = stateHeader
		return
	}
	ext := uint(e >> 8 & 15)
	if !d.need(ext) {
		return
	}
	length := int(e>>16) + int(d.take(ext))
	e, ok = d.symbol(d.dt)
	if !ok {
		return
	}
	ext = uint(e >> 8 & 15)
	if !d.need(ext) {
		return
	}
	dist := int(e>>16) + int(d.take(ext))
	if dist > d.op-d.hist {
		d.corrupt("a distance reaches before the start of the stream")
		return
	}
	d.op = copyMatch(d.out, d.op, dist, length)
}

// fast is the inner loop. The bit buffer is refilled to at least 56
// bits at the top of each symbol, which a length and distance with their
// extra bits (at most 48) never exceed. The refill loads eight bytes but
// counts only whole bytes, and bits holds the rest of them above nbits:
// after a symbol at least 16 true bits are left, so the next symbol's
// entry is looked up before the refill (and before a match's copy), off
// the chain of loads each symbol waits on.
func (d *decoder) fast(limit int) {
	in := d.in
	buf, ip, end := in.buf, in.ip, in.ie-8
	out, op, hist := d.out, d.op, d.hist
	bits, nbits := d.bits, d.nbits
	ll, dt := d.ll.entry, d.dt.entry
	llp := (*[1 << litlenBits]uint32)(ll)
	dtp := (*[1 << distBits]uint32)(dt)
	const llMask, dtMask = 1<<litlenBits - 1, 1<<distBits - 1
	if op >= limit || ip > end {
		return
	}
	bits |= binary.LittleEndian.Uint64(buf[ip:]) << (nbits & 63)
	ip += int((63 - nbits) >> 3)
	nbits |= 56
	e := llp[bits&llMask]
	for {
		if e&entLiteral != 0 {
			// Literals take at most 15 bits: two more fit in what the
			// refill left, and text is mostly literals.
			bits >>= e & 63
			nbits -= uint(e & 0xff)
			out[op] = byte(e >> 16)
			op++
			if e = llp[bits&llMask]; e&entLiteral != 0 {
				bits >>= e & 63
				nbits -= uint(e & 0xff)
				out[op] = byte(e >> 16)
				op++
				if e = llp[bits&llMask]; e&entLiteral != 0 {
					bits >>= e & 63
					nbits -= uint(e & 0xff)
					out[op] = byte(e >> 16)
					op++
					e = llp[bits&llMask]
				}
			}
		} else {
			if e&entSub != 0 {
				bits >>= litlenBits
				nbits -= litlenBits
				e = ll[e>>16+uint32(bits)&(1<<(e>>8&15)-1)]
			}
			bits >>= e & 63
			nbits -= uint(e & 0xff)
			if e&(entSpecial|entLiteral) != 0 {
				if e&entLiteral != 0 { // from a subtable
					out[op] = byte(e >> 16)
					op++
					e = llp[bits&llMask]
					goto next
				}
				d.bits, d.nbits, in.ip = bits, nbits, ip
				if e&entEOB != 0 {
					d.state = stateHeader
				} else {
					d.corrupt("a literal/length codeword the code does not have")
				}
				d.op = op
				return
			}
			ext := e >> 8 & 15
			length := int(e>>16) + int(bits&(1<<ext-1))
			bits >>= ext
			nbits -= uint(ext)

			e = dtp[bits&dtMask]
			if e&entSub != 0 {
				bits >>= distBits
				nbits -= distBits
				e = dt[e>>16+uint32(bits)&(1<<(e>>8&15)-1)]
			}
			bits >>= e & 63
			nbits -= uint(e & 0xff)
			if e&entInvalid != 0 {
				d.bits, d.nbits, in.ip, d.op = bits, nbits, ip, op
				d.corrupt("a distance codeword the code does not have")
				return
			}
			ext = e >> 8 & 15
			dist := int(e>>16) + int(bits&(1<<ext-1))
			bits >>= ext
			nbits -= uint(ext)
			if dist > op-hist {
				d.bits, d.nbits, in.ip, d.op = bits, nbits, ip, op
				d.corrupt("a distance reaches before the start of the stream")
				return
			}
			e = llp[bits&llMask]
			if src := op - dist; dist >= 8 && length <= 16 {
				// Most matches: two word copies, inline; a distance of
				// 8 to 15 reads what the first one wrote, as it must.
				binary.LittleEndian.PutUint64(out[op:], binary.LittleEndian.Uint64(out[src:]))
				binary.LittleEndian.PutUint64(out[op+8:], binary.LittleEndian.Uint64(out[src+8:]))
				op += length
			} else {
				op = copyMatch(out, op, dist, length)
			}
		}
	next:
		if op >= limit || ip > end {
			break
		}
		bits |= binary.LittleEndian.Uint64(buf[ip:]) << (nbits & 63)
		ip += int((63 - nbits) >> 3)
		nbits |= 56
	}
	d.bits, d.nbits, in.ip, d.op = bits, nbits, ip, op
}

// copyMatch copies length bytes from dist back to out[op:] and returns
// the new end. It may write up to seven bytes past the match, which the
// buffer's slack holds and later output overwrites.
func copyMatch(out []byte, op, dist, length int) int {
	src := op - dist
	end := op + length
	switch {
	case dist >= 8:
		for op < end {
			binary.LittleEndian.PutUint64(out[op:], binary.LittleEndian.Uint64(out[src:]))
			op += 8
			src += 8
		}
	case dist == 1:
		v := uint64(out[src]) * 0x0101010101010101
		for op < end {
			binary.LittleEndian.PutUint64(out[op:], v)
			op += 8
		}
	default:
		for ; op < end; op++ {
			out[op] = out[src]
			src++
		}
	}
	return end
}
