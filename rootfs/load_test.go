package rootfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// load is Load with a private cache, failing the test on error.
func load(t *testing.T, spec string, cacheDir string) *Image {
	t.Helper()
	im, err := Load(t.Context(), spec, source.Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatalf("load %s: %v", spec, err)
	}
	t.Cleanup(func() { im.Close() })
	return im
}

// checkTree compares a tree's manifest with a listing.
func checkTree(t *testing.T, tr *fstree.Tree, want []fstree.Record) {
	t.Helper()
	got, err := fstree.Manifest(tr)
	if err != nil {
		t.Fatal(err)
	}
	if d := testimages.DiffListings(want, got); d != "" {
		t.Errorf("tree differs:\n%s", d)
	}
}

func mustListing(t *testing.T, s string) []fstree.Record {
	t.Helper()
	rs, err := testimages.ParseListing(s)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestLoadTarFile loads tar:FILE compressed by the real tools: the
// compression is found from the bytes whatever the name says, the ID is the
// file's sha256, and a plain tar is read in place (nothing in the cache).
func TestLoadTarFile(t *testing.T) {
	F, S, H := testimages.File, testimages.Symlink, testimages.Hardlink
	b, err := testimages.TarOf([]testimages.Entry{
		testimages.Dir("bin", 0o755), F("bin/busybox", "BB", 0o4755), H("bin/sh", "bin/busybox"), S("init", "bin/sh"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := mustListing(t, `
/ dir 0755 0:0 mtime=0
/bin dir 0755 0:0
/bin/busybox file 4755 0:0 "BB"
/bin/sh hardlink /bin/busybox
/init symlink 0777 0:0 "bin/sh"
`)
	for _, tc := range []struct{ name, tool, pkg string }{
		{"plain", "", ""},
		{"gzip", "gzip", "gzip"},
		{"zstd", "zstd", "zstd"},
		{"xz", "xz", "xz-utils"},
		{"bzip2", "bzip2", "bzip2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "layer.bin") // the name says nothing
			data := b
			if tc.tool != "" {
				cmd := exec.Command(hosttool.Require(t, tc.tool, tc.pkg), "-c")
				cmd.Stdin = bytes.NewReader(b)
				if data, err = cmd.Output(); err != nil {
					t.Fatalf("%s: %v", tc.tool, err)
				}
			}
			if err := os.WriteFile(file, data, 0o644); err != nil {
				t.Fatal(err)
			}
			cache := filepath.Join(dir, "cache")
			for range 2 { // cold, then warm cache
				im := load(t, "tar:"+file, cache)
				checkTree(t, im.Tree, want)
				if wantID := fmt.Sprintf("sha256:%x", sha256.Sum256(data)); im.ID != wantID {
					t.Errorf("ID = %s, want %s", im.ID, wantID)
				}
				if im.Config != nil {
					t.Errorf("a tar file has no config, got %+v", im.Config)
				}
			}
			_, err := os.Stat(filepath.Join(cache, "layers"))
			if tc.tool == "" && err == nil {
				t.Errorf("a plain tar was copied into the cache")
			}
			if tc.tool != "" && err != nil {
				t.Errorf("a compressed tar was not decompressed into the cache: %v", err)
			}
		})
	}
}

// TestLoadDebBuilt loads packages that dpkg-deb built with each of its
// compressions.
func TestLoadDebBuilt(t *testing.T) {
	dpkgDeb := hosttool.Require(t, "dpkg-deb", "dpkg")
	dir := t.TempDir()
	root := filepath.Join(dir, "pkg")
	for _, d := range []string{"DEBIAN", "usr/bin", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"DEBIAN/control": "Package: ocidisk-test\nVersion: 1.0\nArchitecture: arm64\nMaintainer: t <t@example.org>\nDescription: test\n",
		"usr/bin/hello":  "#!/bin/sh\necho hello\n",
		"etc/hello.conf": "greeting=hello\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "usr/bin/hello"), 0o755)
	if err := os.Symlink("hello", filepath.Join(root, "usr/bin/hi")); err != nil {
		t.Fatal(err)
	}
	stamp := time.Unix(testimages.DefaultMtime, 0)
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
		return unix.Lutimes(p, []unix.Timeval{unix.NsecToTimeval(stamp.UnixNano()), unix.NsecToTimeval(stamp.UnixNano())})
	})
	want := mustListing(t, `
/ dir 0755 0:0
/etc dir 0755 0:0
/etc/hello.conf file 0644 0:0 "greeting=hello\n"
/usr dir 0755 0:0
/usr/bin dir 0755 0:0
/usr/bin/hello file 0755 0:0 "#!/bin/sh\necho hello\n"
/usr/bin/hi symlink 0777 0:0 "hello"
`)
	for _, z := range []string{"xz", "gzip", "zstd", "none"} {
		t.Run(z, func(t *testing.T) {
			deb := filepath.Join(dir, z+".deb")
			cmd := exec.Command(dpkgDeb, "--root-owner-group", "-Z"+z, "-b", root, deb)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb: %v: %s", err, out)
			}
			im := load(t, "deb:"+deb, filepath.Join(dir, "cache"))
			checkTree(t, im.Tree, want)
		})
	}
}

// TestLoadDebReal loads Debian's busybox-static and compares the tree with
// what dpkg-deb itself extracts from the package.
func TestLoadDebReal(t *testing.T) {
	dpkgDeb := hosttool.Require(t, "dpkg-deb", "dpkg")
	deb := debian.Package(t, "busybox-static")
	out, err := exec.Command(dpkgDeb, "--fsys-tarfile", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile: %v", err)
	}
	want, err := testimages.TarListing(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	im := load(t, "deb:"+deb, t.TempDir())
	checkTree(t, im.Tree, want)
	if len(want) < 5 {
		t.Fatalf("dpkg-deb listed only %d entries", len(want))
	}
}

// TestLoadDir loads a host directory made here with every kind of entry,
// owners, modes, times, xattrs and hardlinks.
func TestLoadDir(t *testing.T) {
	if os.Getuid() != 0 {
		hosttool.Missing(t, "dir: test needs root (chown, mknod)")
	}
	root := filepath.Join(t.TempDir(), "tree")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(os.Mkdir(filepath.Join(root, "tmp"), 0o755))
	must(unix.Chmod(filepath.Join(root, "tmp"), 0o1777))
	must(os.WriteFile(filepath.Join(root, "bin/busybox"), []byte("BB"), 0o755))
	must(unix.Chmod(filepath.Join(root, "bin/busybox"), 0o4755))
	must(os.Link(filepath.Join(root, "bin/busybox"), filepath.Join(root, "bin/sh")))
	must(os.Symlink("/bin/sh", filepath.Join(root, "init")))
	must(os.WriteFile(filepath.Join(root, "owned"), []byte("mine"), 0o640))
	must(os.Chown(filepath.Join(root, "owned"), 1000, 100))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Chmod(filepath.Join(root, "null"), 0o666))
	must(unix.Mknod(filepath.Join(root, "vda"), unix.S_IFBLK|0o660, int(unix.Mkdev(254, 0))))
	must(os.Chmod(filepath.Join(root, "vda"), 0o660))
	if err := unix.Setxattr(filepath.Join(root, "owned"), "user.note", []byte("hi\x00there"), 0); err != nil {
		hosttool.Missing(t, "the test directory's filesystem has no user xattrs: "+err.Error())
	}
	must(filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
		ts := unix.NsecToTimeval(time.Unix(testimages.DefaultMtime, 0).UnixNano())
		return unix.Lutimes(p, []unix.Timeval{ts, ts})
	}))
	im := load(t, "dir:"+root, t.TempDir())
	checkTree(t, im.Tree, mustListing(t, `
/ dir 0755 0:0
/bin dir 0755 0:0
/bin/busybox file 4755 0:0 "BB"
/bin/sh hardlink /bin/busybox
/fifo fifo 0600 0:0
/init symlink 0777 0:0 "/bin/sh"
/null char 0666 0:0 1,3
/owned file 0640 1000:100 "mine" xattr:user.note="hi\x00there"
/tmp dir 1777 0:0
/vda block 0660 0:0 254,0
`))
	if n := lookup(t, im.Tree, "bin/sh"); n.Links() != 2 {
		t.Errorf("/bin/sh has %d links, want 2", n.Links())
	}
	// The ID follows the tree: a change of metadata changes it.
	id := im.ID
	if again := load(t, "dir:"+root, t.TempDir()); again.ID != id {
		t.Errorf("ID changed without a change: %s, then %s", id, again.ID)
	}
	must(os.Chmod(filepath.Join(root, "owned"), 0o600))
	if changed := load(t, "dir:"+root, t.TempDir()); changed.ID == id {
		t.Errorf("ID did not change with a mode")
	}
}

