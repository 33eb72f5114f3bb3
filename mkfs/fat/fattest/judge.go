package fattest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// Fsck runs `fsck.vfat -n` on the filesystem of size bytes at offset off
// of image and fails t on any complaint: a non-zero exit or any line but
// the banner and the summary.
func Fsck(t testing.TB, image string, off, size int64) {
	t.Helper()
	fsck := hosttool.Require(t, "fsck.vfat", "dosfstools")
	path := image
	if off != 0 || fileSize(t, image) != size {
		path = hosttool.Partition(t, image, off, size)
	}
	out, err := exec.Command(fsck, "-n", path).CombinedOutput()
	var extra []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "fsck.fat ") && !strings.HasPrefix(l, path+": ") {
			extra = append(extra, l)
		}
	}
	if err != nil || len(extra) > 0 {
		t.Fatalf("fsck.vfat -n %s (offset %d): %v\n%s", image, off, err, out)
	}
}

// FsckOutput runs `fsck.vfat -n -v` and returns its output, for tests that
// look at what fsck reports about the boot sector.
func FsckOutput(t testing.TB, image string, off, size int64) string {
	t.Helper()
	fsck := hosttool.Require(t, "fsck.vfat", "dosfstools")
	path := image
	if off != 0 || fileSize(t, image) != size {
		path = hosttool.Partition(t, image, off, size)
	}
	out, err := exec.Command(fsck, "-n", "-v", path).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.vfat -n -v %s: %v\n%s", image, err, out)
	}
	return string(out)
}

func fileSize(t testing.TB, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// mtools returns a command running an mtools program with a clean
// environment: UTC times, UTF-8 names, no user configuration.
func mtools(t testing.TB, prog string, args ...string) *exec.Cmd {
	t.Helper()
	p := hosttool.Require(t, prog, "mtools")
	cmd := exec.Command(p, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null",
		"LC_ALL=C.UTF-8", "TZ=UTC", "HOME=" + t.TempDir()}
	return cmd
}

// Mdir returns `mdir -a` of directory dir ("::/..." form) of the
// filesystem at off: short names and long names as mtools sees them.
func Mdir(t testing.TB, image string, off int64, dir string) string {
	t.Helper()
	out, err := mtools(t, "mdir", "-a", "-i", fmt.Sprintf("%s@@%d", image, off), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mdir %s: %v\n%s", dir, err, out)
	}
	return string(out)
}

// Record is what a file in a FAT image is checked for.
type Record struct {
	Dir    bool
	Size   int64
	SHA256 string
	Mtime  time.Time
}

func (r Record) String() string {
	if r.Dir {
		return fmt.Sprintf("dir mtime=%s", r.Mtime.Format(time.DateTime))
	}
	return fmt.Sprintf("file size=%d sha256=%.16s mtime=%s", r.Size, r.SHA256, r.Mtime.Format(time.DateTime))
}

// Want returns what the FAT image of tree should hold: every name, with
// times as FAT keeps them (clamped by limit, missing ones as limit or the
// FAT epoch, limited to 1980-2107, in two-second steps).
func Want(t testing.TB, tree *fstree.Tree, limit time.Time) map[string]Record {
	t.Helper()
	rs, err := fstree.Manifest(tree)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Record{}
	for _, r := range rs {
		if r.Path == "" {
			continue
		}
		want[r.Path] = Record{Dir: r.Type == fstree.TypeDir, Size: r.Size, SHA256: r.SHA256, Mtime: FATTime(r.Mtime, limit)}
	}
	return want
}

// FATTime is the time a FAT entry shows for mtime.
func FATTime(mtime, limit time.Time) time.Time {
	switch {
	case mtime.IsZero() && limit.IsZero():
		mtime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	case mtime.IsZero(), !limit.IsZero() && mtime.After(limit):
		mtime = limit
	}
	mtime = mtime.UTC()
	lo := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	if mtime.Before(lo) {
		return lo
	}
	if mtime.After(hi) {
		return hi
	}
	s := mtime.Unix()
	return time.Unix(s-s%2, 0).UTC()
}

// ReadBack copies every file out of the filesystem at off with
// `mcopy -s -m` and returns what it found. Directory times are not
// reported: mcopy sets them before filling the directories.
func ReadBack(t testing.TB, image string, off int64) map[string]Record {
	t.Helper()
	dest := t.TempDir()
	out, err := mtools(t, "mcopy", "-s", "-m", "-n", "-i", fmt.Sprintf("%s@@%d", image, off), "::/", dest+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("mcopy -s %s: %v\n%s", image, err, out)
	}
	got := map[string]Record{}
	err = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dest {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			got[rel] = Record{Dir: true}
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		got[rel] = Record{Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Mtime: info.ModTime().UTC()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Compare reads the filesystem at off back with mtools and fails t unless
// it holds exactly tree: the same names, types, sizes, bytes and file times.
func Compare(t testing.TB, image string, off int64, tree *fstree.Tree, limit time.Time) {
	t.Helper()
	want := Want(t, tree, limit)
	got := ReadBack(t, image, off)
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		if w.Dir {
			w.Mtime = time.Time{}
		}
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %q: want %v", p, w))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%q: got %v, want %v", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %q: %v", p, g))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Fatalf("%s (offset %d) read back with mcopy differs from the tree:\n%s", image, off, strings.Join(diffs, "\n"))
	}
}
