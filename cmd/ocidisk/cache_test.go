package main

import (
	"archive/tar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/testimages"
)

// Issue 13.11: a small gzip of a gigabyte of zeros becomes a cache entry
// that takes next to nothing on disk: runs of zeros are holes.
func TestCacheStoresZerosAsHoles(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses a gigabyte")
	}
	isolate(t)
	layer := filepath.Join(t.TempDir(), "zeros.tar.gz")
	f, err := os.Create(layer)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	const size = 1 << 30
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "disk.raw", Mode: 0o644, Size: size, ModTime: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range size / len(zeros) {
		tw.Write(zeros)
	}
	if err := tw.Close(); err != nil || zw.Close() != nil || f.Close() != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(layer)
	out := filepath.Join(t.TempDir(), "root.ext4")
	seenBefore(t, layer)
	if code, stderr := flattenRun(t, "--format", "ext4", "-o", out, "tar:"+layer); code != exitOK {
		t.Fatalf("flatten: exit %d: %s", code, stderr)
	}
	var cst unix.Stat_t
	entry := cachedLayer(t)
	if err := unix.Stat(entry, &cst); err != nil {
		t.Fatal(err)
	}
	if cst.Size < size || cst.Blocks*512 > 16<<20 {
		t.Errorf("a %d-byte gzip of 1 GiB of zeros: cache entry of %d bytes takes %d on disk, want at most 16 MiB", st.Size(), cst.Size, cst.Blocks*512)
	}
}

// Issue 13.11: ocidisk cache du lists the entries with their sizes and last
// use, and the total; cache prune removes by age and by size, least
// recently used first, keeping what a build may be using.
func TestCacheCommand(t *testing.T) {
	isolate(t)
	for i, body := range []string{"first layer\n", "second layer, a bit longer\n"} {
		layer := filepath.Join(t.TempDir(), "layer.tar.gz")
		raw, _ := testimages.TarOf([]testimages.Entry{testimages.File("f", strings.Repeat(body, 2000), 0o644)})
		os.WriteFile(layer, gzipped(t, raw), 0o644)
		seenBefore(t, layer)
		if code, stderr := flattenRun(t, "-o", filepath.Join(t.TempDir(), "out.tar"), "tar:"+layer); code != exitOK {
			t.Fatalf("flatten %d: exit %d: %s", i, code, stderr)
		}
	}
	cache := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "ocidisk")
	layers, _ := filepath.Glob(filepath.Join(cache, "layers", "sha256", "*"))
	if len(layers) != 2 {
		t.Fatalf("cached layers: %q", layers)
	}
	age := func(p string, d time.Duration) {
		when := time.Now().Add(-d)
		os.Chtimes(p, when, when)
	}
	age(layers[0], 72*time.Hour)
	age(layers[1], time.Minute)

	code, stdout, stderr := runCLI(t, "cache", "du")
	if code != exitOK {
		t.Fatalf("cache du: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) < 4 || !strings.Contains(lines[0], "LAST USE") || !strings.Contains(lines[1], "layer") ||
		!strings.Contains(lines[1], filepath.Base(layers[0])) || !strings.Contains(lines[1], time.Now().Add(-72*time.Hour).UTC().Format("2006-01-02")) {
		t.Errorf("cache du does not list the oldest layer first:\n%s", stdout)
	}
	if !regexp.MustCompile(`^total [0-9.]+ [KM]iB in [0-9]+ entries, in ` + regexp.QuoteMeta(cache) + ` \(builds keep it under `).MatchString(lines[len(lines)-1]) {
		t.Errorf("cache du's last line: %q", lines[len(lines)-1])
	}

	code, stdout, stderr = runCLI(t, "cache", "prune", "--older-than", "2d")
	if _, err := os.Stat(layers[0]); code != exitOK || err == nil || !strings.Contains(stdout, "removed 1 entries") {
		t.Errorf("cache prune --older-than 2d: exit %d %s%s; old layer: %v", code, stdout, stderr, err)
	}
	// The other layer was used a minute ago: a build may be reading it.
	code, stdout, _ = runCLI(t, "cache", "prune", "--max-size", "1KiB")
	if _, err := os.Stat(layers[1]); code != exitOK || err != nil {
		t.Errorf("cache prune --max-size 1KiB removed a layer used a minute ago: %s", stdout)
	}
	age(layers[1], time.Hour)
	code, stdout, _ = runCLI(t, "cache", "prune", "--max-size", "1KiB")
	if _, err := os.Stat(layers[1]); code != exitOK || err == nil {
		t.Errorf("cache prune --max-size 1KiB kept a layer used an hour ago: %s", stdout)
	}

	for _, args := range [][]string{{"cache"}, {"cache", "frob"}, {"cache", "du", "--max-size", "1GiB"}, {"cache", "prune", "--older-than", "soon"}, {"cache", "prune", "--max-size", "lots"}} {
		if code, _, stderr := runCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d (%s), want %d", args, code, stderr, exitUsage)
		}
	}
}
