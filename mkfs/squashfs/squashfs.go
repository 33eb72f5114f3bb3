// Package squashfs writes a squashfs 4.0 filesystem from an fstree.Tree:
// the compressed, read-only root of an appliance image, or a bare
// .squashfs file that Linux mounts and unsquashfs reads.
//
// The writer makes one pass over file content and then one over the
// metadata, the order the format lays them out in: data blocks and
// fragment blocks (file tails packed together) first, compressed on all
// cores and written in order, then the inode, directory, fragment,
// export, id and xattr tables. Blocks of zeros become holes; memory grows
// with the number of entries, not with their bytes.
//
// Every entry kind is kept: hardlinks (one inode, its link count),
// devices with large numbers, FIFOs, sockets, owners (32-bit, up to 65535
// distinct), permission, setuid, setgid and sticky bits, mtimes in
// seconds, and xattrs in the user., trusted. and security. namespaces
// (squashfs has no other). Large directories get an index for lookups.
// Identical trees and options give identical bytes: squashfs has no UUID
// or label, and nothing depends on the machine or the clock.
//
// A compressed filesystem's size is known only once it is written, so
// MinSize writes it into a spool file (unlinked at once, so nothing is
// left behind) and WriteAt copies the spool: content is compressed once.
// WriteAt without MinSize writes straight into its target.
package squashfs

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/outfile"
)

// Options control the filesystem. The zero value gives zstd at
// mksquashfs's default level with 128 KiB blocks.
type Options struct {
	// Size is the filesystem size in bytes for Write; 0 means what the
	// tree takes.
	Size int64
	// Compression is "zstd" (the default), "xz", "gzip" or "lz4". Debian's
	// kernels build every one of them in.
	Compression string
	// Level is the compression level: zstd 1-22 (default 15), gzip 1-9
	// (default 9), lz4 0 (fast, the default) or 1-9 (high compression);
	// xz takes none.
	Level int
	// BlockSize is the data block size, a power of two from 4 KiB to
	// 1 MiB; 0 means 128 KiB.
	BlockSize int
	// Time is the superblock's time and the mtime of nodes without one.
	// Zero means the newest mtime in the tree.
	Time time.Time
	// DropXattrs leaves out xattrs squashfs cannot store (outside user.,
	// trusted. and security., e.g. POSIX ACLs in system.posix_acl_*),
	// logging each at Warn level. Without it they are an error.
	DropXattrs bool
	// Workers is the number of goroutines compressing data blocks; 0 means
	// one per CPU. Each holds a compressor's state: about 35 MiB for zstd
	// levels 10 and up, a few MiB for the others.
	Workers int
	// TempDir is where MinSize spools the filesystem; "" means
	// os.TempDir(). Pick a disk with room for the compressed tree.
	TempDir string
	// Log receives warnings and debug detail; nil discards them.
	Log *slog.Logger
	// Progress, when set, is called as file content is compressed, with
	// the bytes done and the total.
	Progress func(done, total int64)
}

const (
	defaultBlockSize = 128 << 10
	// devBlock is what a squashfs image is padded to: Linux reads it in
	// 4 KiB device blocks.
	devBlock = 4096
)

// FS is a tree about to become a squashfs filesystem. It offers the shape
// diskimage.Filesystem expects.
type FS struct {
	tree *fstree.Tree
	opts Options
	plan *plan

	// spool holds the filesystem MinSize wrote, and spoolSize its
	// padded size, until WriteAt copies it.
	spool     *os.File
	spoolSize int64
}

// New returns the filesystem for t under opts; nothing is computed yet.
func New(t *fstree.Tree, opts Options) *FS {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &FS{tree: t, opts: opts}
}

// MinSize returns the size of t as a squashfs filesystem under opts. It
// compresses the whole tree; prefer New and FS.MinSize when the same
// filesystem is then written, which reuses that work.
func MinSize(t *fstree.Tree, opts Options) (int64, error) {
	f := New(t, opts)
	defer f.dropSpool()
	return f.MinSize()
}

