package pipeline

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/mkfs/erofs"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/mkfs/squashfs"
)

// newDisk turns layout l into a diskimage layout without filesystems yet:
// the identifiers it derives from seed are needed to render the boot
// configs first.
func newDisk(l *boards.Layout, seed []byte) *diskimage.Layout {
	d := &diskimage.Layout{
		Table:       diskimage.Table(l.Table),
		FirstOffset: int64(l.FirstOffset),
		Align:       int64(l.Alignment),
		Seed:        seed,
	}
	for _, p := range l.Partitions {
		d.Partitions = append(d.Partitions, diskimage.Partition{
			Name:       p.Name,
			Kind:       partitionKind(l.Board, p),
			Type:       p.Type,
			Bootable:   p.Bootable,
			Size:       int64(p.Size),
			SameSizeAs: p.SameSizeAs,
		})
	}
	return d
}

func partitionKind(b *boards.Board, p boards.LaidPartition) diskimage.Kind {
	switch {
	case p.ESP:
		return diskimage.KindESP
	case p.FS == boards.FAT:
		return diskimage.KindFAT
	case p.Role != boards.RoleRoot:
		return diskimage.KindLinux
	case b.Arch == "arm":
		return diskimage.KindRootArm
	}
	return diskimage.KindRootArm64
}

// fillDisk gives each partition of disk the writer of its tree: the root
// (vr when it has a hash tree), the boot partitions, the data partition.
// Slot B's root stays empty. Raw blobs come from the firmware tree.
func fillDisk(disk *diskimage.Layout, l *boards.Layout, in *inputs, boot *bootfs.Result, cfg Config, vr *verityRoot) error {
	trees := map[string]*fstree.Tree{l.Root().Name: in.root.Tree}
	for name, t := range boot.Partitions {
		trees[name] = t
	}
	if p := l.Partition(boards.RoleData); p != nil {
		trees[p.Name] = in.data
	}
	for i, p := range l.Partitions {
		if vr != nil && p.Name == l.Root().Name {
			disk.Partitions[i].FS = vr
			continue
		}
		tree := trees[p.Name]
		if tree == nil {
			continue
		}
		fs, err := filesystem(p, tree, disk.Seed, in, cfg)
		if err != nil {
			return err
		}
		disk.Partitions[i].FS = fs
		if _, ok := boot.Partitions[p.Name]; ok && vr != nil {
			// Their configs name the root hash, known once the root is
			// written.
			disk.Partitions[i].WriteAfter = l.Root().Name
		}
	}
	var err error
	disk.Blobs, err = blobs(l.Board, in.firmware, cfg.Firmware)
	return err
}

// filesystem returns the writer for partition p holding tree.
func filesystem(p boards.LaidPartition, tree *fstree.Tree, seed []byte, in *inputs, cfg Config) (diskimage.Filesystem, error) {
	pseed := append(append([]byte(nil), seed...), "partition "+p.Name...)
	progress := func(done, total int64) {
		if cfg.Progress != nil {
			cfg.Progress("write "+p.Name, done, total)
		}
	}
	switch p.FS {
	case boards.Ext4:
		return ext4.New(tree, ext4.Options{Label: p.Name, Seed: pseed, Time: in.epoch, Log: cfg.Log, Progress: progress}), nil
	case boards.FAT:
		o := fat.Options{Label: strings.ToUpper(p.Name), Seed: pseed, Time: in.epoch, Log: cfg.Log}
		if p.ESP {
			// The UEFI specification's file system for an ESP on a
			// disk is FAT32, whatever its size; FAT16 is for
			// removable media, and some firmware refuses it.
			o.Type = 32
		}
		return fat.New(tree, o), nil
	case boards.Squashfs:
		return squashfs.New(tree, squashfs.Options{
			Time: in.epoch,
			// A read-only root takes what squashfs can hold; POSIX ACLs
			// and other system.* xattrs are left out with a warning.
			DropXattrs: true,
			// An auto size compresses the tree once into a spool: put
			// it beside the output, which has room for the image.
			TempDir:  filepath.Dir(cfg.Output),
			Log:      cfg.Log,
			Progress: progress,
		}), nil
	case boards.Erofs:
		var ahead func(*fstree.Node) []byte
		if in.prehash != nil && tree == in.root.Tree {
			ahead = in.prehash.digests
		}
		return erofs.New(tree, erofs.Options{
			Label: p.Name,
			Seed:  pseed,
			Time:  in.epoch,
			// As with squashfs: xattrs EROFS cannot name are left out
			// with a warning.
			DropXattrs:   true,
			Log:          cfg.Log,
			Progress:     progress,
			BlockDigests: ahead,
		}), nil
	}
	return nil, fmt.Errorf("partition %s: no writer for filesystem %q", p.Name, p.FS)
}

// blobs reads the board's raw blobs from the firmware tree. They are
// bootloaders of a few hundred KiB, so they are read whole.
func blobs(b *boards.Board, fw *fstree.Tree, fwSpec string) ([]diskimage.Blob, error) {
	var out []diskimage.Blob
	for _, bl := range b.Blobs {
		if fw == nil {
			return nil, fieldErr("Firmware", "board %s needs %s from a firmware source", b.Name, bl.File)
		}
		n, err := fw.Lookup(bl.File)
		if err != nil || n.Type != fstree.TypeRegular {
			where := fwSpec
			if where == "" {
				where = "the root image"
			}
			return nil, fmt.Errorf("board %s: blob %s not found in %s", b.Name, bl.File, where)
		}
		data, err := fstree.ReadAll(n)
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", bl.File, err)
		}
		out = append(out, diskimage.Blob{Name: bl.File, Offset: int64(bl.Offset), Data: bytes.NewReader(data), Size: int64(len(data))})
	}
	return out, nil
}
