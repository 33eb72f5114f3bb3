package testimages

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// ParseListing reads an expected listing written by hand, one entry a line
// (blank lines are skipped):
//
//	PATH TYPE MODE UID:GID [ARG] [mtime=SECONDS] [xattr:NAME="VALUE"]...
//	PATH hardlink FIRST
//
// PATH is absolute, Go-quoted when it holds spaces or odd bytes. TYPE is
// dir, file, symlink, char, block or fifo; MODE is octal with the setuid,
// setgid and sticky bits. ARG is a file's content or a symlink's target
// (Go-quoted), or a device's MAJOR,MINOR. Without mtime= the time is
// DefaultMtime. A hardlink line says PATH is the inode FIRST names, FIRST
// being its first name in walk order; it takes FIRST's metadata. The
// records come out as fstree.Manifest makes them, for comparison with
// TarListing.
func ParseListing(text string) ([]fstree.Record, error) {
	var (
		out   []fstree.Record
		links = map[int]string{} // index in out → first path
	)
	for n, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		toks, err := tokens(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		r, first, err := parseRecord(toks)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
		if first != "" {
			links[len(out)] = first
		}
		out = append(out, r)
	}
	for i, first := range links {
		j := slices.IndexFunc(out, func(r fstree.Record) bool { return r.Path == first })
		if j < 0 || links[j] != "" {
			return nil, fmt.Errorf("hardlink /%s: /%s is not a listed first name", out[i].Path, first)
		}
		r := out[j]
		r.Path, r.HardlinkTo = out[i].Path, first
		out[i] = r
	}
	return out, nil
}

// tokens splits a line at spaces, keeping Go-quoted strings (also after
// "NAME=") whole and unquoted.
func tokens(line string) ([]string, error) {
	var out []string
	s := strings.TrimSpace(line)
	for s != "" {
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			end = len(s)
		}
		q := strings.IndexByte(s, '"')
		if q >= 0 && q < end {
			qs, err := strconv.QuotedPrefix(s[q:])
			if err != nil {
				return nil, fmt.Errorf("bad quoting in %q", s)
			}
			v, _ := strconv.Unquote(qs)
			out = append(out, s[:q]+v)
			s = strings.TrimSpace(s[q+len(qs):])
			continue
		}
		out = append(out, s[:end])
		s = strings.TrimSpace(s[end:])
	}
	return out, nil
}

func parseRecord(t []string) (r fstree.Record, first string, err error) {
	if len(t) < 2 || !strings.HasPrefix(t[0], "/") {
		return r, "", fmt.Errorf("want PATH TYPE and more")
	}
	r.Path = strings.TrimPrefix(t[0], "/")
	if t[1] == "hardlink" {
		if len(t) != 3 || !strings.HasPrefix(t[2], "/") {
			return r, "", fmt.Errorf("want PATH hardlink FIRST")
		}
		return r, strings.TrimPrefix(t[2], "/"), nil
	}
	types := map[string]fstree.Type{"dir": fstree.TypeDir, "file": fstree.TypeRegular, "symlink": fstree.TypeSymlink,
		"char": fstree.TypeCharDev, "block": fstree.TypeBlockDev, "fifo": fstree.TypeFIFO}
	var ok bool
	if r.Type, ok = types[t[1]]; !ok || len(t) < 4 {
		return r, "", fmt.Errorf("want PATH TYPE MODE UID:GID, TYPE one of dir, file, symlink, char, block, fifo, hardlink")
	}
	mode, err := strconv.ParseUint(t[2], 8, 32)
	if err != nil {
		return r, "", fmt.Errorf("mode %q: %w", t[2], err)
	}
	r.Mode = uint32(mode)
	u, g, _ := strings.Cut(t[3], ":")
	uid, err1 := strconv.ParseUint(u, 10, 32)
	gid, err2 := strconv.ParseUint(g, 10, 32)
	if err1 != nil || err2 != nil {
		return r, "", fmt.Errorf("owner %q: want UID:GID", t[3])
	}
	r.UID, r.GID = uint32(uid), uint32(gid)
	rest := t[4:]
	switch r.Type {
	case fstree.TypeRegular, fstree.TypeSymlink, fstree.TypeCharDev, fstree.TypeBlockDev:
		if len(rest) == 0 {
			return r, "", fmt.Errorf("%s needs its content, target or device numbers", t[1])
		}
		arg := rest[0]
		rest = rest[1:]
		switch r.Type {
		case fstree.TypeRegular:
			sum := sha256.Sum256([]byte(arg))
			r.Size, r.SHA256 = int64(len(arg)), hex.EncodeToString(sum[:])
		case fstree.TypeSymlink:
			r.Target = arg
		default:
			if _, err := fmt.Sscanf(arg, "%d,%d", &r.Major, &r.Minor); err != nil {
				return r, "", fmt.Errorf("device %q: want MAJOR,MINOR", arg)
			}
		}
	}
	r.Mtime = time.Unix(DefaultMtime, 0)
	for _, opt := range rest {
		switch {
		case strings.HasPrefix(opt, "mtime="):
			s, err := strconv.ParseInt(strings.TrimPrefix(opt, "mtime="), 10, 64)
			if err != nil {
				return r, "", fmt.Errorf("%q: %w", opt, err)
			}
			r.Mtime = time.Unix(s, 0)
		case strings.HasPrefix(opt, "xattr:"):
			k, v, ok := strings.Cut(strings.TrimPrefix(opt, "xattr:"), "=")
			if !ok {
				return r, "", fmt.Errorf("%q: want xattr:NAME=\"VALUE\"", opt)
			}
			if r.Xattrs == nil {
				r.Xattrs = map[string]string{}
			}
			r.Xattrs[k] = v
		default:
			return r, "", fmt.Errorf("%q: not understood", opt)
		}
	}
	return r, "", nil
}

