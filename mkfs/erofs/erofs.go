// Package erofs writes an uncompressed EROFS filesystem from an
// fstree.Tree: the read-only root of an appliance image that Linux mounts
// without decompressing anything, or a bare .erofs file that fsck.erofs
// checks and extracts.
//
// Everything is laid out from the tree's metadata before a byte is
// written: each inode's place (32-byte slots, packed into metadata
// blocks), its data blocks, and the shared xattr table. Writing then goes
// through the inodes once in that order, copying each file's content from
// its reference into its blocks: whole blocks go to the data blocks
// (EROFS_INODE_FLAT_PLAIN), and a tail that fits beside its inode is
// stored there (EROFS_INODE_FLAT_INLINE), as are small files, symlink
// targets and small directories. Memory grows with the number of entries,
// not with their bytes.
//
// Every entry kind is kept: hardlinks (one inode, its link count), devices
// (12-bit majors, 20-bit minors, what EROFS's 32-bit rdev holds), FIFOs,
// sockets, 32-bit owners, setuid, setgid and sticky bits, mtimes to the
// nanosecond, and xattrs in the namespaces EROFS names (user., trusted.,
// security., and the POSIX ACLs), shared between inodes in the shared
// xattr table where that takes less room. Compact 32-byte inodes are used
// where they hold everything (the mtime then is the build time); extended
// 64-byte ones elsewhere.
//
// Identical trees and options give identical bytes: the UUID derives from
// Options.Seed (or from the metadata written), the build time is
// Options.Time. Blocks of zeros are not written: the region of the
// io.WriterAt must read as zeros beforehand (a new or truncated file, or a
// fresh sparse disk image), and a diskimage.ZeroWriterAt is told about
// them, so that a record of the writes is an exact block map.
package erofs

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/outfile"
)

// Options control the filesystem. The zero value gives a filesystem of
// the size the tree takes, its identity derived from the tree.
type Options struct {
	// Size is the filesystem size in bytes for Write; 0 means what the
	// tree takes.
	Size int64
	// Label is the volume name, up to 16 bytes.
	Label string
	// UUID is the filesystem UUID. When zero it derives from Seed
	// (SHA-256 with a purpose string), and from the metadata written
	// when Seed is empty too.
	UUID [16]byte
	Seed []byte
	// Time is the build time: the mtime compact inodes stand for, and the
	// mtime of nodes without one. Zero means the newest mtime in the tree.
	Time time.Time
	// DropXattrs leaves out xattrs EROFS cannot store (outside user.,
	// trusted., security. and the POSIX ACLs), logging each at Warn level.
	// Without it they are an error.
	DropXattrs bool
	// Log receives warnings and debug detail; nil discards them.
	Log *slog.Logger
	// Progress, when set, is called as file content is copied, with the
	// bytes done and the total.
	Progress func(done, total int64)
	// BlockDigests, when set, may give a regular file's digests computed
	// ahead for a target that hashes the blocks written to it: 32 bytes
	// for each 4 KiB block of its content, the last padded with zeros
	// (verity.Hasher's), or nil. When the target takes them (it has an
	// Expect method, as verity.Writer), the writer passes on those of
	// the file's data blocks before writing them, so that the target
	// need not hash them again.
	BlockDigests func(n *fstree.Node) []byte
}

// FS is a tree about to become an EROFS filesystem. It offers the shape
// diskimage.Filesystem expects.
type FS struct {
	tree *fstree.Tree
	opts Options
	plan *plan
}

// New returns the filesystem for t under opts; nothing is computed yet.
func New(t *fstree.Tree, opts Options) *FS {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &FS{tree: t, opts: opts}
}

// MinSize returns the size of t as an EROFS filesystem under opts.
func MinSize(t *fstree.Tree, opts Options) (int64, error) { return New(t, opts).MinSize() }

// Write writes t as an EROFS filesystem at offset off of w, in opts.Size
// bytes, or in what it takes when opts.Size is 0.
func Write(w io.WriterAt, off int64, t *fstree.Tree, opts Options) error {
	f := New(t, opts)
	size := opts.Size
	if size == 0 {
		var err error
		if size, err = f.MinSize(); err != nil {
			return err
		}
	}
	return f.WriteAt(w, off, size)
}

func (f *FS) getPlan() (*plan, error) {
	if f.plan == nil {
		if len(f.opts.Label) > 16 {
			return nil, fmt.Errorf("erofs: label %q: longer than 16 bytes", f.opts.Label)
		}
		p, err := newPlan(f.tree, &f.opts)
		if err != nil {
			return nil, fmt.Errorf("erofs: %w", err)
		}
		f.plan = p
	}
	return f.plan, nil
}

// MinSize returns the filesystem's size, a multiple of 4 KiB: exactly
// what it takes, since a read-only filesystem has no use for free space.
// It is known from the tree's metadata alone.
func (f *FS) MinSize() (int64, error) {
	p, err := f.getPlan()
	if err != nil {
		return 0, err
	}
	return p.blocks * blockSize, nil
}

// WriteAt writes the filesystem at offset off of w into a region of size
// bytes; what the filesystem does not use is left as it was (zeros in a
// fresh image). A tree that does not fit fails, giving both sizes, before
// anything is written.
func (f *FS) WriteAt(w io.WriterAt, off, size int64) error {
	p, err := f.getPlan()
	if err != nil {
		return err
	}
	if need := p.blocks * blockSize; need > size {
		return fmt.Errorf("erofs: the tree needs %d bytes, the filesystem size is %d", need, size)
	}
	if err := f.write(w, off, p); err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	return outfile.Extend(w, off+size)
}

// uuid returns the UUID the options ask for; meta is the hash of the
// metadata written, the identity of last resort.
func (f *FS) uuid(meta []byte) [16]byte {
	if f.opts.UUID != [16]byte{} {
		return f.opts.UUID
	}
	seed := f.opts.Seed
	if len(seed) == 0 {
		seed = meta
	}
	h := sha256.New()
	h.Write([]byte("ocidisk erofs uuid\x00"))
	h.Write(seed)
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x40 // a version 4 (random) UUID, as mkfs.erofs makes
	u[8] = u[8]&0x3f | 0x80
	return u
}
