package debian

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// Concurrent users of one entry wait for a single build; a failed build
// leaves neither the entry nor its temporary directory behind.
func TestCacheEntry(t *testing.T) {
	c := &Cache{Dir: t.TempDir(), Log: nil}
	var builds atomic.Int32
	build := func(tmp string) error {
		builds.Add(1)
		return os.WriteFile(filepath.Join(tmp, "data"), []byte("x"), 0o644)
	}
	var wg sync.WaitGroup
	paths := make([]string, 8)
	for i := range paths {
		wg.Go(func() {
			p, err := c.entry("a/b", build)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		})
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Errorf("%d builds, want 1", n)
	}
	for _, p := range paths {
		if p != filepath.Join(c.Dir, "a/b") {
			t.Errorf("entry path %q", p)
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.Dir, "a/b/data")); err != nil || string(b) != "x" {
		t.Errorf("entry content %q, %v", b, err)
	}

	boom := errors.New("boom")
	if _, err := c.entry("a/bad", func(string) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("failed build returned %v, want boom", err)
	}
	left, _ := filepath.Glob(filepath.Join(c.Dir, "a", "bad*"))
	for _, p := range left {
		if filepath.Ext(p) != ".lock" {
			t.Errorf("failed build left %s", p)
		}
	}
}
