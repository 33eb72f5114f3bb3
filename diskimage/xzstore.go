package diskimage

import (
	"encoding/binary"
	"hash/crc32"
	"hash/crc64"
)

// storedXZ returns b as a complete .xz stream whose LZMA2 data holds b in
// uncompressed chunks. github.com/ulikunitz/xz needs close to a second per
// MiB for data that does not compress (compressed kernels, initrds,
// firmware, .ko.xz modules are common in images); LZMA2 has uncompressed
// chunks for exactly that data, and writing them costs a copy. The format
// is the one in "The .xz File Format" 1.0.4 (tukaani.org).
func storedXZ(b []byte) []byte {
	const checkCRC64 = 0x04
	le := binary.LittleEndian
	out := make([]byte, 0, len(b)+len(b)/(64<<10)*3+128)

	// Stream header: magic, flags (CRC64 check), CRC32 of the flags.
	flags := []byte{0x00, checkCRC64}
	out = append(out, 0xfd, '7', 'z', 'X', 'Z', 0x00)
	out = append(out, flags...)
	out = le.AppendUint32(out, crc32.ChecksumIEEE(flags))

	// Block header: size 12 bytes ((2+1)*4), one filter, LZMA2 (0x21) with
	// a 1 MiB dictionary (property 16), padding, CRC32.
	blockStart := len(out)
	header := []byte{0x02, 0x00, 0x21, 0x01, 16, 0, 0, 0}
	out = append(out, header...)
	out = le.AppendUint32(out, crc32.ChecksumIEEE(header))

	// LZMA2 data: uncompressed chunks of up to 64 KiB, the first resetting
	// the dictionary, then the end marker.
	dataStart := len(out)
	for i := 0; i < len(b); i += 64 << 10 {
		chunk := b[i:min(len(b), i+64<<10)]
		ctl := byte(0x02)
		if i == 0 {
			ctl = 0x01
		}
		out = append(out, ctl, byte((len(chunk)-1)>>8), byte(len(chunk)-1))
		out = append(out, chunk...)
	}
	out = append(out, 0x00)
	unpadded := len(out) - blockStart
	for (len(out)-dataStart)%4 != 0 {
		out = append(out, 0)
	}
	out = le.AppendUint64(out, crc64.Checksum(b, crc64.MakeTable(crc64.ECMA)))
	unpadded += 8

	// Index: one record (unpadded block size, uncompressed size), padding,
	// CRC32.
	indexStart := len(out)
	out = append(out, 0x00)
	out = appendMultibyte(out, 1)
	out = appendMultibyte(out, uint64(unpadded))
	out = appendMultibyte(out, uint64(len(b)))
	for (len(out)-indexStart)%4 != 0 {
		out = append(out, 0)
	}
	out = le.AppendUint32(out, crc32.ChecksumIEEE(out[indexStart:]))
	indexSize := len(out) - indexStart

	// Stream footer: CRC32 of backward size and flags, backward size,
	// flags, magic.
	footer := le.AppendUint32(nil, uint32(indexSize/4-1))
	footer = append(footer, flags...)
	out = le.AppendUint32(out, crc32.ChecksumIEEE(footer))
	out = append(out, footer...)
	return append(out, 'Y', 'Z')
}

// appendMultibyte appends v in the .xz format's variable-length encoding:
// seven bits a byte, low bits first, the top bit set on all but the last.
func appendMultibyte(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
