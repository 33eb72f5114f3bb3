package ext4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// testTime is the Time the tests give: in the past, so e2fsck does not
// find the superblock "in the future".
var testTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// writeImage writes tr into a new file in dir and returns its path.
func writeImage(t testing.TB, dir string, tr *fstree.Tree, opts Options) (string, error) {
	t.Helper()
	if opts.Time.IsZero() {
		opts.Time = testTime
	}
	f, err := os.CreateTemp(dir, "*.ext4")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Name(), Write(f, 0, tr, opts)
}

// entry is what debugfs reports about one name.
type entry struct {
	ino                 uint32
	typ                 string
	mode                uint32
	uid, gid            uint32
	size                int64
	links               int
	atime, ctime, mtime time.Time
	major, minor        uint32
	target              string
	sha                 string
	xattrs              map[string]string
	names               map[string]uint32 // directories: ls -p
	fetch               map[string]bool   // xattrs stat did not show in full
}

// statValue decodes an xattr value as debugfs stat prints it: nothing
// for values of 40 bytes and more, hex bytes for binary values, else a
// quoted string with octal escapes. ok is false when the value must be
// fetched with ea_get (not shown, or ambiguous because it holds a
// backslash).
func statValue(s string, n int) (v string, ok bool) {
	switch {
	case n == 0:
		return "", true
	case s == "":
		return "", false
	case strings.HasPrefix(s, `"`) && strings.HasSuffix(s, `"`):
		s = s[1 : len(s)-1]
		var b []byte
		for i := 0; i < len(s); i++ {
			if s[i] != '\\' {
				b = append(b, s[i])
				continue
			}
			if i+4 > len(s) {
				return "", false
			}
			c, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
			if err != nil {
				return "", false
			}
			b = append(b, byte(c))
			i += 3
		}
		if len(b) != n || strings.Contains(string(b), "\\") {
			return "", false
		}
		return string(b), true
	}
	var b []byte
	for _, f := range strings.Fields(s) {
		c, err := strconv.ParseUint(f, 16, 8)
		if err != nil {
			return "", false
		}
		b = append(b, byte(c))
	}
	return string(b), len(b) == n
}

// debugfs runs the commands in cmds against img and returns each
// command's output, keyed by position.
func debugfs(t testing.TB, img string, cmds []string) []string {
	t.Helper()
	bin := hosttool.Require(t, "debugfs", "e2fsprogs")
	f := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", f, img)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, stderr.String())
	}
	// Each command's output follows a "debugfs: CMD" line.
	var res []string
	var cur *strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "debugfs: ") && len(res) < len(cmds) && l == "debugfs: "+cmds[len(res)] {
			if cur != nil {
				res[len(res)-1] = cur.String()
			}
			res = append(res, "")
			cur = &strings.Builder{}
			continue
		}
		if cur != nil {
			cur.WriteString(l)
			cur.WriteByte('\n')
		}
	}
	if cur != nil {
		res[len(res)-1] = cur.String()
	}
	if len(res) != len(cmds) {
		t.Fatalf("debugfs: %d outputs for %d commands\nstderr: %s", len(res), len(cmds), stderr.String())
	}
	return res
}

func quote(p string) string { return `"` + p + `"` }

var (
	reIno   = regexp.MustCompile(`(?m)^Inode: (\d+)\s+Type: (.+?)\s+Mode:\s+(\d+)`)
	reOwner = regexp.MustCompile(`(?m)^User:\s+(-?\d+)\s+Group:\s+(-?\d+).*Size: (\d+)`)
	reLinks = regexp.MustCompile(`(?m)^Links: (\d+)`)
	reTime  = regexp.MustCompile(`(?m)^\s*(a|c|m)time: 0x([0-9a-f]+):([0-9a-f]+)`)
	reDev   = regexp.MustCompile(`(?m)Device major/minor number: (\d+):(\d+)`)
	reFast  = regexp.MustCompile(`(?m)^Fast link dest: "(.*)"$`)
	reXattr = regexp.MustCompile(`(?m)^  (\S+) \((\d+)\)(?: = (.*))?$`)
)