// Write writes t as a squashfs filesystem at offset off of w, in
// opts.Size bytes, or in what it takes when opts.Size is 0.
func Write(w io.WriterAt, off int64, t *fstree.Tree, opts Options) error {
	f := New(t, opts)
	if opts.Size == 0 {
		n, err := f.write(w, off, -1)
		if err != nil {
			return err
		}
		return outfile.Extend(w, off+n)
	}
	return f.WriteAt(w, off, opts.Size)
}

func (f *FS) getPlan() (*plan, error) {
	if f.plan == nil {
		p, err := newPlan(f.tree, &f.opts)
		if err != nil {
			return nil, fmt.Errorf("squashfs: %w", err)
		}
		f.plan = p
	}
	return f.plan, nil
}

// MinSize returns the filesystem's size, a multiple of 4 KiB: exactly
// what it takes, since a read-only filesystem has no use for free space.
// The filesystem is written into a spool file that WriteAt then copies.
func (f *FS) MinSize() (int64, error) {
	if f.spool != nil {
		return f.spoolSize, nil
	}
	sp, err := os.CreateTemp(f.opts.TempDir, "ocidisk-squashfs-*")
	if err != nil {
		return 0, fmt.Errorf("squashfs: spool: %w", err)
	}
	// Unlinked at once: the open file is all there is, and it goes away
	// with the process even if WriteAt never comes.
	if err := os.Remove(sp.Name()); err != nil {
		sp.Close()
		return 0, fmt.Errorf("squashfs: spool: %w", err)
	}
	n, err := f.write(sp, 0, -1)
	if err != nil {
		sp.Close()
		return 0, err
	}
	f.spool, f.spoolSize = sp, n
	f.opts.Log.Debug("squashfs spooled", "bytes", n)
	return n, nil
}

func (f *FS) dropSpool() {
	if f.spool != nil {
		f.spool.Close()
		f.spool = nil
	}
}

// WriteAt writes the filesystem at offset off of w into a region of size
// bytes; what the filesystem does not use is left as it was (zeros in a
// fresh image). A filesystem bigger than size is an error giving both
// sizes, and nothing is written past off+size.
func (f *FS) WriteAt(w io.WriterAt, off, size int64) error {
	if f.spool != nil {
		defer f.dropSpool()
		if f.spoolSize > size {
			return fmt.Errorf("squashfs: the tree needs %d bytes, the filesystem size is %d", f.spoolSize, size)
		}
		if err := copySpool(w, off, f.spool); err != nil {
			return err
		}
		return outfile.Extend(w, off+size)
	}
	n, err := f.write(w, off, size)
	if err != nil {
		return err
	}
	if n > size {
		return fmt.Errorf("squashfs: the tree needs %d bytes, the filesystem size is %d", n, size)
	}
	return outfile.Extend(w, off+size)
}

// copySpool copies the spool into w at off, leaving out 4 KiB blocks of
// zeros so the target stays sparse. The spool ends where the filesystem's
// bytes do: its padding is not written there either.
func copySpool(w io.WriterAt, off int64, sp *os.File) error {
	fi, err := sp.Stat()
	if err != nil {
		return fmt.Errorf("squashfs: spool: %w", err)
	}
	n := fi.Size()
	buf := make([]byte, 1<<20)
	var zero [devBlock]byte
	for done := int64(0); done < n; {
		m := int(min(int64(len(buf)), n-done))
		if _, err := sp.ReadAt(buf[:m], done); err != nil {
			return fmt.Errorf("squashfs: read spool at %d: %w", done, err)
		}
		for i := 0; i < m; {
			if j := min(i+devBlock, m); bytes.Equal(buf[i:j], zero[:j-i]) {
				i = j
				continue
			}
			j := i
			for j < m && !bytes.Equal(buf[j:min(j+devBlock, m)], zero[:min(j+devBlock, m)-j]) {
				j = min(j+devBlock, m)
			}
			if _, err := w.WriteAt(buf[i:j], off+done+int64(i)); err != nil {
				return fmt.Errorf("squashfs: write at %d: %w", done+int64(i), err)
			}
			i = j
		}
		done += int64(m)
	}
	return nil
}
