package rootfs

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/ocidisk/ocidisk/bench"
	"github.com/ocidisk/ocidisk/source"
)

// benchLayers and benchLayerBytes make a layer set of 8 × 136 MiB = 1088
// MiB uncompressed.
const (
	benchLayers     = 8
	benchLayerBytes = 136 << 20
)

// BenchmarkFlatten1GiB flattens an OCI layout of eight gzip layers, over 1
// GiB uncompressed and 40,000 entries, from a cold cache: verifying,
// decompressing (in parallel) and caching every layer, then reading the
// headers into a tree. It reports peak RSS during the flatten, which must
// stay under 150 MiB: memory follows entries, not bytes.
//
//	go test -run '^$' -bench Flatten1GiB -benchtime 3x ./rootfs/
func BenchmarkFlatten1GiB(b *testing.B) {
	dir := b.TempDir()
	layout, total, err := writeBenchLayout(filepath.Join(dir, "layout"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	bench.ResetPeakRSS()
	b.ResetTimer()
	var entries int
	for i := 0; b.Loop(); i++ {
		im, err := Load(b.Context(), "oci:"+layout, source.Options{CacheDir: filepath.Join(dir, "cache"+strconv.Itoa(i))})
		if err != nil {
			b.Fatal(err)
		}
		entries = im.Tree.Stats().Entries
		im.Close()
		b.StopTimer()
		os.RemoveAll(filepath.Join(dir, "cache"+strconv.Itoa(i)))
		b.StartTimer()
	}
	b.ReportMetric(float64(entries), "entries")
	peak, err := bench.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
}

// BenchmarkFlattenWarm1GiB is the same layer set with every layer already
// in the cache: what a rebuild costs.
func BenchmarkFlattenWarm1GiB(b *testing.B) {
	dir := b.TempDir()
	layout, total, err := writeBenchLayout(filepath.Join(dir, "layout"))
	if err != nil {
		b.Fatal(err)
	}
	opts := source.Options{CacheDir: filepath.Join(dir, "cache")}
	im, err := Load(b.Context(), "oci:"+layout, opts)
	if err != nil {
		b.Fatal(err)
	}
	im.Close()
	b.SetBytes(total)
	bench.ResetPeakRSS()
	b.ResetTimer()
	for b.Loop() {
		im, err := Load(b.Context(), "oci:"+layout, opts)
		if err != nil {
			b.Fatal(err)
		}
		im.Close()
	}
	peak, err := bench.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
}

// writeBenchLayout writes the layer set as an OCI layout, streaming: each
// layer is generated, gzipped and hashed in one pass, never held in memory.
// It returns the layout and the uncompressed size.
func writeBenchLayout(dir string) (string, int64, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", 0, err
	}
	var (
		descs []v1.Descriptor
		diffs []v1.Hash
		total int64
	)
	for i := range benchLayers {
		d, diff, n, err := writeBenchLayer(blobs, i)
		if err != nil {
			return "", 0, err
		}
		descs, diffs, total = append(descs, d), append(diffs, diff), total+n
	}
	cfg, err := json.Marshal(v1.ConfigFile{OS: "linux", Architecture: "arm64", RootFS: v1.RootFS{Type: "layers", DiffIDs: diffs}})
	if err != nil {
		return "", 0, err
	}
	cfgDesc, err := writeBlob(blobs, cfg, types.OCIConfigJSON)
	if err != nil {
		return "", 0, err
	}
	m, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfgDesc, Layers: descs})
	if err != nil {
		return "", 0, err
	}
	mDesc, err := writeBlob(blobs, m, types.OCIManifestSchema1)
	if err != nil {
		return "", 0, err
	}
	idx, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{mDesc}})
	if err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return "", 0, err
	}
	return dir, total, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

func writeBlob(dir string, b []byte, mt types.MediaType) (v1.Descriptor, error) {
	s := sha256.Sum256(b)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
	return v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: h}, os.WriteFile(filepath.Join(dir, h.Hex), b, 0o644)
}

// hashCount hashes and counts what is written through it.
type hashCount struct {
	h hash.Hash
	n int64
}

func (c *hashCount) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

// writeBenchLayer writes layer i: files of 1 KiB to 1 MiB (log-uniform)
// in directories of 50, content a third random and two thirds text, so
// that it compresses about as much as real layers do; the first layer also
// has 30,000 small files.
func writeBenchLayer(blobs string, i int) (v1.Descriptor, v1.Hash, int64, error) {
	tmp, err := os.CreateTemp(blobs, "layer-")
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, 0, err
	}
	defer tmp.Close()
	comp, raw := &hashCount{h: sha256.New()}, &hashCount{h: sha256.New()}
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, comp), 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, 0, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, raw))
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	block := make([]byte, 4096)
	text := strings.Repeat("the quick brown fox jumps over the lazy dog; ", 100)
	mtime := time.Unix(1_700_000_000, 0)
	var written int64
	for f := 0; written < benchLayerBytes; f++ {
		if f%50 == 0 {
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/d%d/", i, f/50), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
				return v1.Descriptor{}, v1.Hash{}, 0, err
			}
		}
		size := min(int64(1<<(10+rng.IntN(11)))+rng.Int64N(1024), benchLayerBytes-written)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/d%d/f%d", i, f/50, f), Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: mtime}); err != nil {
			return v1.Descriptor{}, v1.Hash{}, 0, err
		}
		for left := size; left > 0; {
			for j := 0; j < 1024; j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					block[j+k] = byte(v >> (8 * k))
				}
			}
			copy(block[1024:], text)
			n := min(left, int64(len(block)))
			if _, err := tw.Write(block[:n]); err != nil {
				return v1.Descriptor{}, v1.Hash{}, 0, err
			}
			left -= n
		}
		written += size
	}
	for f := range 30_000 * btoi(i == 0) {
		body := fmt.Sprintf("small file %d\n", f)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("small/%d/%d", f/1000, f), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}); err != nil {
			return v1.Descriptor{}, v1.Hash{}, 0, err
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		return v1.Descriptor{}, v1.Hash{}, 0, err
	}
	if err := zw.Close(); err != nil {
		return v1.Descriptor{}, v1.Hash{}, 0, err
	}
	if err := bw.Flush(); err != nil {
		return v1.Descriptor{}, v1.Hash{}, 0, err
	}
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(comp.h.Sum(nil))}
	diff := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(raw.h.Sum(nil))}
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, d.Hex)); err != nil {
		return v1.Descriptor{}, v1.Hash{}, 0, err
	}
	return v1.Descriptor{MediaType: types.OCILayer, Size: comp.n, Digest: d}, diff, raw.n, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
