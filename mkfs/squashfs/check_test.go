package squashfs

import (
	"bufio"
	"bytes"
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
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// The judges: what unsquashfs (squashfs-tools) reads back from an image,
// as fstree.Records to compare with fstree.Manifest of the tree written.
// -lln lists names, types, modes, owners, sizes, targets and mtimes to
// the minute; -pf describes every inode exactly (mtimes in seconds,
// hardlinks, device numbers) with all file content; extracting with -d,
// as root, gives real files with their xattrs, device nodes and hardlink
// counts.

// testTime is the Time the tests give.
var testTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// writeImage writes tr into a new file in dir and returns its path.
func writeImage(t testing.TB, dir string, tr *fstree.Tree, opts Options) (string, error) {
	t.Helper()
	if opts.Time.IsZero() {
		opts.Time = testTime
	}
	f, err := os.CreateTemp(dir, "*.squashfs")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Name(), Write(f, 0, tr, opts)
}

func unsquashfs(t testing.TB) string {
	t.Helper()
	return hosttool.Require(t, "unsquashfs", "squashfs-tools")
}

// want is the manifest of tr as squashfs keeps it: mtimes in whole
// seconds (opts.Time for nodes without one), only the xattrs squashfs
// stores.
func want(t testing.TB, tr *fstree.Tree, opts Options) []fstree.Record {
	t.Helper()
	rs, err := fstree.Manifest(tr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		r := &rs[i]
		if r.Mtime.IsZero() {
			r.Mtime = opts.Time
		}
		r.Mtime = time.Unix(int64(clampTime(r.Mtime.Unix())), 0).UTC()
		xs := map[string]string{}
		for k, v := range r.Xattrs {
			for _, pfx := range xattrPrefixes {
				if strings.HasPrefix(k, pfx) && len(k) > len(pfx) {
					xs[k] = v
				}
			}
		}
		r.Xattrs = xs
	}
	return rs
}

// fields says what a judge reports; compare blanks the rest on both sides.
type fields struct {
	sha, xattrs, links bool
	mtime              time.Duration // granularity; 0 for none
	symlinkMtime       bool
}

// compare renders both sides with fstree.Record.String, in the wanted
// order, and returns the lines that differ.
func compare(wantRs, got []fstree.Record, f fields) []string {
	norm := func(r fstree.Record) string {
		if !f.sha {
			r.SHA256 = ""
		}
		if !f.xattrs || len(r.Xattrs) == 0 {
			r.Xattrs = nil
		}
		if !f.links {
			r.HardlinkTo = ""
		}
		switch {
		case f.mtime == 0, r.Type == fstree.TypeSymlink && !f.symlinkMtime:
			r.Mtime = time.Time{}
		default:
			r.Mtime = r.Mtime.Truncate(f.mtime)
		}
		return r.String()
	}
	byPath := map[string]fstree.Record{}
	for _, r := range got {
		if _, dup := byPath[r.Path]; dup {
			return []string{fmt.Sprintf("/%s listed twice", r.Path)}
		}
		byPath[r.Path] = r
	}
	var diffs []string
	for _, w := range wantRs {
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

// requireSame fails the test when compare finds differences.
func requireSame(t testing.TB, judge string, wantRs, got []fstree.Record, f fields) {
	t.Helper()
	if diffs := compare(wantRs, got, f); len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Fatalf("%s differs from the tree:\n%s", judge, strings.Join(diffs, "\n"))
	}
}

// lln matches a line of unsquashfs -lln -UTC: mode, owner, size (or a
// device's numbers), mtime to the minute, path and a symlink's target.
var lln = regexp.MustCompile(`^(\S{10}) (\d+)/(\d+) +(-?\d+, *\d+|\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) squashfs-root(/.*)?$`)

// listLLN reads img with unsquashfs -lln.
func listLLN(t testing.TB, img string) []fstree.Record {
	t.Helper()
	cmd := exec.Command(unsquashfs(t), "-lln", "-UTC", "-n", img)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("unsquashfs -lln %s: %v\n%s", img, err, stderr.String())
	}
	var rs []fstree.Record
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		m := lln.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unsquashfs -lln: unexpected line %q", l)
		}
		typ, mode, err := parsePerm(m[1])
		if err != nil {
			t.Fatalf("unsquashfs -lln: %q: %v", l, err)
		}
		r := fstree.Record{Type: typ, Mode: mode, UID: atou(t, m[2]), GID: atou(t, m[3])}
		r.Mtime, err = time.Parse("2006-01-02 15:04", m[5])
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimPrefix(m[6], "/")
		switch typ {
		case fstree.TypeRegular:
			r.Size = int64(atou64(t, m[4]))
		case fstree.TypeSymlink:
			var ok bool
			p, r.Target, ok = strings.Cut(p, " -> ")
			if !ok {
				t.Fatalf("unsquashfs -lln: symlink without target: %q", l)
			}
		case fstree.TypeCharDev, fstree.TypeBlockDev:
			// unsquashfs 4.5 prints the 32-bit device number split at
			// bit 8 (as a signed int), not major and minor.
			hi, lo, _ := strings.Cut(m[4], ",")
			h, err := strconv.ParseInt(hi, 10, 32)
			if err != nil {
				t.Fatalf("unsquashfs -lln: %q: %v", l, err)
			}
			r.Major, r.Minor = decodeDev(uint32(int32(h))<<8 | atou(t, strings.TrimSpace(lo)))
		}
		r.Path = p
		rs = append(rs, r)
	}
	return rs
}

