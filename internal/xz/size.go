package xz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Size returns the decoded size of the .xz file r of size bytes without
// decoding it: each stream ends with an index listing its blocks' sizes,
// and a footer giving the index's size, so the streams are walked from the
// end of the file back to its start. It reads a few hundred bytes per
// stream. A file that is truncated, or padded with anything but the
// zeros the format allows, fails: its last bytes are then not a footer.
func Size(r io.ReaderAt, size int64) (int64, error) {
	var total int64
	end := size
	for stream := 0; end > 0; stream++ {
		// Stream padding: zeros in groups of four before the end or
		// between streams.
		var word [4]byte
		for end >= 4 {
			if _, err := r.ReadAt(word[:], end-4); err != nil {
				return 0, err
			}
			if word != [4]byte{} {
				break
			}
			end -= 4
		}
		if end == 0 && stream > 0 {
			break
		}
		if end < 24 {
			return 0, fmt.Errorf("%d bytes before the last stream are not an xz stream (truncated?): %w", end, io.ErrUnexpectedEOF)
		}
		footer := make([]byte, 12)
		if _, err := r.ReadAt(footer, end-12); err != nil {
			return 0, err
		}
		if !bytes.Equal(footer[10:12], footerMagic) || crc32.ChecksumIEEE(footer[4:10]) != binary.LittleEndian.Uint32(footer[0:4]) {
			return 0, fmt.Errorf("no stream footer at byte %d: the file is truncated or is not xz: %w", end-12, io.ErrUnexpectedEOF)
		}
		indexSize := (int64(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
		if indexSize > end-24 {
			return 0, fmt.Errorf("stream footer at byte %d: index of %d bytes does not fit", end-12, indexSize)
		}
		// An index lists two numbers of at most nine bytes per block:
		// bounded by indexSize, which the footer's CRC vouches for.
		index := make([]byte, indexSize)
		if _, err := r.ReadAt(index, end-12-indexSize); err != nil {
			return 0, err
		}
		unpadded, unpacked, err := parseIndex(index)
		if err != nil {
			return 0, fmt.Errorf("index before byte %d: %w", end-12, err)
		}
		start := end - 12 - indexSize - unpadded - 12
		if start < 0 {
			return 0, fmt.Errorf("index before byte %d lists %d bytes of blocks, more than the file holds", end-12, unpadded)
		}
		header := make([]byte, 12)
		if _, err := r.ReadAt(header, start); err != nil {
			return 0, err
		}
		if !bytes.Equal(header[:6], headerMagic) || !bytes.Equal(header[6:8], footer[8:10]) {
			return 0, fmt.Errorf("no stream header at byte %d, where the index before byte %d puts it", start, end-12)
		}
		if total+unpacked < total {
			return 0, errors.New("decoded size overflows")
		}
		total += unpacked
		end = start
	}
	return total, nil
}

// parseIndex reads a whole index (indicator, records, padding, CRC32) and
// returns the blocks' total stored size, each padded to four bytes, and
// their total decoded size.
func parseIndex(b []byte) (stored, decoded int64, err error) {
	if len(b) < 8 || b[0] != 0 {
		return 0, 0, errors.New("not an index")
	}
	if crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return 0, 0, errors.New("index: CRC32 mismatch")
	}
	body := b[1 : len(b)-4]
	off := 0
	next := func() (int64, error) {
		v, n := uvarint(body[off:])
		if n <= 0 || v > 1<<62 {
			return 0, errors.New("index: bad number")
		}
		off += n
		return int64(v), nil
	}
	count, err := next()
	if err != nil {
		return 0, 0, err
	}
	if count > int64(len(body))/2 {
		return 0, 0, errors.New("index: more records than it has bytes for")
	}
	for range count {
		unpadded, err := next()
		if err != nil {
			return 0, 0, err
		}
		unpacked, err := next()
		if err != nil {
			return 0, 0, err
		}
		stored += (unpadded + 3) &^ 3
		decoded += unpacked
		if stored < 0 || decoded < 0 || stored > 1<<62 || decoded > 1<<62 {
			return 0, 0, errors.New("index: sizes overflow")
		}
	}
	for _, c := range body[off:] {
		if c != 0 {
			return 0, 0, errors.New("index: nonzero padding")
		}
	}
	if (1+off+3)&^3 != len(body)+1 {
		return 0, 0, errors.New("index: size does not match its records")
	}
	return stored, decoded, nil
}
