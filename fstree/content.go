package fstree

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Content is a reference to a regular file's bytes. Open may be called more
// than once; each call yields the bytes from the start. Writers read content
// once, in the order they lay files out.
type Content interface {
	Open() (io.ReadCloser, error)
}

// ReaderAtContent is implemented by content that also offers random access;
// writers may use it to avoid a copy (e.g. to detect holes cheaply).
type ReaderAtContent interface {
	Content
	ReaderAt() (io.ReaderAt, int64, error) // the reader and the offset of byte 0
}

// Bytes is content held in memory; for small generated files (configs,
// test inputs), never for file data read from an image.
type Bytes []byte

// Open returns a reader over b.
func (b Bytes) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }

// ReaderAt returns b as an io.ReaderAt.
func (b Bytes) ReaderAt() (io.ReaderAt, int64, error) { return bytes.NewReader(b), 0, nil }

// HostFile is content read from a file on the host when opened.
type HostFile string

// Open opens the host file.
func (f HostFile) Open() (io.ReadCloser, error) {
	r, err := os.Open(string(f))
	if err != nil {
		return nil, fmt.Errorf("open content: %w", err)
	}
	return r, nil
}

// Section is content at a byte range of a random-access blob, such as an
// uncompressed layer tar in the cache.
type Section struct {
	R      io.ReaderAt
	Off, N int64
}

// Open returns a reader over the section.
func (s Section) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(s.R, s.Off, s.N)), nil
}

// ReaderAt returns the underlying blob and the section's offset in it.
func (s Section) ReaderAt() (io.ReaderAt, int64, error) { return s.R, s.Off, nil }

// Func is content produced by a function, e.g. a decompressed kernel image.
type Func func() (io.ReadCloser, error)

// Open calls f.
func (f Func) Open() (io.ReadCloser, error) { return f() }

// ReadFile reads the whole content of the regular file at p, as ReadAll;
// errors name p.
func (t *Tree) ReadFile(p string) ([]byte, error) {
	n, err := t.Lookup(p)
	if err != nil {
		return nil, err
	}
	b, err := ReadAll(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return b, nil
}

// ReadAll reads a node's whole content; for small files only (configs,
// module metadata).
func ReadAll(n *Node) ([]byte, error) {
	if n.Type != TypeRegular {
		return nil, fmt.Errorf("read content: %s is not a regular file", n.Type)
	}
	if n.Content == nil || n.Size == 0 {
		return []byte{}, nil
	}
	r, err := n.Content.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b := make([]byte, n.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read content: %w", err)
	}
	return b, nil
}
