package xz

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
)

// The .xz container (the xz file format specification, version 1.2): a
// stream header, blocks, an index listing the blocks, a stream footer;
// streams may be concatenated, with zero padding between them.

var (
	headerMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}
	footerMagic = []byte{'Y', 'Z'}
)

// ErrUnsupported is wrapped by errors for valid .xz input this decoder
// does not handle: filters other than LZMA2 alone (BCJ, delta) and
// integrity checks other than none, CRC32, CRC64 and SHA-256.
var ErrUnsupported = errors.New("unsupported xz feature")

// Check types and their sizes.
const (
	checkNone   = 0x00
	checkCRC32  = 0x01
	checkCRC64  = 0x04
	checkSHA256 = 0x0A
)

var crc64Table = crc64.MakeTable(crc64.ECMA)

func checkSize(id byte) int {
	switch id {
	case checkNone:
		return 0
	case checkCRC32:
		return 4
	case checkCRC64:
		return 8
	case checkSHA256:
		return 32
	}
	return -1
}

// newCheck returns the hash of check type id, nil for none.
func newCheck(id byte) hash.Hash {
	switch id {
	case checkCRC32:
		return crc32.NewIEEE()
	case checkCRC64:
		return crc64.New(crc64Table)
	case checkSHA256:
		return sha256.New()
	}
	return nil
}

// sumCheck computes check id over b, as stored (little-endian CRCs).
func sumCheck(id byte, b []byte) []byte {
	switch id {
	case checkCRC32:
		return binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(b))
	case checkCRC64:
		return binary.LittleEndian.AppendUint64(nil, crc64.Checksum(b, crc64Table))
	case checkSHA256:
		s := sha256.Sum256(b)
		return s[:]
	}
	return nil
}

// stored returns a finished hash as the container stores it.
func stored(id byte, h hash.Hash) []byte {
	if h == nil {
		return nil
	}
	switch id {
	case checkCRC32:
		return binary.LittleEndian.AppendUint32(nil, h.(hash.Hash32).Sum32())
	case checkCRC64:
		return binary.LittleEndian.AppendUint64(nil, h.(hash.Hash64).Sum64())
	}
	return h.Sum(nil)
}

// parser reads the container from a stream and counts what it reads.
type parser struct {
	r   *bufio.Reader
	n   int64
	buf []byte
}

func (p *parser) ReadByte() (byte, error) {
	b, err := p.r.ReadByte()
	if err == nil {
		p.n++
	}
	return b, err
}

// next reads n bytes into a buffer reused by the following call.
func (p *parser) next(n int) ([]byte, error) {
	if cap(p.buf) < n+slack {
		p.buf = make([]byte, n, n+slack)
	}
	b := p.buf[:n]
	m, err := io.ReadFull(p.r, b)
	p.n += int64(m)
	return b, err
}

// streamFlags parses the two flag bytes of a stream header or footer and
// returns the check type.
func streamFlags(f []byte) (byte, error) {
	if f[0] != 0 || f[1]&0xF0 != 0 {
		return 0, fmt.Errorf("%w: stream flags %x", ErrUnsupported, f)
	}
	id := f[1]
	if checkSize(id) < 0 {
		return 0, fmt.Errorf("%w: check type %#x", ErrUnsupported, id)
	}
	return id, nil
}

// readStreamHeader reads the 12-byte stream header and returns its flags.
func readStreamHeader(p *parser) ([]byte, error) {
	h, err := p.next(12)
	if err != nil {
		return nil, noEOF(err)
	}
	if !bytes.Equal(h[:6], headerMagic) {
		return nil, errors.New("not an xz stream")
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:12]) {
		return nil, errors.New("stream header: CRC32 mismatch")
	}
	return bytes.Clone(h[6:8]), nil
}

// blockHeader is what a block header says.
type blockHeader struct {
	size             int   // of the header itself
	packed, unpacked int64 // -1 when the header does not say
	dictSize         int
	checkID          byte
	checkLen         int // size of the check
}

