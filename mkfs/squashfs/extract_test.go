package squashfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// The extraction judges: unsquashfs -d as root, read back from the host
// filesystem, and rdsquashfs (squashfs-tools-ng) for what the host cannot
// show: link counts, and file capabilities on non-regular files.

// extract extracts img with unsquashfs -d as root and reads the result
// back from the host filesystem.
func extract(t testing.TB, img string, tr *fstree.Tree) []fstree.Record {
	t.Helper()
	if os.Geteuid() != 0 {
		hosttool.Missing(t, "root, to extract owners, devices and trusted.* xattrs with unsquashfs -d")
	}
	dir := filepath.Join(t.TempDir(), "x")
	cmd := exec.Command(unsquashfs(t), "-n", "-q", "-d", dir, img)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs -d %s: %v\n%s", img, err, out)
	}
	defer os.RemoveAll(dir)
	var rs []fstree.Record
	first := map[[2]uint64]string{}
	// Walk the tree's names so that the records come in its order;
	// anything extracted that the tree lacks is found by the count below.
	count := 0
	err := tr.Walk(func(p string, n *fstree.Node) error {
		count++
		r, st, err := readHost(filepath.Join(dir, p))
		if err != nil {
			return err
		}
		r.Path = p
		if _, ok := n.Xattrs[capability]; ok && n.Type != fstree.TypeRegular {
			// Linux takes file capabilities on regular files only, so
			// the extraction cannot have them: ask rdsquashfs.
			if v, ok := rdXattrs(t, img, p)[capability]; ok {
				r.Xattrs[capability] = v
			}
		}
		key := [2]uint64{st.Dev, st.Ino}
		if r.Type != fstree.TypeDir {
			if fp, ok := first[key]; ok {
				r.HardlinkTo = fp
			} else {
				first[key] = p
			}
		}
		rs = append(rs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = filepath.WalkDir(dir, func(string, fs.DirEntry, error) error { n++; return nil })
	if n != count {
		t.Fatalf("unsquashfs -d extracted %d names, the tree has %d", n, count)
	}
	return rs
}

const capability = "security.capability"

// rdXattrs reads the xattrs of path p in img with rdsquashfs -x, which
// prints a value as text, or as 0x and hex digits when it is binary.
func rdXattrs(t testing.TB, img, p string) map[string]string {
	t.Helper()
	bin := hosttool.Require(t, "rdsquashfs", "squashfs-tools-ng")
	out, err := exec.Command(bin, "-x", "/"+p, img).CombinedOutput()
	if err != nil {
		t.Fatalf("rdsquashfs -x /%s: %v\n%s", p, err, out)
	}
	xs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		k, v, _ := strings.Cut(l, "=")
		if h, ok := strings.CutPrefix(v, "0x"); ok {
			if b, err := hex.DecodeString(h); err == nil {
				v = string(b)
			}
		}
		xs[k] = v
	}
	return xs
}

func readHost(p string) (fstree.Record, *unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fstree.Record{}, nil, err
	}
	r := fstree.Record{Mode: st.Mode & fstree.ModeMask, UID: st.Uid, GID: st.Gid,
		Mtime: time.Unix(st.Mtim.Sec, 0).UTC()}
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
	xs, err := hostXattrs(p)
	if err != nil {
		return r, nil, err
	}
	r.Xattrs = xs
	return r, &st, nil
}

func hostXattrs(p string) (map[string]string, error) {
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

// linkCounts reads the link count of each path's inode with rdsquashfs
// -s (squashfs-tools-ng), which unsquashfs does not show.
func linkCounts(t testing.TB, img string, paths []string) map[string]int {
	t.Helper()
	bin := hosttool.Require(t, "rdsquashfs", "squashfs-tools-ng")
	re := regexp.MustCompile(`(?m)^Hard link count: (\d+)$`)
	out := map[string]int{}
	for _, p := range paths {
		b, err := exec.Command(bin, "-s", "/"+p, img).CombinedOutput()
		m := re.FindSubmatch(b)
		if err != nil || m == nil {
			t.Fatalf("rdsquashfs -s /%s: %v\n%s", p, err, b)
		}
		out[p] = int(atou(t, string(m[1])))
	}
	return out
}

// requireLinkCounts checks the link counts of the tree's hardlinked nodes
// (at their first name) and of its directories (two plus their
// subdirectories), at most max of each.
func requireLinkCounts(t testing.TB, img string, tr *fstree.Tree, max int) {
	t.Helper()
	wantN := map[string]int{}
	seen := map[*fstree.Node]bool{}
	dirs, links := 0, 0
	_ = tr.Walk(func(p string, n *fstree.Node) error {
		switch {
		case n.Type == fstree.TypeDir && dirs < max:
			dirs++
			subdirs := 0
			for _, e := range n.Entries() {
				if e.Node.Type == fstree.TypeDir {
					subdirs++
				}
			}
			wantN[p] = 2 + subdirs
		case n.Type != fstree.TypeDir && n.Links() > 1 && !seen[n] && links < max:
			links++
			wantN[p] = n.Links()
		}
		seen[n] = true
		return nil
	})
	paths := make([]string, 0, len(wantN))
	for p := range wantN {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	got := linkCounts(t, img, paths)
	for _, p := range paths {
		if got[p] != wantN[p] {
			t.Errorf("/%s: link count %d, want %d", p, got[p], wantN[p])
		}
	}
}
