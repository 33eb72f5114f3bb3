package inspect

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/verity"
)

// Verity is a root's dm-verity hash tree, as the command line that boots
// the root names it (ocidisk.verity=ROOTHASH and its companions), and
// whether the partition's blocks match it, as the kernel would check them
// on reading every block.
type Verity struct {
	RootHash string `json:"root_hash"`
	// Verified says every block matched; Error says what did not (the
	// first corrupted block, by number), or why the tree could not be
	// read. A slot waiting for its first update is empty: neither.
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
}

// checkVerity checks p's hash tree against the command line that names p
// as its root, once: it reads the whole partition.
func (im *Image) checkVerity(p *Part) *Verity {
	if p.verity != nil || p.Cmdline == "" {
		return p.verity
	}
	root := argValue(p.Cmdline, protocol.ArgVerity)
	if root == "" {
		return nil
	}
	p.verity = &Verity{RootHash: root}
	if p.Kind == "empty" {
		return p.verity
	}
	if err := im.verifyTree(p, root); err != nil {
		p.VerityErr = err
		p.verity.Error = err.Error()
	} else {
		p.verity.Verified = true
	}
	return p.verity
}

// verifyTree finds the tree the command line describes (on the hash
// device it names, else after the filesystem) and checks the root
// partition against it and against the root hash, as the init and the
// kernel would.
func (im *Image) verifyTree(p *Part, root string) error {
	arg := func(k string) string { return argValue(p.Cmdline, k) }
	hash, err := hex.DecodeString(root)
	if err != nil || len(hash) != verity.DigestSize {
		return fmt.Errorf("%s=%s: want the root hash, %d hex digits", protocol.ArgVerity, root, 2*verity.DigestSize)
	}
	hashPart := p
	if dev := arg(protocol.ArgVerityHash); dev != "" {
		if hashPart = im.byPartUUID(dev); hashPart == nil {
			return fmt.Errorf("%s=%s: no such partition in the image", protocol.ArgVerityHash, dev)
		}
	}
	var off int64
	if s := arg(protocol.ArgVerityHashOffset); s != "" {
		if off, err = strconv.ParseInt(s, 10, 64); err != nil || off < 0 {
			return fmt.Errorf("%s=%s: want a byte offset", protocol.ArgVerityHashOffset, s)
		}
	}
	hdev := io.NewSectionReader(im.r, hashPart.Start, hashPart.Size)
	t, err := verity.ReadSuperblock(hdev, off)
	if err != nil {
		return fmt.Errorf("verity: hash tree on partition %d: %w", hashPart.Number, err)
	}
	if s := arg(protocol.ArgVeritySalt); s != "" {
		salt, _ := hex.DecodeString(s) // "-": none
		if !bytes.Equal(salt, t.Salt) {
			return fmt.Errorf("verity: the superblock at byte %d of partition %d has salt %x, the command line %s", off, hashPart.Number, t.Salt, s)
		}
	}
	if s := arg(protocol.ArgVerityDataBlocks); s != "" && s != strconv.FormatUint(t.DataBlocks, 10) {
		return fmt.Errorf("verity: the superblock at byte %d of partition %d covers %d data blocks, the command line %s", off, hashPart.Number, t.DataBlocks, s)
	}
	if end := int64(t.DataBlocks) * verity.BlockSize; end > p.Size {
		return fmt.Errorf("verity: the tree covers %d bytes, partition %d has %d", end, p.Number, p.Size)
	}
	t.RootHash = hash
	return verity.Verify(io.NewSectionReader(im.r, p.Start, p.Size), hdev, t)
}
