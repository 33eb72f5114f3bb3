package squashfs

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
