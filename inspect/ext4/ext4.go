// Package ext4 reads ext2, ext3 and ext4 filesystems as an io/fs.FS (with
// fs.ReadLinkFS): what ocidisk inspect lists and reads on a root
// partition. It never writes and never replays the journal.
//
// It reads extents and the older block maps, directories linearly (an
// htree's index blocks look like empty entries to a linear reader, which
// is how the format keeps them compatible), fast and slow symlinks, device
// numbers in both encodings, and extended attributes in the inode and in
// an attribute block. FileInfo.Sys is a *rofs.Stat with owners, link
// count, device numbers and xattrs. Tree gives a directory as an
// fstree.Tree with hardlinks joined, for writing it out again (ocidisk
// commit reads a guest's overlayfs upper directory this way).
package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
)

// Incompatible features this reader understands; a filesystem with any
// other is refused rather than misread.
const (
	incompatFiletype   = 0x2
	incompatRecover    = 0x4
	incompatMetaBG     = 0x10
	incompatExtents    = 0x40
	incompat64bit      = 0x80
	incompatMMP        = 0x100
	incompatFlexBG     = 0x200
	incompatCsumSeed   = 0x2000
	incompatLargedir   = 0x4000
	incompatInlineData = 0x8000
	incompatCasefold   = 0x20000
	known              = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents | incompat64bit |
		incompatMMP | incompatFlexBG | incompatCsumSeed | incompatLargedir | incompatInlineData | incompatCasefold

	roCompatMetadataCsum = 0x400
)

// FS is an open ext2/3/4 filesystem.
type FS struct {
	r          io.ReaderAt
	size       int64
	blockSize  int64
	blocks     int64
	freeBlocks int64
	inodes     uint32
	freeInodes uint32
	ipg        uint32 // inodes per group
	bpg        uint32 // blocks per group
	firstData  int64
	inodeSize  int64
	descSize   int64
	incompat   uint32
	compat     uint32
	firstMeta  int64 // s_first_meta_bg
	uuid       [16]byte
	label      string
	root       *node
	// dirs caches directories' entries by inode: paths are resolved
	// from the root each time.
	mu   sync.Mutex
	dirs map[uint32][]dirent
}

// Open reads the filesystem of size bytes at off of r.
func Open(r io.ReaderAt, off, size int64) (*FS, error) {
	f := &FS{r: io.NewSectionReader(r, off, size), size: size, dirs: map[uint32][]dirent{}}
	sb := make([]byte, 1024)
	if _, err := f.r.ReadAt(sb, 1024); err != nil {
		return nil, fmt.Errorf("superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[56:]) != 0xef53 {
		return nil, errors.New("not an ext2/3/4 filesystem: no superblock magic")
	}
	if ro := le.Uint32(sb[100:]); ro&roCompatMetadataCsum != 0 {
		// Linux's crc32c without the final inversion.
		if got, want := ^crc32.Checksum(sb[:0x3fc], crc32.MakeTable(crc32.Castagnoli)), le.Uint32(sb[0x3fc:]); got != want {
			return nil, fmt.Errorf("bad superblock: checksum %#08x, want %#08x", got, want)
		}
	}
	logBS := le.Uint32(sb[24:])
	if logBS > 6 {
		return nil, fmt.Errorf("bad superblock: block size 2^%d KiB", logBS)
	}
	f.blockSize = 1024 << logBS
	f.inodes = le.Uint32(sb[0:])
	f.freeInodes = le.Uint32(sb[16:])
	f.firstData = int64(le.Uint32(sb[20:]))
	f.bpg = le.Uint32(sb[32:])
	f.ipg = le.Uint32(sb[40:])
	f.incompat = le.Uint32(sb[96:])
	f.compat = le.Uint32(sb[92:])
	f.blocks = int64(le.Uint32(sb[4:]))
	f.freeBlocks = int64(le.Uint32(sb[12:]))
	f.inodeSize = 128
	if le.Uint32(sb[76:]) >= 1 { // dynamic revision
		f.inodeSize = int64(le.Uint16(sb[88:]))
	}
	f.descSize = 32
	if f.incompat&incompat64bit != 0 {
		f.blocks |= int64(le.Uint32(sb[0x150:])) << 32
		f.freeBlocks |= int64(le.Uint32(sb[0x158:])) << 32
		f.descSize = int64(le.Uint16(sb[0xfe:]))
	}
	f.firstMeta = int64(le.Uint32(sb[0x104:]))
	copy(f.uuid[:], sb[104:120])
	f.label = strings.TrimRight(string(sb[120:136]), "\x00")
	switch {
	case f.incompat&^known != 0:
		return nil, fmt.Errorf("unsupported incompatible features %#x", f.incompat&^known)
	case f.bpg == 0 || f.ipg == 0 || f.inodes == 0:
		return nil, fmt.Errorf("bad superblock: %d blocks and %d inodes per group", f.bpg, f.ipg)
	case f.inodeSize < 128 || f.inodeSize > f.blockSize || f.inodeSize&(f.inodeSize-1) != 0:
		return nil, fmt.Errorf("bad superblock: inode size %d", f.inodeSize)
	case f.descSize < 32 || f.descSize > 1024:
		return nil, fmt.Errorf("bad superblock: group descriptor size %d", f.descSize)
	case f.blocks*f.blockSize > size:
		return nil, fmt.Errorf("filesystem of %d bytes does not fit its %d-byte partition: truncated image?", f.blocks*f.blockSize, size)
	}
	root, err := f.node(2, ".")
	if err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}
	if !root.info.IsDir() {
		return nil, errors.New("root inode is not a directory")
	}
	f.root = root
	return f, nil
}

