package fstree

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"
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

// Open opens the host file, for reading with plain system calls: a build
// opens thousands of host files (a kernel's modules, twice), and os.Open
// adds four system calls to each (the runtime poller's registration,
// which a regular file refuses, and the flags around it), more than the
// reads of a small file take.
func (f HostFile) Open() (io.ReadCloser, error) {
	for {
		fd, err := syscall.Open(string(f), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open content: %w", &os.PathError{Op: "open", Path: string(f), Err: err})
		}
		return &hostFile{fd: fd, name: string(f)}, nil
	}
}

// hostFile reads an open host file; it is also an io.ReaderAt, which
// readers of a part of a file (an ELF section) use.
type hostFile struct {
	fd   int
	off  int64
	name string
}

func (h *hostFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := h.pread(p, h.off)
	h.off += int64(n)
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	return n, err
}

// ReadAt fills p from off, as os.File.ReadAt: short only at the end.
func (h *hostFile) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := h.pread(p[done:], off+int64(done))
		done += n
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.EOF
		}
	}
	return done, nil
}

func (h *hostFile) pread(p []byte, off int64) (int, error) {
	for {
		n, err := syscall.Pread(h.fd, p, off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: h.name, Err: err}
		}
		return n, nil
	}
}

func (h *hostFile) Close() error {
	if h.fd < 0 {
		return os.ErrClosed
	}
	err := syscall.Close(h.fd)
	h.fd = -1
	if err != nil {
		return &os.PathError{Op: "close", Path: h.name, Err: err}
	}
	return nil
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
