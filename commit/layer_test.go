package commit

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/mkfs/tar"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages"
)

// upperTree builds what overlayfs leaves in an upper directory, by hand.
func upperTree(t *testing.T, build func(put func(p string, n *fstree.Node))) *fstree.Tree {
	t.Helper()
	tr := fstree.New()
	dir := fstree.NewDir(0o755)
	build(func(p string, n *fstree.Node) {
		if err := tr.Put(p, n, dir); err != nil {
			t.Fatal(err)
		}
	})
	return tr
}

func withXattrs(n *fstree.Node, kv ...string) *fstree.Node {
	n.Xattrs = map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		n.Xattrs[kv[i]] = kv[i+1]
	}
	return n
}

func TestLayerTree(t *testing.T) {
	file := func(s string, mode uint32) *fstree.Node { return fstree.NewFile(mode, int64(len(s)), fstree.Bytes(s)) }
	for _, tc := range []struct {
		name      string
		build     func(put func(string, *fstree.Node))
		want      string // the layer's listing (testimages.ParseListing)
		whiteouts int
		err       string
	}{
		{name: "whiteouts and opaque directories", whiteouts: 5, build: func(put func(string, *fstree.Node)) {
			// Overlayfs shares one inode among its whiteouts.
			wh := fstree.NewDevice(fstree.TypeCharDev, 0, 0, 0)
			put("etc/hostname", wh)
			put("usr/sbin", wh)
			put("etc/opaque", withXattrs(fstree.NewDir(0o750), "trusted.overlay.opaque", "y", "user.keep", "1"))
			put("etc/opaque/new", file("n", 0o644))
			// "x": holds whiteouts, not opaque (Linux 6.7).
			put("var", withXattrs(fstree.NewDir(0o755), "trusted.overlay.opaque", "x"))
			put("var/log", wh)
			put("srv", withXattrs(fstree.NewDir(0o700), "trusted.overlay.opaque", "y"))
		}, want: `
/etc dir 0755 0:0
/etc/.wh.hostname file 0000 0:0 ""
/etc/opaque dir 0750 0:0 xattr:user.keep="1"
/etc/opaque/.wh..wh..opq file 0000 0:0 ""
/etc/opaque/new file 0644 0:0 "n"
/srv dir 0700 0:0
/srv/.wh..wh..opq file 0000 0:0 ""
/usr dir 0755 0:0
/usr/.wh.sbin file 0000 0:0 ""
/var dir 0755 0:0
/var/.wh.log file 0000 0:0 ""
`},
		{name: "everything else kept", build: func(put func(string, *fstree.Node)) {
			ping := withXattrs(file("#!", 0o4755), "security.capability", "\x01\x00\x00\x02", "trusted.overlay.origin", "\x00\xfb")
			put("bin/ping", ping)
			put("bin/ping-again", ping)
			put("dev/tty", fstree.NewDevice(fstree.TypeCharDev, 0o620, 4, 64))
			put("dev/loop0", fstree.NewDevice(fstree.TypeBlockDev, 0o660, 7, 0))
			put("run/fifo", fstree.NewDevice(fstree.TypeFIFO, 0o600, 0, 0))
			put("lib", fstree.NewSymlink("usr/lib"))
			put("tmp", withXattrs(fstree.NewDir(0o1777), "trusted.overlay.impure", "y"))
		}, want: `
/bin dir 0755 0:0
/bin/ping file 4755 0:0 "#!" xattr:security.capability="\x01\x00\x00\x02"
/bin/ping-again hardlink /bin/ping
/dev dir 0755 0:0
/dev/loop0 block 0660 0:0 7,0
/dev/tty char 0620 0:0 4,64
/lib symlink 0777 0:0 "usr/lib"
/run dir 0755 0:0
/run/fifo fifo 0600 0:0
/tmp dir 1777 0:0
`},
		{name: "redirect", build: func(put func(string, *fstree.Node)) {
			put("moved", withXattrs(fstree.NewDir(0o755), "trusted.overlay.redirect", "/orig"))
		}, err: "redirect"},
		{name: "metacopy", build: func(put func(string, *fstree.Node)) {
			put("f", withXattrs(file("", 0o644), "trusted.overlay.metacopy", ""))
		}, err: "metacopy"},
		{name: "a whiteout's name", build: func(put func(string, *fstree.Node)) {
			put("etc/.wh.x", file("", 0o644))
		}, err: "/etc/.wh.x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := upperTree(t, tc.build)
			n, err := LayerTree(tr)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.whiteouts {
				t.Errorf("%d whiteouts, want %d", n, tc.whiteouts)
			}
			var b bytes.Buffer
			tr.ClampTimes(time.Unix(testimages.DefaultMtime, 0))
			if err := tar.Write(&b, tr); err != nil {
				t.Fatal(err)
			}
			got, err := testimages.TarListing(&b)
			if err != nil {
				t.Fatal(err)
			}
			got = got[1:] // the root
			for i := range got {
				got[i].Mtime = time.Unix(testimages.DefaultMtime, 0)
			}
			want, err := testimages.ParseListing(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if d := testimages.DiffListings(want, got); d != "" {
				t.Errorf("layer differs:\n%s", d)
			}
		})
	}
}

