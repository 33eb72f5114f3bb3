package testimages

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/fstree"
)

// The judges' side of the filesystem writers' tests: a filesystem
// extracted by its own tool (unsquashfs -d, fsck.erofs --extract) or
// mounted by Linux, read back from the host as fstree.Records, and
// compared with fstree.Manifest of the tree written.

// HostEntry is one name of a host directory tree: its record, and what
// only the host's stat shows.
type HostEntry struct {
	fstree.Record
	Ino   uint64
	Nlink uint64
}

// ReadHostTree reads the entries under dir at the names of tr, in tr's walk
// order, each hardlinked name recorded as one (HardlinkTo) of the first
// name with the same inode. It fails when dir holds names tr lacks.
func ReadHostTree(dir string, tr *fstree.Tree) ([]HostEntry, error) {
	var out []HostEntry
	first := map[[2]uint64]string{}
	count := 0
	err := tr.Walk(func(p string, n *fstree.Node) error {
		count++
		r, st, err := ReadHost(filepath.Join(dir, p))
		if err != nil {
			return err
		}
		r.Path = p
		key := [2]uint64{st.Dev, st.Ino}
		if r.Type != fstree.TypeDir {
			if fp, ok := first[key]; ok {
				r.HardlinkTo = fp
			} else {
				first[key] = p
			}
		}
		out = append(out, HostEntry{Record: r, Ino: st.Ino, Nlink: uint64(st.Nlink)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := 0
	_ = filepath.WalkDir(dir, func(string, fs.DirEntry, error) error { n++; return nil })
	if n != count {
		return nil, fmt.Errorf("%s holds %d names, the tree has %d", dir, n, count)
	}
	return out, nil
}

// Records returns the records of es.
func Records(es []HostEntry) []fstree.Record {
	rs := make([]fstree.Record, len(es))
	for i, e := range es {
		rs[i] = e.Record
	}
	return rs
}

// ReadHost reads the file at p (not following a symlink) as a record,
// hashing a regular file's content, and returns its stat too.
func ReadHost(p string) (fstree.Record, *unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fstree.Record{}, nil, err
	}
	r := fstree.Record{Mode: st.Mode & fstree.ModeMask, UID: st.Uid, GID: st.Gid,
		Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC()}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		r.Type, r.Size = fstree.TypeRegular, st.Size
		f, err := os.Open(p)
		if err != nil {
			return r, nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return r, nil, err
		}
		r.SHA256 = hex.EncodeToString(h.Sum(nil))
		if int(st.Nlink) < 1 {
			return r, nil, fmt.Errorf("%s: no links", p)
		}
	case unix.S_IFDIR:
		r.Type = fstree.TypeDir
	case unix.S_IFLNK:
		r.Type = fstree.TypeSymlink
		target, err := os.Readlink(p)
		if err != nil {
			return r, nil, err
		}
		r.Target = target
	case unix.S_IFCHR, unix.S_IFBLK:
		r.Type = fstree.TypeCharDev
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			r.Type = fstree.TypeBlockDev
		}
		r.Major, r.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		r.Type = fstree.TypeFIFO
	case unix.S_IFSOCK:
		r.Type = fstree.TypeSocket
	}
	xs, err := HostXattrs(p)
	if err != nil {
		return r, nil, err
	}
	r.Xattrs = xs
	return r, &st, nil
}

// HostXattrs reads the xattrs of the file at p, not following a symlink.
func HostXattrs(p string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("%s: listxattr: %w", p, err)
	}
	xs := map[string]string{}
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			return nil, fmt.Errorf("%s: getxattr %s: %w", p, k, err)
		}
		xs[k] = string(v[:m])
	}
	return xs, nil
}

// Fields says what a judge reports; Compare blanks the rest on both sides.
type Fields struct {
	SHA, Xattrs, Links bool
	// Mtime is the granularity of the times compared; 0 for none. Below a
	// second the nanoseconds are compared too.
	Mtime        time.Duration
	SymlinkMtime bool
}

// Compare renders both sides with fstree.Record.String, in the wanted
// order, and returns the lines that differ.
func Compare(want, got []fstree.Record, f Fields) []string {
	norm := func(r fstree.Record) string {
		if !f.SHA {
			r.SHA256 = ""
		}
		if !f.Xattrs || len(r.Xattrs) == 0 {
			r.Xattrs = nil
		}
		if !f.Links {
			r.HardlinkTo = ""
		}
		switch {
		case f.Mtime == 0, r.Type == fstree.TypeSymlink && !f.SymlinkMtime:
			r.Mtime = time.Time{}
		default:
			r.Mtime = r.Mtime.Truncate(f.Mtime)
		}
		s := r.String()
		if f.Mtime > 0 && f.Mtime < time.Second && !r.Mtime.IsZero() {
			s += fmt.Sprintf(" ns=%d", r.Mtime.Nanosecond())
		}
		return s
	}
	byPath := map[string]fstree.Record{}
	for _, r := range got {
		if _, dup := byPath[r.Path]; dup {
			return []string{fmt.Sprintf("/%s listed twice", r.Path)}
		}
		byPath[r.Path] = r
	}
	var diffs []string
	for _, w := range want {
		g, ok := byPath[w.Path]
		if !ok {
			diffs = append(diffs, "missing: "+norm(w))
			continue
		}
		delete(byPath, w.Path)
		if a, b := norm(w), norm(g); a != b {
			diffs = append(diffs, "want "+a+"\n got "+b)
		}
	}
	extra := make([]string, 0, len(byPath))
	for _, g := range byPath {
		extra = append(extra, "extra: "+norm(g))
	}
	slices.Sort(extra)
	return append(diffs, extra...)
}

// RequireSame fails the test when Compare finds differences, naming the
// judge.
func RequireSame(t testing.TB, judge string, want, got []fstree.Record, f Fields) {
	t.Helper()
	if diffs := Compare(want, got, f); len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Fatalf("%s differs from the tree:\n%s", judge, strings.Join(diffs, "\n"))
	}
}
