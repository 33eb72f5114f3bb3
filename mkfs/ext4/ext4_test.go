package ext4

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// propertySeeds is how many random trees TestProperty writes and reads
// back; -short runs fewer.
const propertySeeds = 200

// regressionSeeds are seeds that once failed, kept with what they caught.
var regressionSeeds = []struct {
	seed uint64
	opts randtree.Options
	why  string
}{}

// TestProperty writes seeded random trees holding every entry kind and
// requires e2fsck -fn clean and a debugfs read-back equal to the tree in
// every field.
func TestProperty(t *testing.T) {
	type tc struct {
		name string
		seed uint64
		opts randtree.Options
	}
	var cases []tc
	for _, r := range regressionSeeds {
		cases = append(cases, tc{fmt.Sprintf("regression-%d", r.seed), r.seed, r.opts})
	}
	n := propertySeeds
	if testing.Short() {
		n = 20
	}
	for seed := uint64(0); seed < uint64(n); seed++ {
		opts := randtree.Options{Entries: 20 + int(seed%7)*30}
		if seed%10 == 9 { // now and then a big tree with wide directories
			opts.Entries = 600
		}
		cases = append(cases, tc{fmt.Sprintf("seed-%d", seed), seed, opts})
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tr := randtree.New(c.seed, c.opts)
			opts := Options{Time: testTime}
			if c.seed%4 == 3 {
				opts.NoJournal = true
			}
			img, err := writeImage(t, dir, tr, opts)
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			hosttool.E2fsckClean(t, img)
			if diffs := compareTree(t, img, tr, opts); len(diffs) > 0 {
				if len(diffs) > 20 {
					diffs = append(diffs[:20], "...")
				}
				t.Fatalf("read-back differs from the tree:\n%s", strings.Join(diffs, "\n"))
			}
		})
	}
}

// TestEntryKinds writes a hand-made tree with the corner cases the random
// trees reach only by chance.
func TestEntryKinds(t *testing.T) {
	tr := fstree.New()
	put := func(p string, n *fstree.Node) {
		t.Helper()
		if err := tr.Put(p, n, fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	put("empty", fstree.NewFile(0o644, 0, nil))
	put("dev/null", fstree.NewDevice(fstree.TypeCharDev, 0o666, 1, 3))
	put("dev/big", fstree.NewDevice(fstree.TypeBlockDev, 0o660, 4095, 1<<20-1))
	put("dev/mid", fstree.NewDevice(fstree.TypeCharDev, 0o660, 255, 256))
	put("fifo", fstree.NewDevice(fstree.TypeFIFO, 0o600, 0, 0))
	put("sock", fstree.NewDevice(fstree.TypeSocket, 0o755, 0, 0))
	fast := fstree.NewSymlink(strings.Repeat("f", 59))
	fast.UID, fast.GID = 1234, 5678
	put("fast", fast)
	slow := fstree.NewSymlink(strings.Repeat("s", 60))
	slow.UID, slow.GID = 4000000000, 3
	put("slow", slow)
	put("longest", fstree.NewSymlink(strings.Repeat("x/", 2047)+"y"))
	su := fstree.NewFile(0o4755|fstree.ModeSetgid, 5, fstree.Bytes("hello"))
	su.UID = 0xfffffffe
	put("bin/su", su)
	put("bin/su-link", su)
	put("tmp", fstree.NewDir(0o1777))
	put(strings.Repeat("n", 255), fstree.NewFile(0o600, 1, fstree.Bytes("x")))
	x := fstree.NewFile(0o644, 3, fstree.Bytes("abc"))
	x.Xattrs = map[string]string{
		"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"security.selinux":    "system_u:object_r:bin_t:s0\x00",
		"user.empty":          "",
		"trusted.big":         strings.Repeat("v", 3000),
	}
	put("xattrs", x)
	// A POSIX ACL in the VFS form tar carries (version 2, 8-byte entries):
	// user::rwx, user:1000:r-x, group::r-x, mask::r-x, other::---.
	acl := "\x02\x00\x00\x00" + "\x01\x00\x07\x00\xff\xff\xff\xff" + "\x02\x00\x05\x00\xe8\x03\x00\x00" +
		"\x04\x00\x05\x00\xff\xff\xff\xff" + "\x10\x00\x05\x00\xff\xff\xff\xff" + "\x20\x00\x00\x00\xff\xff\xff\xff"
	withACL := fstree.NewDir(0o750)
	withACL.Xattrs = map[string]string{"system.posix_acl_access": acl, "system.posix_acl_default": acl}
	put("acl", withACL)
	// Many extents: every other block a hole.
	put("holes", fstree.NewFile(0o644, 4096*2000+7, randtree.Content{Seed: 1, Size: 4096*2000 + 7, RunShift: 0, ZeroOdds: 128}))
	put("allzero", fstree.NewFile(0o644, 1<<20, randtree.Content{Seed: 2, Size: 1 << 20, ZeroOdds: 255, RunShift: 10}))
	img, err := writeImage(t, t.TempDir(), tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hosttool.E2fsckClean(t, img)
	if diffs := compareTree(t, img, tr, Options{Time: testTime}); len(diffs) > 0 {
		t.Fatalf("read-back differs:\n%s", strings.Join(diffs, "\n"))
	}
}
