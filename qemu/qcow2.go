package qemu

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
)

// QEMU's SD card model refuses an image whose size is not a power of two.
// Rather than copy or grow the user's image, the card is a qcow2 file
// that has the image as its raw backing file and the next power of two
// as its size: reads past the image's end see zeros, and the image is
// never written (QEMU opens a backing file read-only, and the drive is a
// snapshot on top).

// sdSize is the size QEMU accepts for an SD card holding size bytes.
func sdSize(size int64) int64 {
	if size <= 0 {
		return 0
	}
	if size&(size-1) == 0 {
		return size
	}
	return 1 << bits.Len64(uint64(size))
}

const (
	qcowClusterBits = 16
	qcowCluster     = 1 << qcowClusterBits
)

// writeQcow2Overlay writes a qcow2 (version 3) file at path with the given
// virtual size whose backing file is the raw image at backing. Its
// clusters: 0 the header, 1 the refcount table, 2 the one refcount block
// (counting these four clusters), 3 the L1 table, all zero: no data
// cluster is allocated, so every read goes to the backing file.
func writeQcow2Overlay(path, backing string, size int64) error {
	abs, err := filepath.Abs(backing)
	if err != nil {
		return err
	}
	const headerLen = 104
	ext := qcowExtension(0xe2792aca, []byte("raw")) // backing file format
	ext = append(ext, qcowExtension(0, nil)...)     // end of extensions
	nameOff := headerLen + len(ext)
	if nameOff+len(abs) > qcowCluster {
		return fmt.Errorf("backing file name of %d bytes is too long for a qcow2 header", len(abs))
	}
	l2Span := int64(qcowCluster) * (qcowCluster / 8) // bytes one L1 entry maps
	l1Size := (size + l2Span - 1) / l2Span
	if l1Size*8 > qcowCluster {
		return fmt.Errorf("%d bytes is too large for a one-cluster L1 table", size)
	}

	f := make([]byte, 4*qcowCluster)
	be := binary.BigEndian
	h := f[:headerLen]
	copy(h, "QFI\xfb")
	be.PutUint32(h[4:], 3)                 // version
	be.PutUint64(h[8:], uint64(nameOff))   // backing_file_offset
	be.PutUint32(h[16:], uint32(len(abs))) // backing_file_size
	be.PutUint32(h[20:], qcowClusterBits)  // cluster_bits
	be.PutUint64(h[24:], uint64(size))     // size
	be.PutUint32(h[36:], uint32(l1Size))   // l1_size
	be.PutUint64(h[40:], 3*qcowCluster)    // l1_table_offset
	be.PutUint64(h[48:], 1*qcowCluster)    // refcount_table_offset
	be.PutUint32(h[56:], 1)                // refcount_table_clusters
	be.PutUint32(h[96:], 4)                // refcount_order: 16-bit counts
	be.PutUint32(h[100:], headerLen)       // header_length
	copy(f[headerLen:], ext)
	copy(f[nameOff:], abs)
	be.PutUint64(f[qcowCluster:], 2*qcowCluster) // refcount table -> block
	for i := range 4 {
		be.PutUint16(f[2*qcowCluster+2*i:], 1)
	}
	return os.WriteFile(path, f, 0o644)
}

// qcowExtension encodes a header extension: type, length, data padded to
// 8 bytes.
func qcowExtension(typ uint32, data []byte) []byte {
	b := make([]byte, 8+(len(data)+7)/8*8)
	binary.BigEndian.PutUint32(b, typ)
	binary.BigEndian.PutUint32(b[4:], uint32(len(data)))
	copy(b[8:], data)
	return b
}
