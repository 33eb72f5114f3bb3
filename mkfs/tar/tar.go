// Package tar writes a tree as one deterministic POSIX (PAX) tar archive:
// the output of "ocidisk flatten --format tar", and a form of a tree that
// any tool can read.
//
// The same tree gives the same bytes. Entries come in walk order (parents
// first, siblings sorted by name) and the root is "./". Owners are numeric
// only (user and group names are left empty, so nothing depends on the
// build host's passwd). The second and later names of a hardlinked node are
// tar hardlinks to its first name. Xattrs are SCHILY.xattr PAX records,
// times keep their nanoseconds, and a zero time is written as the Unix
// epoch. Sockets have no tar form and are left out, as GNU tar does.
package tar

import (
	archive "archive/tar"
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// Write writes t to w. Clamp times first (fstree.Tree.ClampTimes) for
// SOURCE_DATE_EPOCH.
func Write(w io.Writer, t *fstree.Tree) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := archive.NewWriter(bw)
	first := map[*fstree.Node]string{}
	buf := make([]byte, 1<<20)
	err := t.Walk(func(p string, n *fstree.Node) error {
		if n.Type == fstree.TypeSocket {
			return nil
		}
		h := header(p, n)
		if n.Type != fstree.TypeDir && n.Links() > 1 {
			if fp, ok := first[n]; ok {
				h.Typeflag, h.Linkname, h.Size = archive.TypeLink, fp, 0
				return writeHeader(tw, p, h)
			}
			first[n] = p
		}
		if err := writeHeader(tw, p, h); err != nil {
			return err
		}
		if n.Type != fstree.TypeRegular || n.Size == 0 {
			return nil
		}
		return copyContent(tw, p, n, buf)
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	return nil
}

// header returns the tar header of node n at tree path p.
func header(p string, n *fstree.Node) *archive.Header {
	h := &archive.Header{
		Name:    p,
		Mode:    int64(n.Mode & fstree.ModeMask),
		Uid:     int(n.UID),
		Gid:     int(n.GID),
		ModTime: orEpoch(n.Mtime),
		Format:  archive.FormatPAX,
	}
	if !n.Atime().IsZero() {
		h.AccessTime = n.Atime()
	}
	if !n.Ctime().IsZero() {
		h.ChangeTime = n.Ctime()
	}
	for k, v := range n.Xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = v
	}
	switch n.Type {
	case fstree.TypeRegular:
		h.Typeflag, h.Size = archive.TypeReg, n.Size
	case fstree.TypeDir:
		h.Typeflag = archive.TypeDir
		h.Name += "/"
		if p == "" {
			h.Name = "./"
		}
	case fstree.TypeSymlink:
		h.Typeflag, h.Linkname = archive.TypeSymlink, n.Target
	case fstree.TypeCharDev:
		h.Typeflag, h.Devmajor, h.Devminor = archive.TypeChar, int64(n.Major), int64(n.Minor)
	case fstree.TypeBlockDev:
		h.Typeflag, h.Devmajor, h.Devminor = archive.TypeBlock, int64(n.Major), int64(n.Minor)
	case fstree.TypeFIFO:
		h.Typeflag = archive.TypeFifo
	}
	return h
}

func writeHeader(tw *archive.Writer, p string, h *archive.Header) error {
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("tar: /%s: %w", p, err)
	}
	return nil
}

// copyContent copies exactly n.Size bytes of content.
func copyContent(tw *archive.Writer, p string, n *fstree.Node, buf []byte) error {
	if n.Content == nil {
		return fmt.Errorf("tar: /%s: %d bytes but no content", p, n.Size)
	}
	r, err := n.Content.Open()
	if err != nil {
		return fmt.Errorf("tar: /%s: %w", p, err)
	}
	defer r.Close()
	got, err := io.CopyBuffer(tw, io.LimitReader(r, n.Size), buf)
	if err != nil {
		return fmt.Errorf("tar: /%s: %w", p, err)
	}
	if got != n.Size {
		return fmt.Errorf("tar: /%s: content has %d bytes, want %d", p, got, n.Size)
	}
	return nil
}

func orEpoch(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0)
	}
	return t
}
