package ext4

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// TestDirHash compares the htree hash with debugfs's dx_hash.
func TestDirHash(t *testing.T) {
	bin := hosttool.Require(t, "debugfs", "e2fsprogs")
	seed := [16]byte{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55}
	re := regexp.MustCompile(`is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)`)
	for _, name := range []string{"a", "hello", "héllo", "日本語🙂", strings.Repeat("x", 31), strings.Repeat("y", 32),
		strings.Repeat("z", 33), strings.Repeat("ü", 127), strings.Repeat("q", 255), "with space", "\xff\x80"} {
		for _, s := range [][16]byte{seed, {}} {
			args := []string{"-R", "dx_hash -h half_md4 \"" + name + "\""}
			if s != [16]byte{} {
				args[1] = "dx_hash -h half_md4 -s 11111111-2222-3333-4444-555555555555 \"" + name + "\""
			}
			out, err := exec.Command(bin, args...).CombinedOutput()
			m := re.FindStringSubmatch(string(out))
			if err != nil || m == nil {
				t.Fatalf("debugfs dx_hash %q: %v\n%s", name, err, out)
			}
			wantH, _ := strconv.ParseUint(m[1], 16, 32)
			wantM, _ := strconv.ParseUint(m[2], 16, 32)
			h, minor := dirHash([]byte(name), hashSeedWords(s), true)
			if h != uint32(wantH) || minor != uint32(wantM) {
				t.Errorf("hash(%.20q, seed %x) = %#x/%#x, debugfs says %#x/%#x", name, s[:2], h, minor, wantH, wantM)
			}
		}
	}
}

// TestBigDir writes 100,000 entries into one directory (a two-level
// htree) and checks e2fsck and the listing.
func TestBigDir(t *testing.T) {
	n := 100000
	if testing.Short() {
		n = 20000
	}
	tr := fstree.New()
	big, err := tr.MkdirAll("big", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("entry-%06d%s", i, strings.Repeat("x", i%40))
		var c *fstree.Node
		switch i % 5 {
		case 0:
			c = fstree.NewDir(0o755)
		case 1:
			c = fstree.NewSymlink(name)
		default:
			c = fstree.NewFile(0o644, 0, nil)
		}
		big.SetChild(name, c)
		want[name] = true
	}
	img, err := writeImage(t, t.TempDir(), tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hosttool.E2fsckClean(t, img)
	out := debugfs(t, img, []string{"ls -p /big", "htree_dump /big"})
	got := 0
	for _, l := range strings.Split(strings.TrimSpace(out[0]), "\n") {
		f := strings.Split(l, "/")
		name := f[5]
		if name == "." || name == ".." || f[1] == "0" { // inode 0: the empty entry heading an htree index block
			continue
		}
		if !want[name] {
			t.Fatalf("unexpected or repeated entry %q in line %q", name, l)
		}
		delete(want, name)
		got++
	}
	if got != n {
		t.Fatalf("listed %d entries, want %d", got, n)
	}
	if !testing.Short() && !strings.Contains(out[1], "Indirect levels: 1") {
		t.Errorf("want a two-level htree; htree_dump says:\n%.500s", out[1])
	}
	_ = os.Remove(img)
}