// TestLoadConfigured: Load hands the image's configuration to
// source.Options.Configured before it reads a byte of the layers (no
// progress reported yet), once; a host directory, which has none, gives
// nil.
func TestLoadConfigured(t *testing.T) {
	layer, err := testimages.LayerOf([]testimages.Entry{testimages.File("etc/motd", strings.Repeat("hello ", 5000), 0o644)}, "gzip")
	if err != nil {
		t.Fatal(err)
	}
	img, err := testimages.ImageOf(layer)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 12, 5, 17, 0, 0, 0, time.UTC)
	if img, err = mutate.CreatedAt(img, v1.Time{Time: created}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := testimages.WriteLayout(filepath.Join(dir, "layout"), "", img); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(dir, "host")
	if err := os.MkdirAll(filepath.Join(host, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec    string
		created time.Time // zero: no configuration
	}{
		{"oci:" + filepath.Join(dir, "layout"), created},
		{"dir:" + host, time.Time{}},
	} {
		var calls int
		var read int64
		opts := source.Options{CacheDir: filepath.Join(dir, "cache"),
			Progress: func(done, _ int64) { read = done },
			Configured: func(c *v1.ConfigFile) {
				calls++
				switch {
				case read > 0:
					t.Errorf("%s: Configured after %d bytes of layers were read", tc.spec, read)
				case tc.created.IsZero() && c != nil:
					t.Errorf("%s: a configuration, want none", tc.spec)
				case !tc.created.IsZero() && (c == nil || !c.Created.Time.Equal(tc.created)):
					t.Errorf("%s: configuration %+v, want one created %v", tc.spec, c, tc.created)
				}
			}}
		im, err := Load(t.Context(), tc.spec, opts)
		if err != nil {
			t.Fatal(err)
		}
		im.Close()
		if calls != 1 {
			t.Errorf("%s: Configured called %d times, want once", tc.spec, calls)
		}
		if !tc.created.IsZero() && read == 0 {
			t.Errorf("%s: no progress reported: the test shows nothing", tc.spec)
		}
	}
}
