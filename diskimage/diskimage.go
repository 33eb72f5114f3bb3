// Package diskimage lays out a partitioned disk image (MBR or GPT), has
// each partition's filesystem write itself into place, and produces the
// image file sparse, with a .bmap made from the record of what was written
// and, if asked, a compressed copy.
//
// Identifiers (MBR disk signature, GPT disk and partition GUIDs) derive
// from Layout.Seed and are known before anything is sized or written:
// a boot partition's kernel command line names the root partition by
// PARTUUID.
//
// diskimage knows filesystems only through the Filesystem interface; it
// never imports a writer.
package diskimage

import (
	"io"
)

// Filesystem is what a partition's content offers: mkfs/fat's and
// mkfs/ext4's FS, or Raw bytes.
type Filesystem interface {
	// MinSize is the size an automatic partition gets: the content plus
	// the writer's headroom.
	MinSize() (int64, error)
	// WriteAt writes the filesystem, exactly size bytes, at off of w.
	WriteAt(w io.WriterAt, off, size int64) error
}

// ZeroWriterAt is what writers get when the target is a fresh sparse image:
// ZeroAt records that a range must read as zeros (a FAT's free entries, the
// tail of a directory cluster) without writing it. The range then counts
// as written in the .bmap, so that a copy to a used device zeroes it too.
// Writers find it with a type assertion and write real zeros without it.
type ZeroWriterAt interface {
	io.WriterAt
	ZeroAt(off, n int64) error
}

// Table is a partition table type.
type Table string

// The partition tables diskimage writes.
const (
	MBR Table = "mbr"
	GPT Table = "gpt"
)

// Kind says what a partition holds; it picks the MBR type byte and the GPT
// type GUID.
type Kind string

// Partition kinds.
const (
	// KindFAT is a FAT partition: MBR 0x0c (FAT32 LBA) or 0x0e (FAT16
	// LBA) by the FAT type its filesystem will have, GPT Microsoft basic
	// data.
	KindFAT Kind = "fat"
	// KindESP is an EFI System partition: MBR 0xef, GPT EFI System.
	KindESP Kind = "esp"
	// KindLinux is Linux data: MBR 0x83, GPT Linux filesystem data.
	KindLinux Kind = "linux"
	// KindRootArm64 and KindRootArm are root filesystems: MBR 0x83, GPT
	// the Discoverable Partitions root types for arm64 and 32-bit arm.
	KindRootArm64 Kind = "root-arm64"
	KindRootArm   Kind = "root-arm"
)

// GPT type GUIDs.
const (
	gptEFISystem   = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	gptBasicData   = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"
	gptLinuxData   = "0fc63daf-8483-4772-8e79-3d69d8477de4"
	gptRootArm64   = "b921b045-1df0-41c3-af44-4c6f280d3fae"
	gptRootArm     = "69dad710-2ce4-4e3c-b16c-21a1d49abed3"
	mbrFAT32LBA    = 0x0c
	mbrFAT16LBA    = 0x0e
	mbrLinux       = 0x83
	mbrEFI         = 0xef
	mbrProtective  = 0xee
	gptAttrLegacyB = 1 << 2 // "legacy BIOS bootable", what U-Boot's distro boot looks for
)

// Fill as a Partition.Size gives the last partition the rest of a disk of
// fixed Layout.Size.
const Fill = -1

// Defaults for Layout.
const (
	DefaultFirstOffset = 4 << 20
	DefaultAlign       = 1 << 20
)

// Layout describes a disk image.
type Layout struct {
	Table      Table
	Partitions []Partition
	// Blobs are raw bytes at fixed offsets, such as a bootloader a SoC's
	// ROM loads from a given sector. They may not overlap the partition
	// table, a partition or each other.
	Blobs []Blob
	// FirstOffset is where the first partition starts unless it says
	// otherwise (default 4 MiB); Align is what automatic partition starts
	// and sizes are rounded up to (default 1 MiB).
	FirstOffset, Align int64
	// Size is the image size; 0 means just past the last partition (and
	// the backup GPT), rounded up to Align.
	Size int64
	// Seed determines the identifiers: the caller hashes its inputs into
	// it. Identifiers set below take precedence.
	Seed []byte
	// ID sets the MBR disk signature (8 hex digits) or the GPT disk
	// GUID.
	ID string
	// GPTEntries is the GPT's number of partition entries: 0 means 128, or
	// fewer when a blob sits where the 128-entry array would (56 entries
	// end the array at 8 KiB, where Allwinner ROMs look for U-Boot).
	GPTEntries int
}

// Partition is one partition of a Layout.
type Partition struct {
	// Name is the GPT partition name and names the partition in errors.
	Name string
	Kind Kind
	// Type overrides the type Kind gives: an MBR type byte in hex ("83")
	// or a GPT type GUID.
	Type string
	// Bootable sets the MBR active flag, or the GPT legacy BIOS bootable
	// attribute (which U-Boot's distro boot looks for).
	Bootable bool
	// Size in bytes: 0 means FS.MinSize rounded up to Layout.Align (or
	// the size of partition SameSizeAs), Fill the rest of the disk.
	Size int64
	// SameSizeAs, with Size 0, names an earlier partition whose size
	// this one takes: the second root slot of an A/B pair, left empty for
	// an update to fill, is as large as the first.
	SameSizeAs string
	// Offset is the partition's start; 0 means after the previous one,
	// aligned.
	Offset int64
	// FS writes the content; nil leaves the partition empty (unwritten).
	FS Filesystem
	// WriteAfter names a partition whose filesystem must be written
	// before this one's: content that depends on what another partition's
	// writer computes (a boot config naming the root's dm-verity root
	// hash) renders while it is written. Partitions are otherwise written
	// in their order; sizes never depend on it.
	WriteAfter string
	// GUID sets a GPT partition's GUID.
	GUID string
}

// Blob is raw content at a fixed offset of the disk.
type Blob struct {
	Name   string
	Offset int64
	Data   io.ReaderAt
	Size   int64
}