// Type is "ext4", "ext3" or "ext2", by the features present.
func (f *FS) Type() string {
	switch {
	case f.incompat&(incompatExtents|incompat64bit|incompatFlexBG) != 0:
		return "ext4"
	case f.compat&0x4 != 0: // has_journal
		return "ext3"
	}
	return "ext2"
}

// Label is the volume label.
func (f *FS) Label() string { return f.label }

// UUID is the filesystem UUID as Linux spells it.
func (f *FS) UUID() string {
	u := f.uuid
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Size is the filesystem size; Free what the superblock counts as free.
func (f *FS) Size() int64 { return f.blocks * f.blockSize }
func (f *FS) Free() int64 { return f.freeBlocks * f.blockSize }

// Inodes returns the inode count and the free ones.
func (f *FS) Inodes() (total, free uint32) { return f.inodes, f.freeInodes }

// groupDesc returns group g's inode table block.
func (f *FS) inodeTable(g int64) (int64, error) {
	perBlock := f.blockSize / f.descSize
	var at int64
	if f.incompat&incompatMetaBG != 0 && g/perBlock >= f.firstMeta {
		// meta_bg: each meta group's descriptors sit in its first group,
		// after that group's superblock copy if it has one.
		first := g / perBlock * perBlock
		blk := f.firstData + first*int64(f.bpg)
		if hasSuper(first) {
			blk++
		}
		at = blk*f.blockSize + g%perBlock*f.descSize
	} else {
		at = (f.firstData+1)*f.blockSize + g*f.descSize
	}
	d := make([]byte, f.descSize)
	if _, err := f.r.ReadAt(d, at); err != nil {
		return 0, fmt.Errorf("group descriptor %d: %w", g, err)
	}
	le := binary.LittleEndian
	t := int64(le.Uint32(d[8:]))
	if f.descSize >= 64 {
		t |= int64(le.Uint32(d[0x28:])) << 32
	}
	if t == 0 || t >= f.blocks {
		return 0, fmt.Errorf("group descriptor %d: inode table at block %d, outside the filesystem", g, t)
	}
	return t, nil
}

// hasSuper reports whether group g holds a superblock copy under
// sparse_super: groups 0, 1 and powers of 3, 5 and 7.
func hasSuper(g int64) bool {
	if g <= 1 {
		return true
	}
	for _, b := range []int64{3, 5, 7} {
		p := b
		for p < g {
			p *= b
		}
		if p == g {
			return true
		}
	}
	return false
}