// TarListing lists a tar archive the way fstree.Manifest lists a tree: one
// record per entry in archive order, content hashed, each hardlink entry
// carrying its target's record with HardlinkTo set to the first name.
func TarListing(r io.Reader) ([]fstree.Record, error) {
	tr := tar.NewReader(r)
	var out []fstree.Record
	index := map[string]int{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		p, err := fstree.Clean(h.Name)
		if err != nil {
			return nil, err
		}
		if _, dup := index[p]; dup {
			return nil, fmt.Errorf("/%s: listed twice", p)
		}
		var rec fstree.Record
		if h.Typeflag == tar.TypeLink {
			tp, err := fstree.Clean(h.Linkname)
			if err != nil {
				return nil, err
			}
			i, ok := index[tp]
			if !ok {
				return nil, fmt.Errorf("/%s: hardlink to /%s, which comes nowhere before it", p, tp)
			}
			rec = out[i]
			if rec.HardlinkTo == "" {
				rec.HardlinkTo = tp
			}
			rec.Path = p
		} else if rec, err = tarRecord(p, h, tr); err != nil {
			return nil, err
		}
		index[p] = len(out)
		out = append(out, rec)
	}
}

func tarRecord(p string, h *tar.Header, r io.Reader) (fstree.Record, error) {
	rec := fstree.Record{Path: p, Mode: uint32(h.Mode) & fstree.ModeMask, UID: uint32(h.Uid), GID: uint32(h.Gid), Mtime: h.ModTime}
	switch h.Typeflag {
	case tar.TypeReg:
		sum := sha256.New()
		n, err := io.Copy(sum, r)
		if err != nil {
			return rec, fmt.Errorf("/%s: %w", p, err)
		}
		rec.Type, rec.Size, rec.SHA256 = fstree.TypeRegular, n, hex.EncodeToString(sum.Sum(nil))
	case tar.TypeDir:
		rec.Type = fstree.TypeDir
	case tar.TypeSymlink:
		rec.Type, rec.Target = fstree.TypeSymlink, h.Linkname
	case tar.TypeChar:
		rec.Type, rec.Major, rec.Minor = fstree.TypeCharDev, uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeBlock:
		rec.Type, rec.Major, rec.Minor = fstree.TypeBlockDev, uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeFifo:
		rec.Type = fstree.TypeFIFO
	default:
		return rec, fmt.Errorf("/%s: tar type %q", p, h.Typeflag)
	}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if rec.Xattrs == nil {
				rec.Xattrs = map[string]string{}
			}
			rec.Xattrs[name] = v
		}
	}
	return rec, nil
}

// DiffListings compares two listings by path, ignoring order, and
// describes every difference, one a line; "" when they agree.
func DiffListings(want, got []fstree.Record) string {
	wm, gm := map[string]string{}, map[string]string{}
	for _, r := range want {
		wm[r.Path] = r.String()
	}
	for _, r := range got {
		gm[r.Path] = r.String()
	}
	var b strings.Builder
	for _, r := range want {
		switch g, ok := gm[r.Path]; {
		case !ok:
			fmt.Fprintf(&b, "missing: %s\n", wm[r.Path])
		case g != wm[r.Path]:
			fmt.Fprintf(&b, "want:    %s\ngot:     %s\n", wm[r.Path], g)
		}
	}
	for _, r := range got {
		if _, ok := wm[r.Path]; !ok {
			fmt.Fprintf(&b, "extra:   %s\n", gm[r.Path])
		}
	}
	return b.String()
}
