package qemu

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/ocidisk/ocidisk/diskimage/qcow2"
)

// An image is raw or qcow2, told by the file's first bytes as QEMU itself
// would probe it: QEMU gets the format on its command line (probing a raw
// image is unsafe), a direct boot reads the boot partition through the
// qcow2 mapping, and an SD card's size is the disk's, not the file's.

// disk is an image opened for reading its disk: the raw file, or the
// disk a qcow2 file holds.
type disk struct {
	*io.SectionReader
	f      *os.File
	format string
	name   string
}

// openDisk opens an image and tells its format.
func openDisk(path string) (*disk, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	d := &disk{f: f, format: "raw", name: path}
	q, err := qcow2.OpenIfQcow2(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	if q != nil {
		d.format, d.SectionReader = "qcow2", io.NewSectionReader(q, 0, q.Size())
		return d, nil
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	d.SectionReader = io.NewSectionReader(f, 0, st.Size())
	return d, nil
}

// imageFormat returns the format of the image at path and the size of
// its disk.
func imageFormat(path string) (format string, size int64, err error) {
	d, err := openDisk(path)
	if err != nil {
		return "", 0, err
	}
	defer d.Close()
	return d.format, d.Size(), nil
}

// Close closes the file.
func (d *disk) Close() error { return d.f.Close() }

// Stat describes the disk, for go-diskfs, which reads partition tables
// from a file.
func (d *disk) Stat() (fs.FileInfo, error) { return diskInfo{d}, nil }

type diskInfo struct{ d *disk }

func (i diskInfo) Name() string       { return i.d.name }
func (i diskInfo) Size() int64        { return i.d.Size() }
func (i diskInfo) Mode() fs.FileMode  { return 0o444 }
func (i diskInfo) ModTime() time.Time { return time.Time{} }
func (i diskInfo) IsDir() bool        { return false }
func (i diskInfo) Sys() any           { return nil }
