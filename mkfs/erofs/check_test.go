package erofs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages"
)

// The judges: fsck.erofs (erofs-utils) checks an image and, with
// --extract, writes its files out as root, keeping owners, modes, times,
// device numbers and content; erofs-utils 1.5 (Debian bookworm's) extracts
// neither xattrs nor hardlinks, so Linux itself judges those: the image
// mounted read-only through a loop device, read back with lstat,
// listxattr and getxattr, inode numbers giving the hardlinks and st_nlink
// the link counts.

// testTime is the Time the tests give.
var testTime = time.Date(2024, 1, 2, 3, 4, 5, 600, time.UTC)

// writeImage writes tr into a new file in dir and returns its path.
func writeImage(t testing.TB, dir string, tr *fstree.Tree, opts Options) (string, error) {
	t.Helper()
	if opts.Time.IsZero() {
		opts.Time = testTime
	}
	f, err := os.CreateTemp(dir, "*.erofs")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Name(), Write(f, 0, tr, opts)
}

func fsckErofs(t testing.TB) string {
	t.Helper()
	return hosttool.Require(t, "fsck.erofs", "erofs-utils")
}

// want is the manifest of tr as EROFS keeps it: opts.Time for nodes
// without an mtime, none before 1970, only the xattrs EROFS stores.
func want(t testing.TB, tr *fstree.Tree, opts Options) []fstree.Record {
	t.Helper()
	rs, err := fstree.Manifest(tr)
	if err != nil {
		t.Fatal(err)
	}
	build := opts.Time
	for i := range rs {
		r := &rs[i]
		r.Mtime = mtime(&fstree.Node{Mtime: r.Mtime}, build).UTC()
		xs := map[string]string{}
		for k, v := range r.Xattrs {
			if _, ok, _ := xattrEntry(k, v); ok {
				xs[k] = v
			}
		}
		r.Xattrs = xs
	}
	return rs
}

// fsck runs fsck.erofs on img, which must find nothing wrong.
func fsck(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command(fsckErofs(t), img).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("<E>")) {
		t.Fatalf("fsck.erofs %s: %v\n%s", img, err, out)
	}
}

// extract extracts img with fsck.erofs --extract as root and reads the
// result back from the host filesystem.
func extract(t testing.TB, img string, tr *fstree.Tree) []fstree.Record {
	t.Helper()
	if os.Geteuid() != 0 {
		hosttool.Missing(t, "root, to extract owners and devices with fsck.erofs --extract")
	}
	dir := filepath.Join(t.TempDir(), "x")
	cmd := exec.Command(fsckErofs(t), "--extract="+dir, "--preserve", img)
	if out, err := cmd.CombinedOutput(); err != nil || bytes.Contains(out, []byte("<E>")) {
		t.Fatalf("fsck.erofs --extract %s: %v\n%s", img, err, out)
	}
	defer os.RemoveAll(dir)
	es, err := testimages.ReadHostTree(dir, tr)
	if err != nil {
		t.Fatalf("fsck.erofs --extract: %v", err)
	}
	return testimages.Records(es)
}

// mount mounts img read-only with Linux's erofs through a loop device and
// reads every name back, with its link count.
func mount(t testing.TB, img string, tr *fstree.Tree) []testimages.HostEntry {
	t.Helper()
	if os.Geteuid() != 0 {
		hosttool.Missing(t, "root, to mount the image with Linux's erofs")
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\terofs\n") {
		hosttool.Missing(t, "a kernel with erofs (modprobe erofs), to mount the image")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "erofs", "-o", "ro,loop", img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount -t erofs %s: %v\n%s", img, err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	}()
	es, err := testimages.ReadHostTree(dir, tr)
	if err != nil {
		t.Fatalf("mounted: %v", err)
	}
	return es
}

// requireLinkCounts checks the mounted link counts: a directory's is two
// plus its subdirectories, anything else's its names in the tree.
func requireLinkCounts(t testing.TB, es []testimages.HostEntry, tr *fstree.Tree) {
	t.Helper()
	for _, e := range es {
		n, err := tr.Lookup(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(n.Links())
		if n.Type == fstree.TypeDir {
			want = 2
			for _, c := range n.Entries() {
				if c.Node.Type == fstree.TypeDir {
					want++
				}
			}
		}
		if e.Nlink != want {
			t.Errorf("/%s: link count %d, want %d", e.Path, e.Nlink, want)
		}
	}
}

// judge runs every judge on img, written from tr under opts.
func judge(t testing.TB, img string, tr *fstree.Tree, opts Options) {
	t.Helper()
	if opts.Time.IsZero() {
		opts.Time = testTime
	}
	w := want(t, tr, opts)
	fsck(t, img)
	testimages.RequireSame(t, "fsck.erofs --extract", noSetid(w), noSetid(extract(t, img, tr)),
		testimages.Fields{SHA: true, Mtime: 1, SymlinkMtime: true})
	es := mount(t, img, tr)
	testimages.RequireSame(t, "Linux", w, testimages.Records(es),
		testimages.Fields{SHA: true, Xattrs: true, Links: true, Mtime: 1, SymlinkMtime: true})
	requireLinkCounts(t, es, tr)
}

// noSetid clears the setuid and setgid bits of all but directories:
// fsck.erofs 1.5 extracts a file's mode before its owner, and the chown
// clears them (mkfs.erofs's own images show it), so only Linux judges
// those bits.
func noSetid(rs []fstree.Record) []fstree.Record {
	out := slices.Clone(rs)
	for i := range out {
		if out[i].Type != fstree.TypeDir {
			out[i].Mode &^= fstree.ModeSetuid | fstree.ModeSetgid
		}
	}
	return out
}
