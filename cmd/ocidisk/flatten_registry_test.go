package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/testimages"
)

// TestFlattenCorpusRegistry pushes the corpus to a real registry on
// loopback (Debian's docker-registry) and flattens every case pulled by
// tag and by digest.
func TestFlattenCorpusRegistry(t *testing.T) {
	isolate(t)
	host := testimages.Registry(t)
	for _, c := range testimages.Corpus() {
		t.Run(c.Name, func(t *testing.T) {
			img, err := c.Image()
			if err != nil {
				t.Fatal(err)
			}
			ref := host + "/corpus/" + c.Name + ":latest"
			d, err := testimages.Push(ref, img)
			if err != nil {
				t.Fatal(err)
			}
			byTag := checkCase(t, c, ref)
			byDigest := checkCase(t, c, "docker://"+host+"/corpus/"+c.Name+"@"+d.String())
			if byTag != byDigest {
				t.Errorf("by tag and by digest gave different tars")
			}
		})
	}
}

// TestFlattenRegistryIndex pulls each platform of a multi-platform image
// by tag and by digest, and checks the error for a platform it lacks.
func TestFlattenRegistryIndex(t *testing.T) {
	isolate(t)
	host := testimages.Registry(t)
	idx, err := testimages.PlatformIndex("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6")
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/multi/platforms:v1"
	d, err := testimages.PushIndex(ref, idx)
	if err != nil {
		t.Fatal(err)
	}
	byDigest := host + "/multi/platforms@" + d.String()
	for _, tc := range []struct{ flag, want string }{
		{"", "linux/arm64"}, // the default
		{"linux/arm64", "linux/arm64"},
		{"linux/arm64/v8", "linux/arm64"},
		{"linux/arm/v7", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/amd64", "linux/amd64"},
	} {
		for _, spec := range []string{ref, "docker://" + byDigest} {
			t.Run(tc.want+"/"+spec, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out.tar")
				args := []string{"-o", out, spec}
				if tc.flag != "" {
					args = append([]string{"--platform", tc.flag}, args...)
				}
				if code, stderr := flattenRun(t, args...); code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				f, err := os.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				rs, err := testimages.TarListing(f)
				if err != nil {
					t.Fatal(err)
				}
				want, err := testimages.ParseListing(`
/ dir 0755 0:0 mtime=0
/etc dir 0755 0:0
/etc/platform file 0644 0:0 "` + tc.want + `\n"`)
				if err != nil {
					t.Fatal(err)
				}
				if d := testimages.DiffListings(want, rs); d != "" {
					t.Errorf("--platform %q:\n%s", tc.flag, d)
				}
			})
		}
	}
	t.Run("absent", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.tar")
		code, stderr := flattenRun(t, "--platform", "linux/riscv64", "-o", out, ref)
		checkFailed(t, code, stderr, out, 1, ref, "no linux/riscv64 in index; it has linux/amd64, linux/arm64, linux/arm/v7, linux/arm/v6")
	})
	t.Run("no such tag", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.tar")
		missing := host + "/multi/platforms:nope"
		code, stderr := flattenRun(t, "-o", out, missing)
		checkFailed(t, code, stderr, out, 1, missing, "no such image, tag or digest")
	})
	t.Run("no such repository", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.tar")
		missing := host + "/nobody/here:latest"
		code, stderr := flattenRun(t, "-o", out, missing)
		checkFailed(t, code, stderr, out, 1, missing, "no such image, tag or digest")
		if strings.Count(stderr, "\n") != 1 {
			t.Errorf("want one line on stderr, got %q", stderr)
		}
	})
}
