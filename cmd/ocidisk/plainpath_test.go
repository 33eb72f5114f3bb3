package main

import (
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocidisk/ocidisk/testimages"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestFlattenPlainPaths: a SOURCE given as a plain path is read as what
// it is, byte for byte as its prefixed spelling; a path that does not
// exist is an error naming it, never a registry lookup.
func TestFlattenPlainPaths(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	entries := []testimages.Entry{
		testimages.Dir("etc", 0o755), testimages.File("etc/hostname", "plain\n", 0o644),
		testimages.Symlink("bin", "usr/bin"), testimages.File("usr/bin/app", "#!/bin/sh\n", 0o755),
	}
	raw, err := testimages.TarOf(entries)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootTar := write("root.tar", raw)
	var gz strings.Builder
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	rootTgz := write("root.tar.gz", []byte(gz.String()))

	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("tree/etc/hostname", []byte("tree\n"))

	c := caseNamed(t, "whiteout-file")
	img, err := c.Image()
	if err != nil {
		t.Fatal(err)
	}
	skopeo := writeSkopeoDir(t, filepath.Join(dir, "skopeo"), img)
	layout := filepath.Join(dir, "layout")
	if err := testimages.WriteLayout(layout, c.Name, img); err != nil {
		t.Fatal(err)
	}
	deb := debian.Package(t, "busybox-static:arm64")

	for _, tc := range []struct{ prefixed, plain string }{
		{"tar:" + rootTar, rootTar},
		{"tar:" + rootTgz, rootTgz},
		{"dir:" + tree, tree},
		{"oci:" + layout, skopeo}, // skopeo's dir: layout is the same image
		{"deb:" + deb, deb},
	} {
		t.Run(filepath.Base(tc.plain), func(t *testing.T) {
			want := flattenSum(t, tc.prefixed)
			if got := flattenSum(t, tc.plain); got != want {
				t.Errorf("flatten %s gives %s, %s gives %s", tc.plain, got, tc.prefixed, want)
			}
		})
	}
	// A relative path, from the current directory.
	t.Chdir(dir)
	if got, want := flattenSum(t, "./root.tar"), flattenSum(t, "tar:"+rootTar); got != want {
		t.Errorf("./root.tar: %s, want %s", got, want)
	}
	for _, missing := range []string{"./nosuchdir", "nosuch.tar", "/no/such/root.tar.gz", "../nosuch.deb"} {
		out := filepath.Join(t.TempDir(), "out.tar")
		code, stderr := flattenRun(t, "-o", out, missing)
		if code != exitFailure || !strings.Contains(stderr, missing) || !strings.Contains(stderr, "no such file") ||
			strings.Contains(stderr, "http") {
			t.Errorf("flatten %s: exit %d, %q; want exit 1 naming the missing path", missing, code, stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("flatten %s left %s", missing, out)
		}
	}
}

func flattenSum(t *testing.T, spec string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.tar")
	if code, stderr := flattenRun(t, "-o", out, spec); code != exitOK {
		t.Fatalf("flatten %s: exit %d: %s", spec, code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// writeSkopeoDir writes img the way skopeo copy ... dir:DIR does: the
// manifest, a version file, and each blob named by its hex digest.
func writeSkopeoDir(t *testing.T, dir string, img v1.Image) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(name string, r io.Reader) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			t.Fatal(err)
		}
	}
	m, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	put("manifest.json", strings.NewReader(string(m)))
	put("version", strings.NewReader("Directory Transport Version: 1.1\n"))
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cn, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	put(cn.Hex, strings.NewReader(string(cfg)))
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		put(d.Hex, rc)
		rc.Close()
	}
	return dir
}

// TestBuildPlainPaths: a root layout and a kernel package named by their
// paths alone build the very image their prefixed spellings build.
func TestBuildPlainPaths(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	a := buildImage(t, "--kernel", "deb:"+kernel, "oci:"+root)
	b := buildImage(t, "--kernel", kernel, root)
	if sa, sb := fileHash(t, a), fileHash(t, b); sa != sb {
		t.Errorf("plain paths build %s, prefixed %s", sb, sa)
	}
}
