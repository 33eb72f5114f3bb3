package source

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeEntry puts a cache entry of n bytes of data, last used at when.
func fakeEntry(t *testing.T, dir, kind string, n int, when time.Time) string {
	t.Helper()
	b := bytes.Repeat([]byte{byte(n), 1, 2, 3}, n/4)
	p := filepath.Join(dir, kind, "sha256", fmt.Sprintf("%x", sha256.Sum256(b)))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, when, when)
	return p
}

// CacheEntries lists least recently used first, with the bytes each takes;
// PruneCache removes by age, then by size oldest first, and never what is
// in use.
func TestCacheEntriesAndPrune(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	oldest := fakeEntry(t, dir, "layers", 64<<10, now.Add(-72*time.Hour))
	old := fakeEntry(t, dir, "blobs", 32<<10, now.Add(-48*time.Hour))
	recent := fakeEntry(t, dir, "layers", 128<<10, now.Add(-2*time.Hour))
	inUse := fakeEntry(t, dir, "layers", 256<<10, now.Add(-time.Minute))
	ents, err := CacheEntries(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 4 || ents[0].Path != oldest || ents[1].Kind != "blob" || ents[3].Path != inUse || ents[0].Size < 64<<10 {
		t.Fatalf("entries: %+v", ents)
	}
	removed, err := PruneCache(dir, PruneOptions{OlderThan: 60 * time.Hour, Now: now})
	if err != nil || len(removed) != 1 || removed[0].Path != oldest {
		t.Fatalf("prune --older-than 60h removed %+v, %v", removed, err)
	}
	// A bound below what is in use keeps it anyway.
	removed, err = PruneCache(dir, PruneOptions{MaxSize: 1, InUseSince: now.Add(-time.Hour)})
	if err != nil || len(removed) != 2 || removed[0].Path != old || removed[1].Path != recent {
		t.Fatalf("prune to 1 byte removed %+v, %v", removed, err)
	}
	if _, err := os.Stat(inUse); err != nil {
		t.Errorf("the entry in use was removed: %v", err)
	}
}

// Closing an image keeps the cache within Options.CacheMaxSize, removing
// least recently used entries first but never the ones the image used;
// its layer is stored with holes for its zeros.
func TestCacheBoundOnClose(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old := fakeEntry(t, dir, "layers", 1<<20, now.Add(-72*time.Hour))
	older := fakeEntry(t, dir, "layers", 1<<20+4096, now.Add(-96*time.Hour))
	// A layer of 64 MiB of zeros after some data: a small gzip.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("data"), 1024))
	zw.Write(make([]byte, 64<<20))
	zw.Close()
	layer := filepath.Join(t.TempDir(), "zeros.gz")
	os.WriteFile(layer, gz.Bytes(), 0o644)

	im, err := Open(t.Context(), "tar:"+layer, Options{CacheDir: dir, CacheMaxSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Layers[0].Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	im.Close()
	ents, err := CacheEntries(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range ents {
		total += e.Size
		if e.Path == older {
			t.Errorf("the least recently used entry was kept: %+v", ents)
		}
	}
	if _, err := os.Stat(old); err != nil {
		t.Errorf("an entry within the bound was removed: %v", err)
	}
	if total > 2<<20 {
		t.Errorf("the cache takes %d bytes, over its bound of 2 MiB: %+v", total, ents)
	}
	for _, e := range ents {
		if e.Kind == "layer" && e.LastUse.After(now) && e.Size > 64<<10 {
			t.Errorf("the new layer (64 MiB, mostly zeros) takes %d bytes on disk", e.Size)
		}
	}
}
