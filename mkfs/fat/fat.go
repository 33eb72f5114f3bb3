// Package fat writes a fresh FAT16 or FAT32 filesystem from an fstree.Tree
// in one pass: the boot partition of a board image, or a bare .vfat file.
//
// Names are kept as VFAT long names with Linux-style 8.3 aliases
// (LONGNA~1.TXT), names that fit 8.3 in one case use the NT case flags
// instead of a long name, and everything that depends on the build machine
// (volume serial, times) comes from the options or the tree, so the same
// tree and options give the same bytes.
//
// FAT cannot hold symlinks, device nodes, FIFOs, sockets, owners or
// extended attributes. Meeting one is an error naming its path unless an
// option says what to do; nothing is dropped silently.
package fat

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// SymlinkPolicy says what to do with symlinks, which FAT cannot hold.
type SymlinkPolicy int

const (
	// SymlinkError refuses a tree with symlinks, naming the first.
	SymlinkError SymlinkPolicy = iota
	// SymlinkFollow stores a copy of a symlink's target under the link's
	// name. Targets resolve inside the tree (absolute targets from its
	// root) and must be files or directories; loops are an error.
	SymlinkFollow
	// SymlinkSkip leaves symlinks out, logging each at Warn level.
	SymlinkSkip
)

// Options control a filesystem. The zero value makes an auto-sized FAT16 or
// FAT32 without a label whose serial derives from the tree.
type Options struct {
	// Size is the filesystem size in bytes for Write; 0 means MinSize.
	Size int64
	// Type forces FAT16 (16) or FAT32 (32); 0 chooses by size as mkfs.fat
	// does: FAT32 from 512 MiB.
	Type int
	// ClusterSize in bytes; 0 chooses by size as mkfs.fat does.
	ClusterSize int64
	// Label is the volume label (up to 11 characters), written in the boot
	// sector and as the root directory's label entry.
	Label string
	// Serial is the volume serial number. When 0 it is derived from Seed,
	// or without a seed from the tree's names, sizes and times.
	Serial uint32
	Seed   []byte
	// Time clamps every timestamp (SOURCE_DATE_EPOCH) and stands in for
	// times the tree does not have. Zero means no clamp, and the FAT
	// epoch (1980-01-01) for missing times.
	Time time.Time
	// Headroom is the free space MinSize leaves beyond the content, in
	// bytes; 0 means DefaultHeadroom and a negative value none.
	Headroom int64

	// Symlinks says what to do with symlinks.
	Symlinks SymlinkPolicy
	// SkipSpecial leaves out device nodes, FIFOs and sockets, logging
	// each, instead of refusing them.
	SkipSpecial bool
	// IgnoreOwner accepts entries not owned by root:root, and IgnoreXattrs
	// entries with extended attributes; FAT records neither.
	IgnoreOwner, IgnoreXattrs bool

	// Log receives warnings about entries left out and debug detail; nil
	// discards.
	Log *slog.Logger
}

// DefaultHeadroom is the free space MinSize leaves for content of n bytes:
// a tenth of it, at least 1 MiB, so that a kernel or config can be updated
// in place.
func DefaultHeadroom(n int64) int64 { return max(n/10, 1<<20) }

// ErrInvalidName is wrapped by errors about names FAT cannot store.
var ErrInvalidName = errInvalidName

// CheckName reports whether name can be stored as a FAT (VFAT) name: no
// control characters or any of * ? < > | " : / \, no trailing dot or space,
// valid UTF-8, at most 255 UTF-16 units. Errors wrap ErrInvalidName.
func CheckName(name string) error { return checkLongName(name) }

// FS is a FAT filesystem to be written from a tree. It offers the two
// methods diskimage.Filesystem asks for. The tree must not change between
// New and the last call.
type FS struct {
	t    *fstree.Tree
	opts Options
	log  *slog.Logger
	plan *plan
	err  error
}

// New returns the filesystem for t. Problems with the tree are reported
// by MinSize and WriteAt.
func New(t *fstree.Tree, opts Options) *FS {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FS{t: t, opts: opts, log: log}
}

func (fs *FS) planned() (*plan, error) {
	if fs.plan == nil && fs.err == nil {
		fs.err = fs.check()
		if fs.err == nil {
			fs.plan, fs.err = newPlan(fs.t, &fs.opts, fs.log)
		}
	}
	return fs.plan, fs.err
}

func (fs *FS) check() error {
	switch fs.opts.Type {
	case 0, 16, 32:
	default:
		return fmt.Errorf("fat: type %d: want 16, 32 or 0 for automatic", fs.opts.Type)
	}
	if _, err := labelBytes(fs.opts.Label); err != nil {
		return err
	}
	return nil
}