// decodeDev splits a 32-bit Linux device number (new_decode_dev).
func decodeDev(d uint32) (major, minor uint32) {
	return d >> 8 & 0xfff, d&0xff | d>>12&0xfff00
}

// parsePerm reads an ls-style mode string such as "drwsr-xr-t".
func parsePerm(s string) (fstree.Type, uint32, error) {
	types := map[byte]fstree.Type{'-': fstree.TypeRegular, 'd': fstree.TypeDir, 'l': fstree.TypeSymlink,
		'c': fstree.TypeCharDev, 'b': fstree.TypeBlockDev, 'p': fstree.TypeFIFO, 's': fstree.TypeSocket}
	typ, ok := types[s[0]]
	if !ok {
		return 0, 0, fmt.Errorf("unknown type %q", s[0])
	}
	var mode uint32
	for i, c := range []byte(s[1:]) {
		bit := uint32(1) << (8 - i)
		special := map[int]uint32{2: fstree.ModeSetuid, 5: fstree.ModeSetgid, 8: fstree.ModeSticky}[i]
		switch {
		case c == "rwxrwxrwx"[i]:
			mode |= bit
		case c == '-':
		case special != 0 && (c == 's' || c == 't'):
			mode |= bit | special
		case special != 0 && (c == 'S' || c == 'T'):
			mode |= special
		default:
			return 0, 0, fmt.Errorf("bad mode character %q", c)
		}
	}
	return typ, mode, nil
}

