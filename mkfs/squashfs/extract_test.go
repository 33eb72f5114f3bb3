package squashfs

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages"
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
	es, err := testimages.ReadHostTree(dir, tr)
	if err != nil {
		t.Fatalf("unsquashfs -d: %v", err)
	}
	rs := testimages.Records(es)
	for i := range rs {
		r := &rs[i]
		n, err := tr.Lookup(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := n.Xattrs[capability]; ok && n.Type != fstree.TypeRegular {
			// Linux takes file capabilities on regular files only, so
			// the extraction cannot have them: ask rdsquashfs.
			if v, ok := rdXattrs(t, img, r.Path)[capability]; ok {
				r.Xattrs[capability] = v
			}
		}
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
