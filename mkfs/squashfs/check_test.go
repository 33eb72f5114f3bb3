package squashfs

import (
	"os"
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
