package fstree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Record is one line of a tree's manifest: everything a filesystem must
// preserve about an entry. Tests build records from what real tools (tar,
// debugfs, unsquashfs, mtools) report and compare them with Manifest.
type Record struct {
	Path         string // cleaned; "" is the root
	Type         Type
	Mode         uint32 // ModeMask bits
	UID, GID     uint32
	Size         int64  // regular files
	SHA256       string // regular files, hex
	Target       string // symlinks
	Major, Minor uint32 // devices
	Mtime        time.Time
	Xattrs       map[string]string
	// HardlinkTo is the first path (in walk order) naming the same node, or
	// "" when this is the first (or only) name.
	HardlinkTo string
}

// String renders r as one stable, diff-friendly line. Times are shown in
// seconds; compare finer precision separately where a format keeps it.
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %s %04o %d:%d", "/"+r.Path, r.Type, r.Mode, r.UID, r.GID)
	switch r.Type {
	case TypeRegular:
		fmt.Fprintf(&b, " size=%d sha256=%.16s", r.Size, r.SHA256)
	case TypeSymlink:
		fmt.Fprintf(&b, " -> %q", r.Target)
	case TypeCharDev, TypeBlockDev:
		fmt.Fprintf(&b, " dev=%d,%d", r.Major, r.Minor)
	}
	if !r.Mtime.IsZero() {
		fmt.Fprintf(&b, " mtime=%d", r.Mtime.Unix())
	}
	if len(r.Xattrs) > 0 {
		keys := make([]string, 0, len(r.Xattrs))
		for k := range r.Xattrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " xattr:%s=%x", k, r.Xattrs[k])
		}
	}
	if r.HardlinkTo != "" {
		fmt.Fprintf(&b, " link=%q", "/"+r.HardlinkTo)
	}
	return b.String()
}

// Manifest lists every entry of t in walk order, hashing file content
// through its references.
func Manifest(t *Tree) ([]Record, error) {
	var out []Record
	first := map[*Node]string{}
	hashes := map[*Node]string{}
	err := t.Walk(func(p string, n *Node) error {
		r := Record{Path: p, Type: n.Type, Mode: n.Mode, UID: n.UID, GID: n.GID,
			Target: n.Target, Mtime: n.Mtime, Xattrs: n.Xattrs}
		if n.Type == TypeCharDev || n.Type == TypeBlockDev {
			r.Major, r.Minor = n.Major, n.Minor
		}
		if n.Type != TypeDir {
			if fp, ok := first[n]; ok {
				r.HardlinkTo = fp
			} else {
				first[n] = p
			}
		}
		if n.Type == TypeRegular {
			r.Size = n.Size
			h, ok := hashes[n]
			if !ok {
				var err error
				if h, err = HashContent(n); err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				hashes[n] = h
			}
			r.SHA256 = h
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// HashContent returns the hex SHA-256 of a regular file's content and
// checks that it has exactly Size bytes.
func HashContent(n *Node) (string, error) {
	h := sha256.New()
	if n.Content != nil && n.Size > 0 {
		r, err := n.Content.Open()
		if err != nil {
			return "", err
		}
		defer r.Close()
		got, err := io.Copy(h, io.LimitReader(r, n.Size+1))
		if err != nil {
			return "", fmt.Errorf("read content: %w", err)
		}
		if got != n.Size {
			return "", fmt.Errorf("content has %d bytes, want %d", got, n.Size)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ManifestLines is Manifest rendered with Record.String.
func ManifestLines(t *Tree) ([]string, error) {
	rs, err := Manifest(t)
	if err != nil {
		return nil, err
	}
	lines := make([]string, len(rs))
	for i, r := range rs {
		lines[i] = r.String()
	}
	return lines, nil
}
