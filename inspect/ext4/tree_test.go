package ext4

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	mkext4 "github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/testimages"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// manifest lists t without the root's own line and lost+found, which a
// fresh ext4 adds.
func manifest(t *testing.T, tree *fstree.Tree) []fstree.Record {
	t.Helper()
	rs, err := fstree.Manifest(tree)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(rs, func(r fstree.Record) bool { return r.Path == "" || r.Path == "lost+found" })
}

// Random trees with every kind of entry and xattrs, written by mkfs/ext4,
// read back as trees: every entry (type, mode, owner, content, target,
// device numbers, mtime, xattrs, hardlinks) must be the original's.
func TestTreeOfRandomTrees(t *testing.T) {
	for seed := uint64(11); seed <= 14; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			want := randtree.New(seed, randtree.Options{Entries: 400})
			image := filepath.Join(t.TempDir(), "root.ext4")
			f, err := os.Create(image)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := mkext4.Write(f, 0, want, mkext4.Options{Seed: []byte{byte(seed)}}); err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			fsys, err := Open(f, 0, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			got, err := fsys.Tree(".")
			if err != nil {
				t.Fatal(err)
			}
			if d := testimages.DiffListings(manifest(t, want), manifest(t, got)); d != "" {
				t.Errorf("the tree read back differs:\n%s", d)
			}
			if got.Root.Mode != want.Root.Mode || got.Root.UID != want.Root.UID || !got.Root.Mtime.Equal(want.Root.Mtime) {
				t.Errorf("root %o %d %v, want %o %d %v", got.Root.Mode, got.Root.UID, got.Root.Mtime, want.Root.Mode, want.Root.UID, want.Root.Mtime)
			}
		})
	}
}

// testACL is u::rwx,u:1000:rwx,g::r-x,m::rwx,o::r-x as the VFS gives it.
const testACL = "\x02\x00\x00\x00" + "\x01\x00\x07\x00\xff\xff\xff\xff" + "\x02\x00\x07\x00\xe8\x03\x00\x00" +
	"\x04\x00\x05\x00\xff\xff\xff\xff" + "\x10\x00\x07\x00\xff\xff\xff\xff" + "\x20\x00\x05\x00\xff\xff\xff\xff"

func q(s string) string { return strconv.Quote(s) }

// What an overlayfs upper directory holds, made on the host and copied
// into an ext4 by mke2fs -d: whiteouts (character devices 0:0), an opaque
// directory (trusted.overlay.opaque), overlayfs' other trusted xattrs,
// security.capability, hardlinks, a FIFO and setuid bits. Tree reads it
// back under "upper" as the host sees it.
func TestTreeOfOverlayUpper(t *testing.T) {
	mke2fs := hosttool.Require(t, "mke2fs", "e2fsprogs")
	if os.Geteuid() != 0 {
		t.Skip("needs root: device nodes and trusted.* xattrs on the host")
	}
	src := t.TempDir()
	up := filepath.Join(src, "upper")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(up, "etc/opaque"), 0o755))
	must(os.WriteFile(filepath.Join(up, "etc/opaque/new"), []byte("new file\n"), 0o644))
	must(unix.Setxattr(filepath.Join(up, "etc/opaque"), "trusted.overlay.opaque", []byte("y"), 0))
	must(unix.Setxattr(filepath.Join(up, "etc"), "trusted.overlay.impure", []byte("y"), 0))
	must(unix.Mknod(filepath.Join(up, "etc/deleted"), unix.S_IFCHR, 0))
	must(unix.Mknod(filepath.Join(up, "fifo"), unix.S_IFIFO|0o600, 0))
	must(unix.Mknod(filepath.Join(up, "console"), unix.S_IFCHR|0o600, int(unix.Mkdev(5, 1))))
	must(os.WriteFile(filepath.Join(up, "ping"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(filepath.Join(up, "ping"), 0o755|os.ModeSetuid))
	// cap_net_raw=ep, as setcap writes it (VFS_CAP_REVISION_2).
	must(unix.Setxattr(filepath.Join(up, "ping"), "security.capability", []byte("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 0))
	must(os.Link(filepath.Join(up, "ping"), filepath.Join(up, "etc/ping-link")))
	must(os.Symlink("../ping", filepath.Join(up, "etc/ping-symlink")))
	must(os.Chown(filepath.Join(up, "fifo"), 1000, 1001))
	must(os.MkdirAll(filepath.Join(src, "work/work"), 0o700))
	// An access and a default ACL (user 1000 rwx, as systemd puts on
	// /var/log/journal), in the xattr form: version 2, 8-byte entries.
	// The mode's group bits become the ACL's mask.
	must(os.MkdirAll(filepath.Join(up, "journal"), 0o755))
	for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default"} {
		must(unix.Setxattr(filepath.Join(up, "journal"), name, []byte(testACL), 0))
	}

	image := filepath.Join(t.TempDir(), "scratch.ext4")
	if out, err := exec.Command(mke2fs, "-q", "-t", "ext4", "-d", src, image, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	f, err := os.Open(image)
	must(err)
	defer f.Close()
	st, _ := f.Stat()
	fsys, err := Open(f, 0, st.Size())
	must(err)
	got, err := fsys.Tree("upper")
	must(err)
	want, err := testimages.ParseListing(`
/console char 0600 0:0 5,1
/etc dir 0755 0:0 xattr:trusted.overlay.impure="y"
/etc/deleted char 0000 0:0 0,0
/etc/opaque dir 0755 0:0 xattr:trusted.overlay.opaque="y"
/etc/opaque/new file 0644 0:0 "new file\n"
/etc/ping-link file 4755 0:0 "#!/bin/sh\n" xattr:security.capability="\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
/etc/ping-symlink symlink 0777 0:0 "../ping"
/fifo fifo 0600 1000:1001
/journal dir 0775 0:0 xattr:system.posix_acl_access=` + q(testACL) + ` xattr:system.posix_acl_default=` + q(testACL) + `
/ping hardlink /etc/ping-link
`)
	must(err)
	gotRecs := manifest(t, got)
	for i := range gotRecs {
		gotRecs[i].Mtime = want[0].Mtime // the host's clock: not compared
	}
	if d := testimages.DiffListings(want, gotRecs); d != "" {
		t.Errorf("the upper directory read back differs:\n%s", d)
	}
	if _, err := fsys.Tree("upper/ping"); err == nil {
		t.Error("Tree of a file: no error")
	}
}
