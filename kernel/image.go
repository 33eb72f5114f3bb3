package kernel

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/compression"
)

// arm64Magic is the magic of an arm64 Image, at byte 56 of its header.
var arm64Magic = []byte("ARM\x64")

// Image returns the kernel image as a file node. With uncompressed, a
// gzip, xz or zstd compressed image (Debian's vmlinuz is a gzip'd Image) is
// decompressed, since U-Boot's booti wants a raw arm64 Image; the content
// decompresses again each time it is opened, so nothing large is held in
// memory.
func (k *Kernel) Image(uncompressed bool) (*fstree.Node, error) {
	n, err := lookup(k.Tree, k.ImagePath)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.ImagePath, err)
	}
	if !uncompressed {
		return n, nil
	}
	open, err := decompressor(n)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.ImagePath, err)
	}
	if open == nil {
		return n, nil
	}
	r, err := open()
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.ImagePath, err)
	}
	head := make([]byte, 64)
	hn, _ := io.ReadFull(r, head)
	rest, err := io.Copy(io.Discard, r)
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("kernel %s: decompress: %w", k.ImagePath, err)
	}
	out := fstree.NewFile(n.Mode, int64(hn)+rest, fstree.Func(open))
	out.Mtime = n.Mtime
	if hn == 64 && !bytes.Equal(head[56:60], arm64Magic) && looksARM64(k) {
		return nil, fmt.Errorf("kernel %s: decompressed, but not an arm64 Image (no ARM\\x64 magic)", k.ImagePath)
	}
	return out, nil
}

// looksARM64 guesses from the version whether an arm64 Image is expected,
// so that a 32-bit zImage (which decompresses itself) is not refused.
func looksARM64(k *Kernel) bool {
	return bytes.Contains([]byte(k.Version), []byte("arm64")) || bytes.Contains([]byte(k.Version), []byte("aarch64"))
}

// decompressor returns a function that opens n's content decompressed, or
// nil when n is not compressed in a format it knows.
func decompressor(n *fstree.Node) (func() (io.ReadCloser, error), error) {
	r, err := n.Content.Open()
	if err != nil {
		return nil, err
	}
	magic := make([]byte, compression.MagicLen)
	m, _ := io.ReadFull(r, magic)
	r.Close()
	format := compression.Sniff(magic[:m])
	if format == compression.None {
		return nil, nil
	}
	return func() (io.ReadCloser, error) {
		raw, err := n.Content.Open()
		if err != nil {
			return nil, err
		}
		d, err := compression.NewReader(raw, format, compression.Options{})
		if err != nil {
			raw.Close()
			return nil, err
		}
		return &stacked{d, raw}, nil
	}, nil
}

// stacked closes a decompressor and the reader under it.
type stacked struct {
	io.ReadCloser
	under io.Closer
}

func (s *stacked) Close() error {
	err := s.ReadCloser.Close()
	if err2 := s.under.Close(); err == nil {
		err = err2
	}
	return err
}