// readBlockHeader reads the rest of a block header whose first byte (its
// size, nonzero) has been read.
func readBlockHeader(p *parser, first byte, checkID byte) (blockHeader, error) {
	size := (int(first) + 1) * 4
	rest, err := p.next(size - 1)
	if err != nil {
		return blockHeader{}, noEOF(err)
	}
	h := append([]byte{first}, rest...)
	if crc32.ChecksumIEEE(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return blockHeader{}, errors.New("block header: CRC32 mismatch")
	}
	flags := h[1]
	if flags&0x3C != 0 {
		return blockHeader{}, fmt.Errorf("%w: block flags %#x", ErrUnsupported, flags)
	}
	bh := blockHeader{size: size, packed: -1, unpacked: -1, checkID: checkID, checkLen: checkSize(checkID)}
	body := h[2 : size-4]
	off := 0
	field := func() (uint64, error) {
		v, n := uvarint(body[off:])
		if n <= 0 {
			return 0, errors.New("block header: bad number")
		}
		off += n
		return v, nil
	}
	if flags&0x40 != 0 {
		v, err := field()
		if err != nil || v == 0 || v > 1<<62 {
			return blockHeader{}, errors.New("block header: bad compressed size")
		}
		bh.packed = int64(v)
	}
	if flags&0x80 != 0 {
		v, err := field()
		if err != nil || v > 1<<62 {
			return blockHeader{}, errors.New("block header: bad uncompressed size")
		}
		bh.unpacked = int64(v)
	}
	nfilters := int(flags&3) + 1
	for i := range nfilters {
		id, err := field()
		if err != nil {
			return blockHeader{}, err
		}
		psize, err := field()
		if err != nil || psize > uint64(len(body)-off) {
			return blockHeader{}, errors.New("block header: bad filter properties")
		}
		props := body[off : off+int(psize)]
		off += int(psize)
		if nfilters != 1 || id != 0x21 {
			return blockHeader{}, fmt.Errorf("%w: filter %#x (number %d of %d); only LZMA2 alone is supported", ErrUnsupported, id, i+1, nfilters)
		}
		if len(props) != 1 || props[0] > 40 {
			return blockHeader{}, errors.New("block header: bad LZMA2 properties")
		}
		bh.dictSize = dictSize(props[0])
	}
	for _, b := range body[off:] {
		if b != 0 {
			return blockHeader{}, errors.New("block header: nonzero padding")
		}
	}
	return bh, nil
}

// padding returns the size of the block padding after packed bytes of
// compressed data.
func (bh blockHeader) padding(packed int64) int {
	return int(-(int64(bh.size) + packed) & 3)
}

func dictSize(b byte) int {
	if b == 40 {
		return 0xFFFFFFFF
	}
	return (2 | int(b)&1) << (b/2 + 11)
}

// uvarint decodes the container's variable-length integers: up to nine
// bytes, seven bits each, least significant first, no superfluous zero
// byte at the end.
func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			if b[i] == 0 && i > 0 {
				return 0, -1
			}
			return v, i + 1
		}
	}
	return 0, -1
}

// record is one block as the index lists it.
type record struct{ unpadded, unpacked int64 }