// readBack reads every name of tr back from img with debugfs: stat, ls
// -p, dump and ea_get.
func readBack(t testing.TB, img string, tr *fstree.Tree) map[string]*entry {
	t.Helper()
	var paths []string
	var cmds []string
	var statIdx, lsIdx []int // command index per path; -1 for no ls
	_ = tr.Walk(func(p string, n *fstree.Node) error {
		paths = append(paths, "/"+p)
		statIdx = append(statIdx, len(cmds))
		cmds = append(cmds, "stat "+quote("/"+p))
		if n.Type == fstree.TypeDir {
			lsIdx = append(lsIdx, len(cmds))
			cmds = append(cmds, "ls -p "+quote("/"+p))
		} else {
			lsIdx = append(lsIdx, -1)
		}
		return nil
	})
	outs := debugfs(t, img, cmds)
	got := map[string]*entry{}
	byIno := map[uint32]*entry{}
	for i, p := range paths {
		st := outs[statIdx[i]]
		var ls string
		if lsIdx[i] >= 0 {
			ls = outs[lsIdx[i]]
		}
		m := reIno.FindStringSubmatch(st)
		if m == nil {
			t.Fatalf("%s: debugfs stat: %s", p, st)
		}
		e := &entry{typ: m[2]}
		e.ino = uint32(atoi(t, m[1]))
		e.mode = uint32(atoiBase(t, m[3], 8))
		if o := reOwner.FindStringSubmatch(st); o != nil {
			e.uid, e.gid, e.size = id32(t, o[1]), id32(t, o[2]), atoi(t, o[3])
		}
		if l := reLinks.FindStringSubmatch(st); l != nil {
			e.links = int(atoi(t, l[1]))
		}
		for _, tm := range reTime.FindAllStringSubmatch(st, -1) {
			lo, extra := atoiBase(t, tm[2], 16), atoiBase(t, tm[3], 16)
			ts := time.Unix(int64(int32(uint32(lo)))+(extra&3)<<32, extra>>2).UTC()
			switch tm[1] {
			case "a":
				e.atime = ts
			case "c":
				e.ctime = ts
			case "m":
				e.mtime = ts
			}
		}
		if d := reDev.FindStringSubmatch(st); d != nil {
			e.major, e.minor = uint32(atoi(t, d[1])), uint32(atoi(t, d[2]))
		}
		if f := reFast.FindStringSubmatch(st); f != nil {
			e.target = f[1]
		}
		if strings.Contains(st, "Extended attributes:") {
			e.xattrs = map[string]string{}
			e.fetch = map[string]bool{}
			for _, x := range reXattr.FindAllStringSubmatch(st[strings.Index(st, "Extended attributes:"):], -1) {
				v, ok := statValue(x[3], int(atoi(t, x[2])))
				e.xattrs[x[1]] = v
				if !ok || strings.HasPrefix(x[1], "system.posix_acl_") { // stat shows ACLs in their disk form
					e.fetch[x[1]] = true
				}
			}
		}
		if e.typ == "directory" {
			e.names = map[string]uint32{}
			for _, l := range strings.Split(strings.TrimSpace(ls), "\n") {
				// /ino/mode/uid/gid/name/size/
				f := strings.Split(l, "/")
				if len(f) < 8 {
					t.Fatalf("%s: ls -p line %q", p, l)
				}
				if f[1] == "0" {
					continue // the empty entry heading an htree index block
				}
				name := strings.Join(f[5:len(f)-2], "/")
				e.names[name] = uint32(atoi(t, f[1]))
			}
		}
		if first := byIno[e.ino]; first != nil {
			e = first // a hardlink: one inode, read once
		}
		byIno[e.ino] = e
		got[p] = e
	}
	// Content, slow symlink targets and xattr values, once per inode.
	dir := t.TempDir()
	cmds = cmds[:0]
	type fetch struct {
		e    *entry
		file string
		attr string // "" for content
	}
	var fetches []fetch
	inos := make([]uint32, 0, len(byIno))
	for ino := range byIno {
		inos = append(inos, ino)
	}
	slices.Sort(inos)
	for _, ino := range inos {
		e := byIno[ino]
		if e.typ == "regular" || (e.typ == "symlink" && e.target == "" && e.size > 0) {
			f := filepath.Join(dir, fmt.Sprint(ino))
			cmds = append(cmds, fmt.Sprintf("dump <%d> %s", ino, f))
			fetches = append(fetches, fetch{e, f, ""})
		}
		names := make([]string, 0, len(e.fetch))
		for k := range e.fetch {
			names = append(names, k)
		}
		slices.Sort(names)
		for i, k := range names {
			f := filepath.Join(dir, fmt.Sprintf("%d.x%d", ino, i))
			cmds = append(cmds, fmt.Sprintf("ea_get -f %s <%d> %s", f, ino, k))
			fetches = append(fetches, fetch{e, f, k})
		}
	}
	if len(cmds) > 0 {
		debugfs(t, img, cmds)
	}
	for _, f := range fetches {
		b, err := os.ReadFile(f.file)
		if err != nil && !(f.attr != "" && os.IsNotExist(err)) {
			t.Fatalf("inode %d: %v", f.e.ino, err)
		}
		switch {
		case f.attr != "":
			f.e.xattrs[f.attr] = string(b)
		case f.e.typ == "symlink":
			f.e.target = string(b)
		default:
			h := sha256.Sum256(b)
			f.e.sha = hex.EncodeToString(h[:])
		}
	}
	return got
}

