package fstree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"time"
)

// Fingerprint hashes every entry as a filesystem writer would store it,
// with every time later than limit taken as limit (the SOURCE_DATE_EPOCH
// clamp; a zero limit clamps nothing): path, type, mode, owner, size,
// times, symlink target, device numbers, xattrs and which names share a
// node, and with content, what regular files hold. A build identifies a
// host directory by it: by what the directory puts in the image, so that
// touching files, whose mtimes clamp to the same time, changes no
// identifier derived from it. Content costs reading every file (a
// kernel's modules directory is hundreds of MiB, nearly half a warm
// build): without it, files of the same size and metadata but other
// bytes give the same fingerprint.
func (t *Tree) Fingerprint(limit time.Time, content bool) (string, error) {
	h := sha256.New()
	clamp := func(tm time.Time) int64 {
		if !limit.IsZero() && tm.After(limit) {
			tm = limit
		}
		if tm.IsZero() {
			return 0
		}
		return tm.UnixNano()
	}
	first := map[*Node]string{}
	err := t.Walk(func(p string, n *Node) error {
		if fp, ok := first[n]; ok && n.Type != TypeDir {
			fmt.Fprintf(h, "%q link %q\n", p, fp)
			return nil
		}
		first[n] = p
		fmt.Fprintf(h, "%q %d %o %d:%d %d %q %d,%d %d %d %d", p, n.Type, n.Mode, n.UID, n.GID, n.Size, n.Target,
			n.Major, n.Minor, clamp(n.Mtime), clamp(n.Atime()), clamp(n.Ctime()))
		keys := make([]string, 0, len(n.Xattrs))
		for k := range n.Xattrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(h, " %q=%q", k, n.Xattrs[k])
		}
		if content && n.Type == TypeRegular && n.Size > 0 {
			sum, err := contentHash(n)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			fmt.Fprintf(h, " %x", sum)
		}
		h.Write([]byte{'\n'})
		return nil
	})
	if err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// contentHash is the SHA-256 of a regular file's content, which must be
// as long as the node says.
func contentHash(n *Node) ([]byte, error) {
	if n.Content == nil {
		return nil, fmt.Errorf("no content for %d bytes", n.Size)
	}
	r, err := n.Content.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := sha256.New()
	got, err := io.Copy(h, r)
	if err != nil {
		return nil, err
	}
	if got != n.Size {
		return nil, fmt.Errorf("%d bytes of content, %d expected", got, n.Size)
	}
	return h.Sum(nil), nil
}