// readIndex reads the index after its indicator byte and checks it lists
// the blocks read, then the stream footer, which must repeat flags.
func readIndex(p *parser, blocks []record, flags []byte) error {
	start := p.n - 1
	crc := crc32.NewIEEE()
	crc.Write([]byte{0})
	readVarint := func() (uint64, error) {
		var b []byte
		for {
			c, err := p.ReadByte()
			if err != nil {
				return 0, noEOF(err)
			}
			b = append(b, c)
			if c&0x80 == 0 || len(b) == 9 {
				break
			}
		}
		crc.Write(b)
		v, n := uvarint(b)
		if n != len(b) {
			return 0, errors.New("index: bad number")
		}
		return v, nil
	}
	count, err := readVarint()
	if err != nil {
		return err
	}
	if count != uint64(len(blocks)) {
		return fmt.Errorf("index lists %d blocks, the stream has %d", count, len(blocks))
	}
	for i, b := range blocks {
		unpadded, err := readVarint()
		if err != nil {
			return err
		}
		unpacked, err := readVarint()
		if err != nil {
			return err
		}
		if int64(unpadded) != b.unpadded || int64(unpacked) != b.unpacked {
			return fmt.Errorf("index: block %d is listed as %d/%d bytes, read as %d/%d", i+1, unpadded, unpacked, b.unpadded, b.unpacked)
		}
	}
	pad, err := p.next(int(-(p.n - start) & 3))
	if err != nil {
		return noEOF(err)
	}
	for _, b := range pad {
		if b != 0 {
			return errors.New("index: nonzero padding")
		}
	}
	crc.Write(pad)
	size := p.n - start
	sum, err := p.next(4)
	if err != nil {
		return noEOF(err)
	}
	if crc.Sum32() != binary.LittleEndian.Uint32(sum) {
		return errors.New("index: CRC32 mismatch")
	}

	f, err := p.next(12)
	if err != nil {
		return noEOF(err)
	}
	if !bytes.Equal(f[10:12], footerMagic) || crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[0:4]) {
		return errors.New("bad stream footer")
	}
	if backward := (int64(binary.LittleEndian.Uint32(f[4:8])) + 1) * 4; backward != size+4 {
		return fmt.Errorf("stream footer: index size %d, read %d", backward, size+4)
	}
	if !bytes.Equal(f[8:10], flags) {
		return errors.New("stream footer: flags differ from the header's")
	}
	return nil
}

// The writing side of the container.

// appendUvarint appends v in the container's variable-length encoding.
func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendStreamHeader appends a stream header for check type id.
func appendStreamHeader(b []byte, id byte) []byte {
	b = append(b, headerMagic...)
	flags := []byte{0, id}
	b = append(b, flags...)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(flags))
}

// blockHeaderMax is the largest block header appendBlockHeader writes.
const blockHeaderMax = 2 + 2*9 + 3 + 3 + 4

// appendBlockHeader appends the header of a block of LZMA2 data with both
// of its sizes, which let a decoder read it whole and in parallel with
// other blocks.
func appendBlockHeader(b []byte, packed, unpacked int64, dictProp byte) []byte {
	start := len(b)
	b = append(b, 0, 0x40|0x80) // size, flags: both sizes, one filter
	b = appendUvarint(b, uint64(packed))
	b = appendUvarint(b, uint64(unpacked))
	b = append(b, 0x21, 1, dictProp) // LZMA2, one byte of properties
	for (len(b)-start)%4 != 0 {
		b = append(b, 0)
	}
	b[start] = byte((len(b)-start+4)/4 - 1)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// dictProp returns the LZMA2 property byte of the smallest dictionary size
// the format can say that is at least size.
func dictProp(size int) byte {
	for p := byte(0); p < 40; p++ {
		if dictSize(p) >= size {
			return p
		}
	}
	return 40
}

// appendIndex appends the index of blocks and the stream footer.
func appendIndex(b []byte, blocks []record, id byte) []byte {
	start := len(b)
	b = append(b, 0)
	b = appendUvarint(b, uint64(len(blocks)))
	for _, r := range blocks {
		b = appendUvarint(b, uint64(r.unpadded))
		b = appendUvarint(b, uint64(r.unpacked))
	}
	for (len(b)-start)%4 != 0 {
		b = append(b, 0)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
	footer := binary.LittleEndian.AppendUint32(nil, uint32((len(b)-start)/4-1))
	footer = append(footer, 0, id)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(footer))
	b = append(b, footer...)
	return append(b, footerMagic...)
}