// MinSize returns the smallest size, a multiple of 1 MiB, that holds the
// tree plus the headroom with the geometry that size gets.
func (fs *FS) MinSize() (int64, error) {
	p, err := fs.planned()
	if err != nil {
		return 0, err
	}
	headroom := fs.opts.Headroom
	switch {
	case headroom == 0:
		headroom = DefaultHeadroom(p.bytes)
	case headroom < 0:
		headroom = 0
	}
	const mib = 1 << 20
	size := roundUp(p.bytes+headroom+mib, mib)
	for range 100 {
		bits := fs.bits(size)
		g, err := newGeometry(size, bits, fs.opts.ClusterSize, p.root.slots)
		if err != nil {
			if size >= 1<<41 {
				return 0, fmt.Errorf("fat: %w", err)
			}
			size = roundUp(size+size/8, mib)
			continue
		}
		need := p.clustersFor(g.clusterSize(), bits) + (headroom+g.clusterSize()-1)/g.clusterSize()
		if need <= int64(g.clusters) {
			return size, nil
		}
		// Grow by the missing clusters and their FAT entries, then check
		// again with the geometry the new size gets.
		size = roundUp(size+(need-int64(g.clusters))*(g.clusterSize()+8), mib)
	}
	return 0, errors.New("fat: no size found for the content")
}

func (fs *FS) bits(size int64) int {
	if fs.opts.Type != 0 {
		return fs.opts.Type
	}
	return autoBits(size)
}

// FATType returns the FAT variant (16 or 32) a filesystem of size bytes
// gets, so that a partition table can carry the matching type.
func (fs *FS) FATType(size int64) int { return fs.bits(size) }

// WriteAt writes the filesystem, size bytes, at offset off of w. The
// hidden-sectors field records off/512, the partition's start on its disk.
// Ranges that must read as zeros are written as zeros unless w has a
// ZeroAt(off, n int64) error method (diskimage's recorder over a fresh
// sparse file), which is called instead so the image stays sparse.
func (fs *FS) WriteAt(w io.WriterAt, off, size int64) error {
	p, err := fs.planned()
	if err != nil {
		return err
	}
	if off%sectorSize != 0 {
		return fmt.Errorf("fat: offset %d is not a multiple of %d", off, sectorSize)
	}
	bits := fs.bits(size)
	g, err := newGeometry(size, bits, fs.opts.ClusterSize, p.root.slots)
	if err != nil {
		return fmt.Errorf("fat: %w", err)
	}
	if need := p.clustersFor(g.clusterSize(), bits); need > int64(g.clusters) {
		return fmt.Errorf("fat: content needs %d bytes (%d clusters of %d bytes), the %d-byte filesystem has room for %d bytes (%d clusters)",
			need*g.clusterSize(), need, g.clusterSize(), size, int64(g.clusters)*g.clusterSize(), g.clusters)
	}
	fs.log.Debug("fat: writing", "bits", bits, "size", size, "cluster", g.clusterSize(), "clusters", g.clusters, "files", p.files, "dirs", len(p.dirs))
	return newEmitter(w, off, g, p, &fs.opts).run()
}

// MinSize returns the smallest size New(t, opts).MinSize reports.
func MinSize(t *fstree.Tree, opts Options) (int64, error) {
	return New(t, opts).MinSize()
}

// Write writes t as a filesystem of opts.Size bytes (MinSize when 0) at
// offset off of w.
func Write(w io.WriterAt, off int64, t *fstree.Tree, opts Options) error {
	fs := New(t, opts)
	size := opts.Size
	if size == 0 {
		var err error
		if size, err = fs.MinSize(); err != nil {
			return err
		}
	}
	return fs.WriteAt(w, off, size)
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// labelBytes checks a volume label and returns its 11-byte form. Labels
// take the characters of 8.3 names plus spaces; lower case is kept, as
// mkfs.fat keeps it.
func labelBytes(label string) ([11]byte, error) {
	var b [11]byte
	for i := range b {
		b[i] = ' '
	}
	if len(label) > 11 {
		return b, fmt.Errorf("fat: label %q: longer than 11 characters", label)
	}
	if strings.HasPrefix(label, " ") {
		// fsck.vfat removes such a label as invalid; mkfs.fat refuses it.
		return b, fmt.Errorf("fat: label %q: %w: a label cannot start with a space", label, errInvalidName)
	}
	for i, r := range label {
		if r >= 'a' && r <= 'z' || r == ' ' {
			b[i] = byte(r)
			continue
		}
		if c, ok := shortChar(r); !ok || c != byte(r) {
			return b, fmt.Errorf("fat: label %q: %w: %q is not allowed in labels", label, errInvalidName, r)
		}
		b[i] = byte(r)
	}
	return b, nil
}