// The layer a commit writes is read back by ocidisk's own flattener with
// the meaning overlayfs gave the upper directory: over a lower tree, the
// whiteouts delete, the opaque directory hides, the rest replaces.
func TestLayerOverLower(t *testing.T) {
	lower, err := testimages.LayerOf([]testimages.Entry{
		testimages.Dir("etc", 0o755), testimages.File("etc/hostname", "old\n", 0o644), testimages.File("etc/passwd", "root\n", 0o644),
		testimages.Dir("etc/conf.d", 0o755), testimages.File("etc/conf.d/a", "a", 0o644), testimages.File("etc/conf.d/b", "b", 0o644),
		testimages.Dir("var", 0o755), testimages.Dir("var/cache", 0o755), testimages.File("var/cache/x", "x", 0o644),
	}, testimages.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	up := upperTree(t, func(put func(string, *fstree.Node)) {
		wh := fstree.NewDevice(fstree.TypeCharDev, 0, 0, 0)
		put("etc/hostname", wh)
		put("etc/conf.d", withXattrs(fstree.NewDir(0o700), "trusted.overlay.opaque", "y"))
		put("etc/conf.d/c", fstree.NewFile(0o600, 1, fstree.Bytes("c")))
		put("var", fstree.NewFile(0o644, 4, fstree.Bytes("file")))
	})
	if _, err := LayerTree(up); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "layer.tar.gz")
	info, err := writeLayer(file, up, Gzip, LayerInfo{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := testimages.ImageOf(lower, fileLayer{&builtLayer{file: file, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", info: info}})
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.WriteLayout(filepath.Join(dir, "layout"), "", img); err != nil {
		t.Fatal(err)
	}
	flat, err := rootfs.Load(t.Context(), "oci:"+filepath.Join(dir, "layout"), sourceOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	defer flat.Close()
	var paths []string
	_ = flat.Tree.Walk(func(p string, n *fstree.Node) error { paths = append(paths, p+":"+n.Type.String()); return nil })
	want := []string{":directory", "etc:directory", "etc/conf.d:directory", "etc/conf.d/c:file", "etc/passwd:file", "var:file"}
	if !slices.Equal(paths, want) {
		t.Errorf("flattened %q, want %q", paths, want)
	}
	// The compressed file is what the digests say.
	b, _ := os.ReadFile(file)
	if int64(len(b)) != info.Size || sha256Hash(hashOf(b)) != info.Digest {
		t.Errorf("layer file of %d bytes, info %+v", len(b), info)
	}
}

func sourceOpts(t *testing.T) source.Options { return source.Options{CacheDir: t.TempDir()} }

func hashOf(b []byte) hash.Hash {
	h := sha256.New()
	h.Write(b)
	return h
}