// id32 parses an owner id that debugfs prints as a signed number.
func id32(t testing.TB, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return uint32(v)
}

func atoi(t testing.TB, s string) int64 { return atoiBase(t, s, 10) }

func atoiBase(t testing.TB, s string, base int) int64 {
	t.Helper()
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return int64(v)
}

var typeNames = map[fstree.Type]string{
	fstree.TypeRegular: "regular", fstree.TypeDir: "directory", fstree.TypeSymlink: "symlink",
	fstree.TypeCharDev: "character special", fstree.TypeBlockDev: "block special",
	fstree.TypeFIFO: "FIFO", fstree.TypeSocket: "socket",
}

// compareTree checks every field of every name of tr against what
// debugfs read from img, and returns the differences.
func compareTree(t testing.TB, img string, tr *fstree.Tree, opts Options) []string {
	t.Helper()
	got := readBack(t, img, tr)
	var diffs []string
	errorf := func(format string, a ...any) { diffs = append(diffs, fmt.Sprintf(format, a...)) }
	inoOf := map[*fstree.Node]uint32{}
	hashes := map[*fstree.Node]string{}
	_ = tr.Walk(func(p string, n *fstree.Node) error {
		p = "/" + p
		e := got[p]
		if ino, ok := inoOf[n]; ok && ino != e.ino {
			errorf("%s: inode %d, want %d (a hardlink)", p, e.ino, ino)
		}
		inoOf[n] = e.ino
		if e.typ != typeNames[n.Type] {
			errorf("%s: type %q, want %q", p, e.typ, typeNames[n.Type])
		}
		if e.mode != n.Mode {
			errorf("%s: mode %04o, want %04o", p, e.mode, n.Mode)
		}
		if e.uid != n.UID || e.gid != n.GID {
			errorf("%s: owner %d:%d, want %d:%d", p, e.uid, e.gid, n.UID, n.GID)
		}
		mt := n.Mtime
		if mt.IsZero() {
			mt = opts.Time
		}
		at, ct := n.Atime(), n.Ctime()
		if at.IsZero() {
			at = mt
		}
		if ct.IsZero() {
			ct = mt
		}
		if !e.mtime.Equal(mt) || !e.atime.Equal(at) || !e.ctime.Equal(ct) {
			errorf("%s: times a=%v c=%v m=%v, want a=%v c=%v m=%v", p, e.atime, e.ctime, e.mtime, at, ct, mt)
		}
		wantXattrs := n.Xattrs
		if len(wantXattrs) == 0 {
			wantXattrs = nil
		}
		if len(e.xattrs) != len(wantXattrs) {
			errorf("%s: %d xattrs, want %d", p, len(e.xattrs), len(wantXattrs))
		}
		for k, v := range wantXattrs {
			if g, ok := e.xattrs[k]; !ok || normACL(k, g) != normACL(k, v) {
				errorf("%s: xattr %s = %q, want %q", p, k, g, v)
			}
		}
		links := n.Links()
		switch n.Type {
		case fstree.TypeDir:
			links = 2
			want := map[string]bool{".": true, "..": true}
			for _, c := range n.Entries() {
				want[c.Name] = true
				if c.Node.Type == fstree.TypeDir {
					links++
				}
			}
			if p == "/" && n.Child("lost+found") == nil {
				want["lost+found"] = true
				links++
			}
			if links >= 65000 {
				links = 1
			}
			for name := range e.names {
				if !want[name] {
					errorf("%s: unexpected entry %q", p, name)
				}
			}
			for name := range want {
				if _, ok := e.names[name]; !ok {
					errorf("%s: missing entry %q", p, name)
				}
			}
		case fstree.TypeRegular:
			if e.size != n.Size {
				errorf("%s: size %d, want %d", p, e.size, n.Size)
			}
			h, ok := hashes[n]
			if !ok {
				var err error
				if h, err = fstree.HashContent(n); err != nil {
					t.Fatal(err)
				}
				hashes[n] = h
			}
			if e.sha != h {
				errorf("%s: content sha256 %.12s, want %.12s", p, e.sha, h)
			}
		case fstree.TypeSymlink:
			if e.target != n.Target || e.size != int64(len(n.Target)) {
				errorf("%s: target %q (size %d), want %q", p, e.target, e.size, n.Target)
			}
		case fstree.TypeCharDev, fstree.TypeBlockDev:
			if e.major != n.Major || e.minor != n.Minor {
				errorf("%s: device %d,%d, want %d,%d", p, e.major, e.minor, n.Major, n.Minor)
			}
		}
		if e.links != links {
			errorf("%s: %d links, want %d", p, e.links, links)
		}
		return nil
	})
	// Directory listings name the inodes stat found.
	_ = tr.Walk(func(p string, n *fstree.Node) error {
		if n.Type != fstree.TypeDir {
			return nil
		}
		dp := "/" + p
		for _, c := range n.Entries() {
			cp := dp + "/" + c.Name
			if p == "" {
				cp = "/" + c.Name
			}
			if got[dp].names[c.Name] != got[cp].ino {
				errorf("%s: ls -p says inode %d, stat says %d", cp, got[dp].names[c.Name], got[cp].ino)
			}
		}
		return nil
	})
	return diffs
}

var _ = io.EOF

// normACL clears the id field of the POSIX ACL entries that carry none
// (owner, group, mask, other): the kernel writes -1 there and debugfs 0.
func normACL(name, v string) string {
	if !strings.HasPrefix(name, "system.posix_acl_") || len(v) < 4 || (len(v)-4)%8 != 0 {
		return v
	}
	b := []byte(v)
	for p := b[4:]; len(p) >= 8; p = p[8:] {
		if tag := binary.LittleEndian.Uint16(p); tag != 0x02 && tag != 0x08 {
			copy(p[4:8], []byte{0, 0, 0, 0})
		}
	}
	return string(b)
}
