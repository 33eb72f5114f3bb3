package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
)

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64): grow a
// mounted ext4 to a number of blocks.
const ext4IocResizeFS = 0x40086610

// growData grows the data partition dev, mounted at mnt, and its ext4 to
// the end of its disk, once.
func growData(cfg *config, dev, mnt string) error {
	return growPartition(cfg, dev, mnt, filepath.Join(mnt, protocol.GrowMarker))
}

// growPartition grows partition dev, the last of its disk, and the ext4
// mounted read-write at mnt to the end of the disk, once (marker, on the
// grown filesystem, records it): the partition in the table on the disk
// (MBR entry, or GPT entry with the backup header and entries moved to
// the new end), then in the kernel (BLKPG, since other partitions of the
// disk are in use), then the filesystem online. It says what it did on
// the console.
func growPartition(cfg *config, dev, mnt, marker string) error {
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	name := filepath.Base(dev)
	var disk string
	var partno int
	for _, d := range blockDevs() {
		if d.name == name {
			disk, partno = d.disk, d.partno
		}
	}
	if disk == "" {
		return fmt.Errorf("%s is not a partition", dev)
	}
	f, err := os.OpenFile("/dev/"+disk, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	if err != nil {
		return fmt.Errorf("size of /dev/%s: %w", disk, err)
	}
	g, err := growLast(f, int64(size), int64(sectorSize(disk)), partno, 1<<20)
	if err != nil {
		return fmt.Errorf("/dev/%s: %w", disk, err)
	}
	if !g.alreadyAtTheEnd {
		if err := f.Sync(); err != nil {
			return err
		}
		if err := resizePartition(f, partno, g.start, g.size); err != nil {
			return fmt.Errorf("tell the kernel %s grew: %w", dev, err)
		}
	}
	oldBlocks, bsize, err := ext4Blocks(dev)
	if err != nil {
		return err
	}
	newBlocks := uint64(g.size) / bsize
	if newBlocks > oldBlocks {
		d, err := os.Open(mnt)
		if err != nil {
			return err
		}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&newBlocks)))
		d.Close()
		if errno != 0 {
			return fmt.Errorf("grow the filesystem on %s to %d blocks: %w", dev, newBlocks, errno)
		}
	}
	msg := fmt.Sprintf("grew %s (partition %d of %s, %s) from %s to %s, the end of the disk; ext4 from %d to %d blocks",
		dev, partno, disk, g.table, mib(g.old), mib(g.size), oldBlocks, max(newBlocks, oldBlocks))
	if g.table == "gpt" && g.oldBackup != g.backup {
		msg += fmt.Sprintf("; backup GPT moved from byte %d to %d", g.oldBackup, g.backup)
	}
	if g.alreadyAtTheEnd && newBlocks <= oldBlocks {
		msg = fmt.Sprintf("%s already spans %s to its end (%s)", dev, disk, mib(g.size))
	}
	cfg.infof("%s", msg)
	if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
		return err
	}
	return os.WriteFile(marker, []byte(msg+"\n"), 0o644)
}

// resizePartition tells the kernel partition partno of disk f now spans
// size bytes from start.
func resizePartition(f *os.File, partno int, start, size int64) error {
	p := unix.BlkpgPartition{Start: start, Length: size, Pno: int32(partno)}
	arg := unix.BlkpgIoctlArg{Op: unix.BLKPG_RESIZE_PARTITION, Datalen: int32(unsafe.Sizeof(p)), Data: (*byte)(unsafe.Pointer(&p))}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg)))
	if errno != 0 {
		return errno
	}
	return nil
}

// ext4Blocks reads an ext4's block count and block size from its
// superblock.
func ext4Blocks(dev string) (blocks, bsize uint64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, 0, fmt.Errorf("%s: superblock: %w", dev, err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != 0xef53 {
		return 0, 0, fmt.Errorf("%s: not ext4", dev)
	}
	blocks = uint64(le.Uint32(sb[0x04:]))
	if le.Uint32(sb[0x60:])&0x80 != 0 { // 64bit
		blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	return blocks, 1024 << le.Uint32(sb[0x18:]), nil
}

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
