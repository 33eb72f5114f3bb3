package source

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ocidisk/ocidisk/testimages"
)

// TestCacheFromRebuild checks, through the cache directory, that a first
// build keeps no uncompressed copy of a compressed local layer (not even
// under a temporary name while it runs), that the second build caches it
// under its diffID, and that the third reads that copy instead of making
// another.
func TestCacheFromRebuild(t *testing.T) {
	dir := t.TempDir()
	img, tars := sampleImage(t)
	layout := filepath.Join(dir, "layout")
	if err := testimages.WriteLayout(layout, "", img); err != nil {
		t.Fatal(err)
	}
	one, err := testimages.TarOf([]testimages.Entry{testimages.File("etc/motd", strings.Repeat("hello ", 5000), 0o644)})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(one)
	zw.Close()
	tarGz := filepath.Join(dir, "root.tar.gz")
	if err := os.WriteFile(tarGz, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, spec string
		want       [][]byte
		compressed int // layers stored compressed: the ones cached
	}{
		{"oci layout, gzip and zstd and plain layers", "oci:" + layout, tars, 2},
		{"tar.gz without a diffID", "tar:" + tarGz, [][]byte{one}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			layers := filepath.Join(cacheDir, "layers", "sha256")
			names := func() []string {
				ents, _ := os.ReadDir(layers)
				var out []string
				for _, e := range ents {
					out = append(out, e.Name())
				}
				return out
			}
			inodes := func() map[string]uint64 {
				out := map[string]uint64{}
				for _, n := range names() {
					st, err := os.Stat(filepath.Join(layers, n))
					if err != nil {
						t.Fatal(err)
					}
					out[n] = st.Sys().(*syscall.Stat_t).Ino
				}
				return out
			}
			var cached map[string]uint64
			for build := 1; build <= 3; build++ {
				im, got := openAll(t, tc.spec, Options{CacheDir: cacheDir})
				for i := range tc.want {
					if !bytes.Equal(got[i], tc.want[i]) {
						t.Errorf("build %d: layer %d differs from its tar", build, i)
					}
				}
				open := names()
				im.Close()
				switch build {
				case 1:
					if len(open) != 0 || len(names()) != 0 {
						t.Errorf("a first build left an uncompressed copy in the cache: %v while open, %v after", open, names())
					}
					if seen, _ := os.ReadDir(filepath.Join(cacheDir, "seen", "sha256")); len(seen) != tc.compressed {
						t.Errorf("%d layers marked seen, want %d", len(seen), tc.compressed)
					}
				case 2:
					cached = inodes()
					want := make([]string, 0, len(tc.want))
					for _, b := range tc.want[:tc.compressed] { // sampleImage's plain layer is last
						want = append(want, fmt.Sprintf("%x", sha256.Sum256(b)))
					}
					slices.Sort(want)
					if !slices.Equal(names(), want) {
						t.Errorf("the second build cached %v, want the diffIDs %v", names(), want)
					}
				case 3:
					if got := inodes(); !maps.Equal(got, cached) {
						t.Errorf("the third build rewrote the cache: inodes %v, were %v", got, cached)
					}
				}
			}
		})
	}
}