// listPF reads img with unsquashfs -pf: a pseudo file with one line per
// name (hardlinks as L lines naming the first), then all file content.
func listPF(t testing.TB, img string) []fstree.Record {
	t.Helper()
	pf := filepath.Join(t.TempDir(), "pf")
	cmd := exec.Command(unsquashfs(t), "-n", "-pf", pf, img)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs -pf %s: %v\n%s", img, err, out)
	}
	f, err := os.Open(pf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const dataMark = "# START OF DATA - DO NOT MODIFY\n#\n"
	br := bufio.NewReaderSize(f, 1<<16)
	var rs []fstree.Record
	type content struct{ off, size int64 }
	files := map[int]content{}
	var header int64
	for {
		l, err := br.ReadString('\n')
		header += int64(len(l))
		if err != nil {
			t.Fatalf("unsquashfs -pf: no data marker: %v", err)
		}
		if l == "#\n" {
			rest, _ := br.Peek(len(dataMark))
			if string(rest) != dataMark {
				t.Fatalf("unsquashfs -pf: unexpected %q", rest)
			}
			header += int64(len(dataMark))
			break
		}
		name, rest := splitEscaped(strings.TrimSuffix(l, "\n"))
		p := strings.TrimPrefix(name, "/")
		fs := strings.SplitN(rest, " ", 7)
		if len(fs) >= 2 && fs[0] == "L" {
			rs = append(rs, fstree.Record{Path: p, HardlinkTo: strings.TrimPrefix(unescape(rest[2:]), "/")})
			continue
		}
		if len(fs) < 5 {
			t.Fatalf("unsquashfs -pf: short line %q", l)
		}
		r := fstree.Record{Path: p, Mtime: time.Unix(int64(atou(t, fs[1])), 0).UTC(),
			Mode: uint32(atouBase(t, fs[2], 8)), UID: id32(t, fs[3]), GID: id32(t, fs[4])}
		switch fs[0] {
		case "D":
			r.Type = fstree.TypeDir
		case "R":
			r.Type = fstree.TypeRegular
			r.Size = int64(atou64(t, fs[5]))
			files[len(rs)] = content{int64(atou64(t, fs[6])), r.Size}
		case "S":
			r.Type = fstree.TypeSymlink
			r.Target = strings.SplitN(rest, " ", 6)[5]
		case "C", "B":
			r.Type = fstree.TypeCharDev
			if fs[0] == "B" {
				r.Type = fstree.TypeBlockDev
			}
			// Split at bit 8, as -lln does.
			h, err := strconv.ParseInt(fs[5], 10, 32)
			if err != nil {
				t.Fatalf("unsquashfs -pf: %q: %v", l, err)
			}
			r.Major, r.Minor = decodeDev(uint32(int32(h))<<8 | atou(t, fs[6]))
		case "I":
			r.Type = map[string]fstree.Type{"f": fstree.TypeFIFO, "s": fstree.TypeSocket}[fs[5]]
		default:
			t.Fatalf("unsquashfs -pf: unknown type in %q", l)
		}
		rs = append(rs, r)
	}
	for i, c := range files {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, header+c.off, c.size)); err != nil {
			t.Fatal(err)
		}
		rs[i].SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	// An L line is a name of an inode listed earlier: give it that
	// inode's record.
	byPath := map[string]int{}
	for i := range rs {
		if rs[i].HardlinkTo == "" {
			byPath[rs[i].Path] = i
			continue
		}
		j, ok := byPath[rs[i].HardlinkTo]
		if !ok {
			t.Fatalf("unsquashfs -pf: %s: hardlink to unknown %s", rs[i].Path, rs[i].HardlinkTo)
		}
		r := rs[j]
		r.Path, r.HardlinkTo = rs[i].Path, rs[i].HardlinkTo
		rs[i] = r
	}
	return rs
}

// splitEscaped splits a pseudo file line at the first space that no
// backslash escapes, and unescapes the name before it.
func splitEscaped(l string) (name, rest string) {
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		switch {
		case l[i] == '\\' && i+1 < len(l):
			i++
			b.WriteByte(l[i])
		case l[i] == ' ':
			return b.String(), l[i+1:]
		default:
			b.WriteByte(l[i])
		}
	}
	return b.String(), ""
}

func unescape(s string) string { n, _ := splitEscaped(s + " "); return n }

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

func atou(t testing.TB, s string) uint32 {
	t.Helper()
	return uint32(atouBase(t, s, 10))
}

// id32 reads an owner that unsquashfs -pf may print as a signed int.
func id32(t testing.TB, s string) uint32 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < -1<<31 || n >= 1<<32 {
		t.Fatalf("not an id: %q", s)
	}
	return uint32(n)
}

func atou64(t testing.TB, s string) uint64 {
	t.Helper()
	return atouBase(t, s, 10)
}

func atouBase(t testing.TB, s string, base int) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}
