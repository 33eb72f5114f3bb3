package squashfs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// The listing judges: unsquashfs -lln and unsquashfs -pf, read into
// fstree.Records.

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
