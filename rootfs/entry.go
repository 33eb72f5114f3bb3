package rootfs

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"math"
	"path"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// entryKind says what a layer entry does to the tree.
type entryKind uint8

const (
	kindNode     entryKind = iota // puts a file, directory, symlink, device or FIFO
	kindLink                      // puts a hardlink to link
	kindWhiteout                  // hides path in the lower layers
	kindOpaque                    // hides the lower entries of directory path
	kindSkip                      // aufs metadata (.wh..wh.*): nothing
)

// entry is one tar entry of a layer, read into what the tree needs.
type entry struct {
	path string // cleaned, "" is the root
	kind entryKind
	node *fstree.Node // kindNode
	link string       // kindLink: the cleaned target
}

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// readEntries reads the headers of a layer tar and hands each entry to fn,
// in stream order. File content is not read: each regular file refers to
// its bytes in sr. With nodes false, entries that put something (kindNode)
// come without their node, which is not built: a pass that looks for
// whiteouts only. It returns the number of entries.
func readEntries(ctx context.Context, digest string, sr *io.SectionReader, nodes bool, fn func(entry) error) (int, error) {
	bs := &bufSeeker{r: sr, size: sr.Size(), buf: make([]byte, 64<<10)}
	tr := tar.NewReader(bs)
	var (
		prev string
		secs sections
	)
	for i := 0; ; i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		h, err := tr.Next()
		if err == io.EOF {
			return i, nil
		}
		if err != nil {
			if i == 0 {
				return 0, fmt.Errorf("layer %s: not a tar archive: %w", digest, err)
			}
			return 0, fmt.Errorf("layer %s: after %s: %w", digest, prev, err)
		}
		prev = h.Name
		e, err := toEntry(h, sr, &secs, bs.pos, i, nodes)
		if err != nil {
			return 0, fmt.Errorf("layer %s: %w", digest, err)
		}
		if err := fn(e); err != nil {
			return 0, err
		}
	}
}

// toEntry converts a header whose content starts at off in sr. ordinal
// counts the entries before it, for sparse files. With nodes false, an entry
// that puts a node comes without it.
func toEntry(h *tar.Header, sr *io.SectionReader, secs *sections, off int64, ordinal int, nodes bool) (entry, error) {
	p, err := fstree.Clean(h.Name)
	if err != nil {
		return entry{}, err
	}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if base == opaqueMarker {
		return entry{path: dir, kind: kindOpaque}, nil
	}
	if strings.HasPrefix(p, whiteoutPrefix+whiteoutPrefix) || strings.Contains(p, "/"+whiteoutPrefix+whiteoutPrefix) {
		// aufs keeps its own metadata in .wh..wh.* names (.wh..wh.plnk/,
		// .wh..wh.aufs): not part of the image.
		return entry{path: p, kind: kindSkip}, nil
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		switch hidden := base[len(whiteoutPrefix):]; hidden {
		case "", ".", "..":
			return entry{}, fmt.Errorf("%q: not a valid whiteout", h.Name)
		default:
			return entry{path: path.Join(dir, hidden), kind: kindWhiteout}, nil
		}
	}
	// Owners are 32-bit on Linux: a PAX record may say more, which must
	// not wrap (2^32 would become 0, a setuid file setuid root). GNU tar
	// refuses such archives too.
	for _, id := range []struct {
		name string
		v    int
	}{{"uid", h.Uid}, {"gid", h.Gid}} {
		if id.v < 0 || int64(id.v) > math.MaxUint32 {
			return entry{}, fmt.Errorf("%q: %s %d is outside 0..%d", h.Name, id.name, id.v, uint32(math.MaxUint32))
		}
	}
	if !isSparse(h) && (h.Size < 0 || h.Size > sr.Size()-off) {
		return entry{}, fmt.Errorf("%q: size %d runs past the end of the layer (%d bytes)", h.Name, h.Size, sr.Size())
	}
	if !nodes && h.Typeflag != tar.TypeLink {
		return entry{path: p, kind: kindNode}, nil
	}
	mode := uint32(h.Mode) & fstree.ModeMask
	var n *fstree.Node
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse: // the reader turns the old TypeRegA into TypeReg
		var c fstree.Content
		switch {
		case h.Size == 0:
		case isSparse(h):
			c = sparseContent(sr, ordinal)
		default:
			c = secs.new(section{sr, off, h.Size})
		}
		n = fstree.NewFile(mode, h.Size, c)
	case tar.TypeDir:
		n = fstree.NewDir(mode)
	case tar.TypeSymlink:
		n = fstree.NewSymlink(h.Linkname)
		n.Mode = mode
	case tar.TypeChar:
		n = fstree.NewDevice(fstree.TypeCharDev, mode, uint32(h.Devmajor), uint32(h.Devminor))
	case tar.TypeBlock:
		n = fstree.NewDevice(fstree.TypeBlockDev, mode, uint32(h.Devmajor), uint32(h.Devminor))
	case tar.TypeFifo:
		n = fstree.NewDevice(fstree.TypeFIFO, mode, 0, 0)
	case tar.TypeLink:
		target, err := fstree.Clean(h.Linkname)
		if err != nil {
			return entry{}, fmt.Errorf("hardlink %q: target %w", h.Name, err)
		}
		return entry{path: p, kind: kindLink, link: target}, nil
	default:
		return entry{}, fmt.Errorf("%q: unsupported tar entry type %q", h.Name, h.Typeflag)
	}
	n.UID, n.GID = uint32(h.Uid), uint32(h.Gid)
	n.Mtime = h.ModTime
	n.SetTimes(h.AccessTime, h.ChangeTime)
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if n.Xattrs == nil {
				n.Xattrs = map[string]string{}
			}
			n.Xattrs[name] = v
		}
	}
	return entry{path: p, kind: kindNode, node: n}, nil
}

