package bootfs

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/fstree"
	vlayout "github.com/ocidisk/ocidisk/verity/layout"
)

// Verity gives the root a dm-verity hash tree after its filesystem, in
// the same partition (Options.Verity): every slot's command line carries
// the init's verity parameters, and the initramfs dm-verity's modules.
type Verity struct {
	// HashOffset is the byte offset, on the root partition, of the tree's
	// superblock: the end of the filesystem. DataBlocks is the number of
	// 4 KiB blocks the tree covers, Salt its salt (hashed in front of
	// every block). The slots of an A/B layout are the same size, so
	// their trees start at the same place.
	HashOffset int64
	DataBlocks uint64
	Salt       []byte
	// RootHash returns the root hash of the slot's root ("" without
	// slots). It is known only once the root is written, while the boot
	// configs must name it: the configs are sized with a placeholder of
	// the hash's length, and RootHash is called when they are read, by
	// the writer of their partition, which must come after the root's.
	RootHash func(slot string) ([]byte, error)
}

// Args are the init's kernel arguments for a tree with this geometry and
// rootHash: what a slot's command line carries, and what an update
// writes there for its new root.
func (v *Verity) Args(rootHash []byte) []string {
	salt := "-"
	if len(v.Salt) > 0 {
		salt = hex.EncodeToString(v.Salt)
	}
	return []string{
		protocol.ArgVerity + "=" + hex.EncodeToString(rootHash),
		protocol.ArgVerityHashOffset + "=" + strconv.FormatInt(v.HashOffset, 10),
		protocol.ArgVeritySalt + "=" + salt,
		protocol.ArgVerityDataBlocks + "=" + strconv.FormatUint(v.DataBlocks, 10),
	}
}

// rootHashes stands in for the slots' root hashes until they are known:
// the text of a config holds a placeholder per slot, as long as the hash
// in hex, that reading the config replaces. A nil *rootHashes has none.
type rootHashes struct {
	v *Verity
}

// placeholder is slot's stand-in, as long as a root hash in hex.
func (h *rootHashes) placeholder(slot string) string {
	p := "@ocidisk-verity-root-hash-of-slot-" + slot + "@"
	return p + strings.Repeat("@", 2*vlayout.DigestSize-len(p))
}

// args are slot's verity arguments, with its placeholder for the root
// hash.
func (h *rootHashes) args(slot string) []string {
	if h == nil {
		return nil
	}
	args := h.v.Args(make([]byte, vlayout.DigestSize))
	args[0] = protocol.ArgVerity + "=" + h.placeholder(slot)
	return args
}

// resolve replaces every slot's placeholder in text with its root hash.
func (h *rootHashes) resolve(text []byte, slots []string) ([]byte, error) {
	if h == nil {
		return text, nil
	}
	for _, s := range slots {
		p := []byte(h.placeholder(s))
		if !bytes.Contains(text, p) {
			continue
		}
		root, err := h.v.RootHash(s)
		if err != nil {
			return nil, fmt.Errorf("root hash of slot %q: %w", s, err)
		}
		if len(root) != vlayout.DigestSize {
			return nil, fmt.Errorf("root hash of slot %q: %d bytes, want %d", s, len(root), vlayout.DigestSize)
		}
		text = bytes.ReplaceAll(text, p, []byte(hex.EncodeToString(root)))
	}
	return text, nil
}

// deferred is a file that names root hashes not known when it was
// assembled (a config, a UKI whose .cmdline holds the command line): the
// same length once resolved, so that sizes do not change.
type deferred struct {
	src   fstree.Content
	h     *rootHashes
	slots []string
}

func (d *deferred) Open() (io.ReadCloser, error) {
	r, err := d.src.Open()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return nil, err
	}
	if b, err = d.h.resolve(b, d.slots); err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// names reports whether text holds a slot's placeholder.
func (h *rootHashes) names(text []byte, slots []string) bool {
	if h == nil {
		return false
	}
	for _, s := range slots {
		if bytes.Contains(text, []byte(h.placeholder(s))) {
			return true
		}
	}
	return false
}

// content is a config's content: its text, or a deferred one when the
// text holds a placeholder.
func (h *rootHashes) content(text []byte, slots []string) fstree.Content {
	if h.names(text, slots) {
		return &deferred{src: fstree.Bytes(text), h: h, slots: slots}
	}
	return fstree.Bytes(text)
}

// Resolve replaces the root hash placeholders in text, a command line of
// the Result, with the slots' root hashes, once the roots are written.
func (r *Result) Resolve(text string) (string, error) {
	b, err := r.hashes.resolve([]byte(text), r.slots)
	return string(b), err
}
