// Package inspect looks inside a disk image without mounting it: the
// partition table, each partition's filesystem (label, UUID, size, use),
// the board files on the boot partition and the kernel command line, and
// directory listings of either filesystem. It reads with the read-only
// readers in inspect/fat and inspect/ext4 and never writes the image.
//
// Boards are recognised from the board packs, which say what files a
// board's boot partition holds: a new board needs no code here.
package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ocidisk/ocidisk/diskimage/qcow2"
	"github.com/ocidisk/ocidisk/inspect/ext4"
	"github.com/ocidisk/ocidisk/inspect/fat"
	"github.com/ocidisk/ocidisk/inspect/ptable"
	"github.com/ocidisk/ocidisk/internal/compression"
)

// FS is a filesystem the readers opened.
type FS interface {
	fs.ReadDirFS
	fs.StatFS
	Type() string
	Label() string
	UUID() string
	Size() int64
	Free() int64
}

// Image is an open disk image (or a bare filesystem image).
type Image struct {
	Path string
	Size int64
	// Table is nil for a bare filesystem image.
	Table *ptable.Table
	Parts []*Part
	// Layout is how the image's boot configs say it boots: its slots.
	Layout Layout
	r      io.ReaderAt
	close  func() error
}

// Part is a partition (or, without a table, the whole image) and what it
// holds.
type Part struct {
	ptable.Partition
	// FS is the filesystem, nil when none was recognised; Kind names it
	// anyway ("squashfs", "empty", "unknown") and FSErr says what was
	// wrong with one that looked like a filesystem.
	FS    FS
	Kind  string
	FSErr error
	// Used is the space a filesystem without a reader (squashfs) takes.
	Used int64
	// Role is "boot", "root", "data" or "select" when the image's layout
	// says so, and Slot the A/B slot ("a", "b") a boot or root partition
	// belongs to.
	Role, Slot string
	// Cmdline is the kernel command line that boots a root partition.
	Cmdline string
	// VerityErr says how the root's dm-verity hash tree failed, once
	// Report has checked it.
	VerityErr error
	verity    *Verity
}

// Open reads an image's table and opens every partition's filesystem. A
// compressed image (gzip, xz, zstd) is first decompressed into a sparse
// temporary file; a qcow2 image is read in place. Errors name the image and what is wrong with it; a
// partition whose filesystem is damaged is not an error here but has
// FSErr set.
func Open(path string) (*Image, error) {
	r, size, closeFn, err := openFile(path)
	if err != nil {
		return nil, err
	}
	im := &Image{Path: path, Size: size, r: r, close: closeFn}
	if err := im.read(); err != nil {
		closeFn()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

// Close releases the image.
func (im *Image) Close() error { return im.close() }

func (im *Image) read() error {
	t, err := ptable.Read(im.r, im.Size)
	if errors.Is(err, ptable.ErrNoTable) {
		// A bare filesystem, as ocidisk flatten --format ext4 writes.
		p := &Part{Partition: ptable.Partition{Number: 1, Size: im.Size}}
		im.openFS(p)
		if p.FS == nil {
			if p.FSErr != nil {
				return p.FSErr
			}
			return errors.New("neither a partition table nor a filesystem (FAT, ext2/3/4) at its start")
		}
		im.Parts = []*Part{p}
		im.assignRoles()
		return nil
	}
	if err != nil {
		return fmt.Errorf("partition table: %w", err)
	}
	im.Table = t
	for _, tp := range t.Partitions {
		p := &Part{Partition: tp}
		im.openFS(p)
		im.Parts = append(im.Parts, p)
	}
	im.assignRoles()
	return nil
}

// openFS recognises a partition's filesystem by its magic numbers and
// opens it.
func (im *Image) openFS(p *Part) {
	head := make([]byte, 2048)
	n, _ := im.r.ReadAt(head[:min(int64(len(head)), p.Size)], p.Start)
	head = head[:n]
	le := binary.LittleEndian
	switch {
	case len(head) >= 1082 && le.Uint16(head[1080:]) == 0xef53:
		p.Kind = "ext4"
		f, err := ext4.Open(im.r, p.Start, p.Size)
		if err != nil {
			p.FSErr = fmt.Errorf("partition %d: ext2/3/4: %w", p.Number, err)
			return
		}
		p.FS, p.Kind = f, f.Type()
	case len(head) >= 512 && head[510] == 0x55 && head[511] == 0xaa && (head[0] == 0xeb || head[0] == 0xe9):
		p.Kind = "fat"
		f, err := fat.Open(im.r, p.Start, p.Size)
		if err != nil {
			p.FSErr = fmt.Errorf("partition %d: FAT: %w", p.Number, err)
			return
		}
		p.FS, p.Kind = f, f.Type()
	case len(head) >= 48 && string(head[:4]) == "hsqs":
		// No reader for squashfs yet: its superblock gives the size used.
		p.Kind = "squashfs"
		p.Used = int64(le.Uint64(head[40:]))
	case len(head) > 0 && bytes.Count(head, []byte{0}) == len(head):
		p.Kind = "empty"
	default:
		p.Kind = "unknown"
	}
}

// Err returns the first filesystem error, if any partition had one, or,
// once Report has checked them, the first dm-verity hash tree that fails.
func (im *Image) Err() error {
	for _, p := range im.Parts {
		if p.FSErr != nil {
			return fmt.Errorf("%s: %w", im.Path, p.FSErr)
		}
	}
	for _, p := range im.Parts {
		if p.VerityErr != nil {
			return fmt.Errorf("%s: partition %d: %w", im.Path, p.Number, p.VerityErr)
		}
	}
	return nil
}

// openFile opens an image for random access, decompressing it first if
// it is compressed.
func openFile(path string) (io.ReaderAt, int64, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	size := st.Size()
	switch {
	case st.Mode().IsRegular():
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		// A block device, such as a card just flashed: read-only, like
		// everything here.
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, 0, nil, err
		}
	default:
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s: neither a regular file nor a block device", path)
	}
	// QEMU's format: read through its cluster mapping, in place.
	q, err := qcow2.OpenIfQcow2(f)
	if err != nil {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	if q != nil {
		return q, q.Size(), f.Close, nil
	}
	format, err := compression.SniffAt(f)
	if err != nil {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	if format == compression.None {
		return f, size, f.Close, nil
	}
	defer f.Close()
	tmp, size, err := decompress(f, format)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	return tmp, size, func() error {
		tmp.Close()
		return os.Remove(tmp.Name())
	}, nil
}
