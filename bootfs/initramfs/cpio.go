package initramfs

import (
	"fmt"
	"io"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/u-root/u-root/pkg/cpio"
)

// WriteCpio writes t as a newc cpio archive, the format the kernel unpacks
// into its rootfs: entries in walk order (parents first, names sorted),
// each node's own mode, owner and mtime, inode numbers counted from 1 and
// shared by hardlinks, and the trailer.
func WriteCpio(w io.Writer, t *fstree.Tree) error {
	rw := cpio.Newc.Writer(w)
	inos := map[*fstree.Node]uint64{}
	err := t.Walk(func(p string, n *fstree.Node) error {
		if p == "" {
			return nil
		}
		ino, seen := inos[n]
		if !seen {
			ino = uint64(len(inos) + 1)
			inos[n] = ino
		}
		info := cpio.Info{
			Ino: ino, Mode: uint64(n.UnixMode()), UID: uint64(n.UID), GID: uint64(n.GID),
			NLink: uint64(max(n.Links(), 1)), MTime: uint64(max(n.Mtime.Unix(), 0)), Name: p,
		}
		rec := cpio.Record{Info: info}
		switch n.Type {
		case fstree.TypeDir:
			rec.NLink = 2
		case fstree.TypeRegular:
			// A hardlink's content goes with its last name in newc; the
			// kernel links earlier names to it. Simpler and as valid: give
			// the content with the first name and none with the others.
			if !seen && n.Size > 0 {
				rec.FileSize = uint64(n.Size)
				rec.ReaderAt = &seqReaderAt{c: n.Content}
			}
		case fstree.TypeSymlink:
			rec.FileSize = uint64(len(n.Target))
			rec.ReaderAt = stringReaderAt(n.Target)
		case fstree.TypeCharDev, fstree.TypeBlockDev:
			rec.Rmajor, rec.Rminor = uint64(n.Major), uint64(n.Minor)
		}
		if err := rw.WriteRecord(rec); err != nil {
			return fmt.Errorf("cpio: %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return cpio.WriteTrailer(rw)
}

// seqReaderAt serves the sequential ReadAt calls the cpio writer makes
// from a content stream, opened on the first call and closed by the
// writer.
type seqReaderAt struct {
	c   fstree.Content
	r   io.ReadCloser
	pos int64
}

func (s *seqReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if s.r == nil {
		r, err := s.c.Open()
		if err != nil {
			return 0, err
		}
		s.r = r
	}
	if off != s.pos {
		return 0, fmt.Errorf("content read out of order (at %d, want %d)", off, s.pos)
	}
	n, err := io.ReadFull(s.r, p)
	s.pos += int64(n)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

func (s *seqReaderAt) Close() error {
	if s.r == nil {
		return nil
	}
	return s.r.Close()
}

type stringReaderAt string

func (s stringReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(s)) {
		return 0, io.EOF
	}
	n := copy(p, s[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
