package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/ocidisk/ocidisk/internal/devmapper"
	"github.com/ocidisk/ocidisk/verity/layout"
)

// verityName is the device-mapper name of the verified root, as systemd
// names its own.
const verityName = "root"

// setupVerity puts a read-only dm-verity target over the root device dev,
// with the tree the command line describes, and returns the verified
// device to mount instead.
func setupVerity(cfg *config, dev string) (string, error) {
	va := cfg.verity
	hashDev := dev
	if va.hash != "" {
		var err error
		if hashDev, err = waitDev(cfg, "verity hash device", va.hash); err != nil {
			return "", err
		}
	}
	t, err := readTree(hashDev, va)
	if err != nil {
		return "", err
	}
	c, err := devmapper.Open()
	if err != nil {
		return "", fmt.Errorf("verity for root %s: %w", cfg.root, err)
	}
	defer c.Close()
	info, err := c.Create(verityName, true, devmapper.Target{
		Length: t.DataBlocks * layout.BlockSize / devmapper.SectorSize,
		Type:   "verity",
		Params: t.Table(dev, hashDev),
	})
	if err != nil {
		return "", fmt.Errorf("verity for root %s: %w", cfg.root, err)
	}
	cfg.infof("verity: %s (%s) checked against root hash %x... as %s", dev, cfg.root, va.rootHash[:8], info.Path())
	return info.Path(), nil
}

// readTree reads the tree's superblock and checks it against what the
// command line pins.
func readTree(hashDev string, va *verityArgs) (*layout.Tree, error) {
	f, err := os.Open(hashDev)
	if err != nil {
		return nil, fmt.Errorf("verity: %w", err)
	}
	defer f.Close()
	t, err := layout.ReadSuperblock(f, va.hashOffset)
	if err != nil {
		return nil, fmt.Errorf("verity: hash device %s: %w", hashDev, err)
	}
	if va.saltSet && !bytes.Equal(t.Salt, va.salt) {
		return nil, fmt.Errorf("verity: the superblock on %s at byte %d has salt %x, the command line %x", hashDev, va.hashOffset, t.Salt, va.salt)
	}
	if va.dataBlocks != 0 && t.DataBlocks != va.dataBlocks {
		return nil, fmt.Errorf("verity: the superblock on %s at byte %d covers %d data blocks, the command line %d", hashDev, va.hashOffset, t.DataBlocks, va.dataBlocks)
	}
	t.RootHash = va.rootHash
	return t, nil
}