// section is a file's bytes in a layer tar, as fstree.Section is, in 24
// bytes rather than 32 (the layer's reader is one concrete type) and handed
// out from chunks rather than allocated one by one: a file of a
// million-entry root costs its section and nothing else.
type section struct {
	sr     *io.SectionReader
	off, n int64
}

// Open returns a reader over the section.
func (s *section) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(s.sr, s.off, s.n)), nil
}

// ReaderAt returns the layer and the section's offset in it.
func (s *section) ReaderAt() (io.ReaderAt, int64, error) { return s.sr, s.off, nil }

// sections hands out sections from chunks of 1024.
type sections struct{ chunk []section }

func (a *sections) new(s section) *section {
	if len(a.chunk) == cap(a.chunk) {
		a.chunk = make([]section, 0, 1024)
	}
	a.chunk = append(a.chunk, s)
	return &a.chunk[len(a.chunk)-1]
}

// isSparse reports a GNU sparse file (old GNU format or PAX 0.x/1.0),
// whose bytes in the archive are not the file's bytes.
func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// sparseContent reads a sparse file through archive/tar, which fills the
// holes: it finds the entry again by its ordinal. That costs a pass over
// the headers before it, acceptable for files no container tool writes.
func sparseContent(sr *io.SectionReader, ordinal int) fstree.Content {
	return fstree.Func(func() (io.ReadCloser, error) {
		tr := tar.NewReader(&bufSeeker{r: sr, size: sr.Size(), buf: make([]byte, 64<<10)})
		for i := 0; ; i++ {
			if _, err := tr.Next(); err != nil {
				return nil, fmt.Errorf("sparse file: %w", err)
			}
			if i == ordinal {
				return io.NopCloser(tr), nil
			}
		}
	})
}

// bufSeeker reads a ReaderAt through a buffer and keeps its position, so
// that after archive/tar's Next the position is where the content begins.
// archive/tar reads headers in 512-byte blocks and skips content with Seek:
// the buffer turns the many small reads of a layer of small files into few.
type bufSeeker struct {
	r          io.ReaderAt
	size, pos  int64
	buf        []byte
	start, end int64 // the range of r held in buf
}

func (b *bufSeeker) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if b.pos < b.start || b.pos >= b.end {
		n, err := b.r.ReadAt(b.buf[:min(int64(len(b.buf)), b.size-b.pos)], b.pos)
		if n == 0 {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		b.start, b.end = b.pos, b.pos+int64(n)
	}
	n := copy(p, b.buf[b.pos-b.start:b.end-b.start])
	b.pos += int64(n)
	return n, nil
}

func (b *bufSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += b.pos
	case io.SeekEnd:
		off += b.size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if off < 0 {
		// archive/tar skips an entry's content by seeking: a size that
		// overflows the position lands here.
		return 0, fmt.Errorf("an entry's content runs past the end of the layer (%d bytes)", b.size)
	}
	b.pos = off
	return off, nil
}
