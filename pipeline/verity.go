package pipeline

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/outfile"
	"github.com/ocidisk/ocidisk/verity"
)

// Verity describes the root's dm-verity hash tree (Config.Verity).
type Verity struct {
	// RootHash is the root's root hash (slot A's, with slots), in hex.
	RootHash string
	// HashOffset is where the tree's superblock is on the root
	// partition, after the filesystem; DataBlocks is the number of 4 KiB
	// blocks it covers, and Salt its salt in hex.
	HashOffset int64
	DataBlocks uint64
	Salt       string
	// Args are the kernel arguments naming the tree, as the root's
	// command line carries them.
	Args string
	// ArgsPath is the file holding Args beside the slot image
	// (SlotImage + ".verity"), "" without a slot image: an update writes
	// them into the command line of the slot it fills.
	ArgsPath string
}

// verityRoot is the root filesystem with its dm-verity hash tree after
// it, in the same partition. Its data area, the part the tree covers, is
// sized before anything is written, so that the boot configs can say
// where the tree is; the root hash is known once the root is written,
// when the configs that name it are written after it (bootfs.Verity).
type verityRoot struct {
	fs   diskimage.Filesystem
	data int64 // bytes of the data area, from the partition's start
	salt []byte
	tree *verity.Tree // the last write's
	// boot is the tree as the boot configs describe it.
	boot *bootfs.Verity
}

// newVerityRoot wraps the root filesystem fs of the root partition p. A
// partition of a given size gets the largest data area that leaves room
// for its tree; an automatic one the filesystem's own size.
func newVerityRoot(p *boards.LaidPartition, fs diskimage.Filesystem, salt []byte) (*verityRoot, error) {
	v := &verityRoot{fs: fs, salt: salt}
	if p.Size > 0 {
		if v.data = dataArea(int64(p.Size)); v.data <= 0 {
			return nil, fmt.Errorf("partition %s: %d bytes leave no room for a filesystem and its hash tree", p.Name, p.Size)
		}
	} else {
		n, err := fs.MinSize()
		if err != nil {
			return nil, fmt.Errorf("partition %s: %w", p.Name, err)
		}
		v.data = (n + verity.BlockSize - 1) / verity.BlockSize * verity.BlockSize
	}
	// Only the root the build writes has a tree: another slot, empty
	// until an update fills it, gets a root hash of zeros, which no tree
	// has, so that it cannot boot until the update names its own.
	slot := p.Slot
	v.boot = &bootfs.Verity{
		HashOffset: v.data, DataBlocks: uint64(v.data / verity.BlockSize), Salt: salt,
		RootHash: func(s string) ([]byte, error) {
			if s != slot {
				return make([]byte, verity.DigestSize), nil
			}
			return v.rootHash()
		},
	}
	return v, nil
}

// dataArea is the largest data area, whole blocks, that a partition of
// size bytes holds together with its hash tree.
func dataArea(size int64) int64 {
	// The tree takes a little over 1/128 of the data: start below the
	// answer and step up.
	d := max(size/129/verity.BlockSize*verity.BlockSize-verity.BlockSize, 0)
	for d+verity.BlockSize+verity.Size(d+verity.BlockSize) <= size {
		d += verity.BlockSize
	}
	return d
}

func (v *verityRoot) MinSize() (int64, error) { return v.data + verity.Size(v.data), nil }

// WriteAt writes the filesystem through a verity.Writer, which hashes its
// blocks as they are written, then the tree and its superblock right
// after the data area.
func (v *verityRoot) WriteAt(w io.WriterAt, off, size int64) error {
	if need := v.data + verity.Size(v.data); need > size {
		return fmt.Errorf("verity: the filesystem and its hash tree need %d bytes, the partition is %d", need, size)
	}
	vw, err := verity.NewWriter(w, off, v.data, verity.Options{Salt: v.salt})
	if err != nil {
		return err
	}
	if err := v.fs.WriteAt(vw, off, v.data); err != nil {
		return err
	}
	// Blocks written in pieces are read back from the image.
	r, _ := w.(io.ReaderAt)
	t, err := vw.Finish(r, w, off+v.data)
	if err != nil {
		return err
	}
	v.tree = t
	return nil
}

// rootHash is the root hash of what was written last.
func (v *verityRoot) rootHash() ([]byte, error) {
	if v.tree == nil {
		return nil, errors.New("the root partition is not written yet")
	}
	return v.tree.RootHash, nil
}

// result describes the tree written, and writes its arguments beside the
// slot image when there is one.
func (v *verityRoot) result(slotImage string) (*Verity, error) {
	b := v.boot
	root, err := v.rootHash()
	if err != nil {
		return nil, err
	}
	out := &Verity{RootHash: fmt.Sprintf("%x", root), HashOffset: b.HashOffset, DataBlocks: b.DataBlocks,
		Salt: fmt.Sprintf("%x", b.Salt), Args: strings.Join(b.Args(root), " ")}
	if slotImage == "" {
		return out, nil
	}
	f, err := outfile.Create(slotImage + ".verity")
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	if _, err := fmt.Fprintln(f, out.Args); err != nil {
		return nil, fmt.Errorf("output %s: %w", f.Path(), err)
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	out.ArgsPath = f.Path()
	return out, nil
}
