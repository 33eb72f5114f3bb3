package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Magic starts every qcow2 file.
const Magic = "QFI\xfb"

// IsQcow2 reports whether the first bytes of a file are qcow2's magic.
func IsQcow2(head []byte) bool { return bytes.HasPrefix(head, []byte(Magic)) }

// OpenIfQcow2 opens r as Open does when it starts with qcow2's magic, and
// returns nil and no error when it does not: a raw image, or another
// format the caller tells apart.
func OpenIfQcow2(r io.ReaderAt) (*Reader, error) {
	head := make([]byte, len(Magic))
	n, _ := r.ReadAt(head, 0)
	if !IsQcow2(head[:n]) {
		return nil, nil
	}
	return Open(r)
}

// Reader reads the disk a qcow2 image holds, as QEMU would present it:
// allocated clusters from the file, unallocated and zero clusters as
// zeros. It reads what ocidisk and qemu-img write by default (version 2
// or 3, no encryption, no compressed clusters, no external data file, no
// extended L2 entries, no backing file), and refuses the rest with an
// error saying what it found, so that a direct boot of a qcow2 image can
// read its boot partition.
type Reader struct {
	r           io.ReaderAt
	size        int64
	clusterBits uint
	l1          []uint64

	mu    sync.Mutex
	l2Off uint64 // the cached L2 table's file offset
	l2    []byte
}

// Incompatible features a reader must understand (the qcow2
// specification): dirty (bit 0) only matters to a writer.
const (
	incompatCorrupt      = 1 << 1
	incompatExternalData = 1 << 2
	incompatCompression  = 1 << 3
	incompatExtendedL2   = 1 << 4
	l2Compressed         = 1 << 62
	offsetMask           = 0x00fffffffffffe00
)

// Open reads the header and L1 table of the qcow2 image r.
func Open(r io.ReaderAt) (*Reader, error) {
	h := make([]byte, 104)
	if _, err := r.ReadAt(h[:72], 0); err != nil {
		return nil, fmt.Errorf("qcow2: header: %w", err)
	}
	if !IsQcow2(h) {
		return nil, errors.New("qcow2: no qcow2 magic")
	}
	be := binary.BigEndian
	version := be.Uint32(h[4:])
	if version != 2 && version != 3 {
		return nil, fmt.Errorf("qcow2: version %d (want 2 or 3)", version)
	}
	if be.Uint64(h[8:]) != 0 {
		return nil, errors.New("qcow2: the image has a backing file; read it with qemu-img convert")
	}
	q := &Reader{r: r, clusterBits: uint(be.Uint32(h[20:])), size: int64(be.Uint64(h[24:]))}
	if q.clusterBits < 9 || q.clusterBits > 21 {
		return nil, fmt.Errorf("qcow2: cluster bits %d", q.clusterBits)
	}
	if be.Uint32(h[32:]) != 0 {
		return nil, errors.New("qcow2: the image is encrypted")
	}
	if version == 3 {
		if _, err := r.ReadAt(h[72:104], 72); err != nil {
			return nil, fmt.Errorf("qcow2: header: %w", err)
		}
		in := be.Uint64(h[72:])
		switch {
		case in&incompatCorrupt != 0:
			return nil, errors.New("qcow2: the image is marked corrupt")
		case in&(incompatExternalData|incompatExtendedL2) != 0:
			return nil, fmt.Errorf("qcow2: incompatible features %#x (external data file or extended L2 entries)", in)
		case in&^uint64(1|incompatCompression) != 0:
			return nil, fmt.Errorf("qcow2: unknown incompatible features %#x", in)
		}
	}
	n := be.Uint32(h[36:])
	if int64(n) < (q.size+int64(q.l2Span())-1)/int64(q.l2Span()) {
		return nil, fmt.Errorf("qcow2: an L1 table of %d entries cannot map %d bytes", n, q.size)
	}
	if n > 1<<25 {
		return nil, fmt.Errorf("qcow2: an L1 table of %d entries", n)
	}
	raw := make([]byte, 8*int(n))
	if _, err := r.ReadAt(raw, int64(be.Uint64(h[40:]))); err != nil {
		return nil, fmt.Errorf("qcow2: L1 table: %w", err)
	}
	q.l1 = make([]uint64, n)
	for i := range q.l1 {
		q.l1[i] = be.Uint64(raw[8*i:]) & offsetMask
	}
	return q, nil
}

// Size is the size of the disk.
func (q *Reader) Size() int64 { return q.size }

func (q *Reader) clusterSize() int64 { return 1 << q.clusterBits }

// l2Span is the bytes of disk one L2 table maps.
func (q *Reader) l2Span() uint64 { return uint64(q.clusterSize()/8) << q.clusterBits }

// ReadAt reads the disk's bytes at off.
func (q *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("qcow2: negative offset")
	}
	n := 0
	for len(p) > 0 {
		if off >= q.size {
			return n, io.EOF
		}
		in := off & (q.clusterSize() - 1)
		k := min(int64(len(p)), q.clusterSize()-in, q.size-off)
		host, err := q.cluster(off)
		if err != nil {
			return n, err
		}
		if host == 0 {
			clear(p[:k])
		} else if _, err := q.r.ReadAt(p[:k], int64(host)+in); err != nil {
			return n, fmt.Errorf("qcow2: data at %d: %w", host+uint64(in), err)
		}
		n += int(k)
		p = p[k:]
		off += k
	}
	return n, nil
}

// cluster returns the file offset of the cluster holding disk offset off,
// 0 when it reads as zeros.
func (q *Reader) cluster(off int64) (uint64, error) {
	i := uint64(off) / q.l2Span()
	if i >= uint64(len(q.l1)) || q.l1[i] == 0 {
		return 0, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.l2Off != q.l1[i] {
		if q.l2 == nil {
			q.l2 = make([]byte, q.clusterSize())
		}
		if _, err := q.r.ReadAt(q.l2, int64(q.l1[i])); err != nil {
			q.l2Off = 0
			return 0, fmt.Errorf("qcow2: L2 table at %d: %w", q.l1[i], err)
		}
		q.l2Off = q.l1[i]
	}
	j := (uint64(off) % q.l2Span()) >> q.clusterBits
	e := binary.BigEndian.Uint64(q.l2[8*j:])
	switch {
	case e&l2Compressed != 0:
		return 0, fmt.Errorf("qcow2: the cluster at disk offset %d is compressed; write the image with qemu-img convert without -c", off)
	case e&1 != 0: // reads as zeros (version 3)
		return 0, nil
	}
	return e & offsetMask, nil
}
