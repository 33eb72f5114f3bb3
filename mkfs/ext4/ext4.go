// Package ext4 writes a fresh ext4 filesystem from an fstree.Tree, in one
// streaming pass, deterministically.
//
// The filesystem has the features mke2fs -t ext4 gives on Debian bookworm
// (has_journal, ext_attr, dir_index, filetype, extent, 64bit, flex_bg,
// sparse_super, large_file, huge_file, dir_nlink, extra_isize,
// metadata_csum) except resize_inode: no blocks are reserved for growing
// the group descriptor table offline; the kernel grows it online through
// meta_bg instead. Blocks are 4 KiB, inodes 256 bytes.
//
// Writing lays everything out from the tree's metadata, then copies each
// file's content once from its reference into its blocks. Blocks of zeros
// in a file become holes, and nothing that is all zero is written: the
// region of the io.WriterAt must read as zeros beforehand (a new or
// truncated file, or a fresh sparse disk image), which keeps the output
// sparse and makes a record of the writes an exact block map.
package ext4

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// Options control the filesystem. The zero value gives mke2fs's defaults,
// a size that fits the tree, and identifiers derived from the tree.
type Options struct {
	// Size is the filesystem size in bytes for Write; 0 means MinSize.
	Size int64
	// Headroom is the share of free space an automatic size adds to what
	// the tree needs (default 0.20; negative for none).
	Headroom float64
	// MinFree is the least free space an automatic size leaves (default
	// 64 MiB; negative for none).
	MinFree int64
	// Label is the volume label, up to 16 bytes.
	Label string
	// UUID and HashSeed are the filesystem UUID and the directory hash
	// seed. When zero they derive from Seed (SHA-256 with a purpose
	// string), and from the tree's metadata when Seed is empty too.
	UUID, HashSeed [16]byte
	Seed           []byte
	// NoJournal leaves out the journal (and the has_journal feature).
	NoJournal bool
	// Time is the superblock's times, each inode's creation time, and any
	// time the tree leaves unset. Zero means the newest mtime in the tree.
	Time time.Time
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
	// Progress, when set, is called as file content is copied, with the
	// bytes done and the total.
	Progress func(done, total int64)
}

const (
	defaultHeadroom = 0.20
	defaultMinFree  = 64 << 20
)

// FS is a tree about to become an ext4 filesystem. It offers the shape
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

// MinSize returns the automatic size for t: what it needs plus headroom.
func MinSize(t *fstree.Tree, opts Options) (int64, error) { return New(t, opts).MinSize() }

// Write writes t as an ext4 filesystem of opts.Size bytes (MinSize when
// 0) at offset off of w.
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
		p, err := newPlan(f.tree, f.opts)
		if err != nil {
			return nil, fmt.Errorf("ext4: %w", err)
		}
		f.plan = p
	}
	return f.plan, nil
}

// MinSize returns the bytes needed for the tree plus the headroom the
// options ask for, rounded up to a MiB.
func (f *FS) MinSize() (int64, error) {
	free := f.opts.MinFree
	if free == 0 {
		free = defaultMinFree
	}
	return f.fitSize(f.headroom(), max(free, 0))
}

// headroom is the effective Headroom option.
func (f *FS) headroom() float64 {
	if f.opts.Headroom == 0 {
		return defaultHeadroom
	}
	return max(f.opts.Headroom, 0)
}

// fitSize finds the smallest size (in MiB steps) whose layout holds the
// tree with the given free space.
func (f *FS) fitSize(headroom float64, minFree int64) (int64, error) {
	p, err := f.getPlan()
	if err != nil {
		return 0, err
	}
	const step = 1 << 20
	want := p.inodes + int64(float64(p.inodes)*headroom)
	s := roundUp((p.dataBlocks+p.inodes/inodesPerBlock+64)*blockSize, step)
	for i := 0; i < 200; i++ {
		g, err := newGeometry(s, p.inodes, want, !f.opts.NoJournal)
		if err == nil {
			used := p.used(g)
			free := max(int64(float64(used)*headroom), (minFree+blockSize-1)/blockSize)
			if used+free <= g.blocks {
				return s, nil
			}
			s = max(s+step, roundUp((used+free)*blockSize, step))
			continue
		}
		s += s/8 + step
	}
	return 0, fmt.Errorf("ext4: no size found for %d inodes and %d blocks", p.inodes, p.dataBlocks)
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// ids returns the UUID and hash seed the options ask for.
func (f *FS) ids(p *plan) (uuid, hashSeed [16]byte) {
	seed := f.opts.Seed
	if len(seed) == 0 {
		seed = p.metaHash[:]
	}
	derive := func(purpose string) [16]byte {
		h := sha256.New()
		h.Write([]byte(purpose))
		h.Write([]byte{0})
		h.Write(seed)
		var u [16]byte
		copy(u[:], h.Sum(nil))
		u[6] = u[6]&0x0f | 0x40 // a version 4 (random) UUID, as mke2fs makes
		u[8] = u[8]&0x3f | 0x80
		return u
	}
	uuid, hashSeed = f.opts.UUID, f.opts.HashSeed
	if uuid == [16]byte{} {
		uuid = derive("ocidisk ext4 uuid")
	}
	if hashSeed == [16]byte{} {
		hashSeed = derive("ocidisk ext4 hash seed")
	}
	return uuid, hashSeed
}

func hashSeedWords(s [16]byte) [4]uint32 {
	var w [4]uint32
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(s[4*i:])
	}
	return w
}
