// Command guestlist runs inside a guest (ocidisk commit's tests copy it in,
// cross-compiled) to do what a minimal root's busybox cannot: set an xattr,
// and list the root as the guest sees it, xattrs included, in a form the
// host reads back (testimages.ParseGuestListing).
//
//	guestlist setxattr PATH NAME HEXVALUE
//	guestlist list ROOT [EXCLUDE]...
//
// list prints one line per entry, parents first, names in byte order (the
// order of fstree.Tree.Walk): the ListPrefix, then a JSON object with the
// path (relative to ROOT, "" for it), type, mode, owner, size, content
// hash, symlink target, device numbers, xattrs (hex values) and the
// device and inode numbers that tell hardlinks. EXCLUDE paths (mount
// points, the tool itself) are left out with everything under them.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ListPrefix starts every line of a listing; keep in step with
// testimages.GuestListPrefix.
const ListPrefix = "ocidisk-list: "

// entry is one line of a listing.
type entry struct {
	Path   string            `json:"path"`
	Type   string            `json:"type"`
	Mode   uint32            `json:"mode"`
	UID    uint32            `json:"uid"`
	GID    uint32            `json:"gid"`
	Size   int64             `json:"size,omitempty"`
	SHA256 string            `json:"sha256,omitempty"`
	Target string            `json:"target,omitempty"`
	Major  uint32            `json:"major,omitempty"`
	Minor  uint32            `json:"minor,omitempty"`
	Xattrs map[string]string `json:"xattrs,omitempty"`
	Dev    uint64            `json:"dev"`
	Ino    uint64            `json:"ino"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "guestlist:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 4 && args[0] == "setxattr":
		v, err := hex.DecodeString(args[3])
		if err != nil {
			return err
		}
		return unix.Lsetxattr(args[1], args[2], v, 0)
	case len(args) >= 2 && args[0] == "list":
		root := filepath.Clean(args[1])
		var skip []string
		for _, e := range args[2:] {
			skip = append(skip, filepath.Clean(e))
		}
		return list(root, "", skip)
	}
	return fmt.Errorf("usage: guestlist setxattr PATH NAME HEXVALUE, or guestlist list ROOT [EXCLUDE]")
}

// list prints p (relative to root) and, for a directory, its entries.
func list(root, p string, skip []string) error {
	full := filepath.Join(root, p)
	if slices.Contains(skip, full) {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return err
	}
	e := entry{Path: p, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Dev: st.Dev, Ino: st.Ino}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = "directory"
	case unix.S_IFREG:
		e.Type, e.Size = "file", st.Size
		f, err := os.Open(full)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		e.SHA256 = hex.EncodeToString(h.Sum(nil))
	case unix.S_IFLNK:
		t, err := os.Readlink(full)
		if err != nil {
			return err
		}
		e.Type, e.Target = "symlink", t
	case unix.S_IFCHR, unix.S_IFBLK:
		e.Type = "char device"
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			e.Type = "block device"
		}
		e.Major, e.Minor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	case unix.S_IFIFO:
		e.Type = "fifo"
	case unix.S_IFSOCK:
		e.Type = "socket"
	}
	xs, err := xattrs(full)
	if err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	e.Xattrs = xs
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	fmt.Println(ListPrefix + string(b))
	if e.Type != "directory" {
		return nil
	}
	ents, err := os.ReadDir(full)
	if err != nil {
		return err
	}
	names := make([]string, len(ents))
	for i, d := range ents {
		names[i] = d.Name()
	}
	slices.Sort(names)
	for _, n := range names {
		if err := list(root, filepath.Join(p, n), skip); err != nil {
			return err
		}
	}
	return nil
}

// xattrs reads every xattr of p (not following a symlink), values in hex.
func xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err == unix.ENOTSUP {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return nil, fmt.Errorf("xattr %s: %w", name, err)
		}
		out[name] = hex.EncodeToString(v[:m])
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
