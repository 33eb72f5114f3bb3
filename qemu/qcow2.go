package qemu

import (
	"fmt"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/ocidisk/ocidisk/diskimage/qcow2"
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

// writeQcow2Overlay writes a qcow2 file at path with the given virtual
// size whose backing file is the image at backing, of format (raw or
// qcow2), by its absolute path: it holds no data, so every read goes to
// the backing file.
func writeQcow2Overlay(path, backing, format string, size int64) error {
	abs, err := filepath.Abs(backing)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := qcow2.WriteOverlay(f, size, qcow2.Backing{File: abs, Format: format}); err != nil {
		f.Close()
		return fmt.Errorf("SD card overlay for %s: %w", backing, err)
	}
	return f.Close()
}
