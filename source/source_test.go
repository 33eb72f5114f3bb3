package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocidisk/ocidisk/testimages"
)

// openAll opens spec and every layer, and returns the image and the
// uncompressed layers' bytes.
func openAll(t *testing.T, spec string, opts Options) (*Image, [][]byte) {
	t.Helper()
	im, err := Open(t.Context(), spec, opts)
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	t.Cleanup(func() { im.Close() })
	var out [][]byte
	for _, l := range im.Layers {
		sr, err := l.Open(t.Context())
		if err != nil {
			t.Fatalf("open layer: %v", err)
		}
		b, err := io.ReadAll(sr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return im, out
}

func sampleImage(t *testing.T) (v1.Image, [][]byte) {
	t.Helper()
	var tars [][]byte
	var ls []v1.Layer
	for i := range 3 {
		b, err := testimages.TarOf([]testimages.Entry{testimages.File(fmt.Sprintf("f%d", i), strings.Repeat("x", 1000*i), 0o644)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := testimages.LayerFromTar(b, []string{testimages.Gzip, testimages.Zstd, testimages.Uncompressed}[i])
		if err != nil {
			t.Fatal(err)
		}
		tars, ls = append(tars, b), append(ls, l)
	}
	img, err := testimages.ImageOf(ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img, tars
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestRegistryBlobCache pulls from a real registry and checks the cache:
// blobs are kept by digest, and a damaged cached blob is found by its
// digest on the next use, dropped and downloaded again.
func TestRegistryBlobCache(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	host := testimages.Registry(t)
	img, tars := sampleImage(t)
	ref := host + "/cache/sample:v1"
	if _, err := testimages.Push(ref, img); err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	opts := Options{CacheDir: cacheDir}
	im, got := openAll(t, ref, opts)
	for i := range tars {
		if !bytes.Equal(got[i], tars[i]) {
			t.Errorf("layer %d differs from what was pushed", i)
		}
	}
	digest, _ := img.Digest()
	if im.ID != digest.String() {
		t.Errorf("ID = %s, want the manifest digest %s", im.ID, digest)
	}
	layers, _ := img.Layers()
	var blobs []string
	for _, l := range layers {
		d, _ := l.Digest()
		p := filepath.Join(cacheDir, "blobs", "sha256", d.Hex)
		if fileSHA(t, p) != d.Hex {
			t.Fatalf("cached blob %s does not hold the blob", p)
		}
		blobs = append(blobs, p)
	}

	// Damage every cached blob and drop the uncompressed layers: the next
	// open must notice, fetch again and repair the cache.
	for _, p := range blobs {
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0xff
		os.WriteFile(p, b, 0o644)
	}
	os.RemoveAll(filepath.Join(cacheDir, "layers"))
	os.RemoveAll(filepath.Join(cacheDir, "diffids"))
	_, got = openAll(t, ref, opts)
	for i := range tars {
		if !bytes.Equal(got[i], tars[i]) {
			t.Errorf("after repair, layer %d differs from what was pushed", i)
		}
	}
	for i, p := range blobs {
		d, _ := layers[i].Digest()
		if fileSHA(t, p) != d.Hex {
			t.Errorf("cached blob %s was not repaired", p)
		}
	}
}

// TestCacheAtomic checks that a failed decompression leaves nothing in the
// cache and that temporary files are never taken for layers.
func TestCacheAtomic(t *testing.T) {
	good, err := testimages.TarOf([]testimages.Entry{testimages.File("f", strings.Repeat("data ", 10000), 0o644)})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(good)
	zw.Close()
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "cache")
	truncated := filepath.Join(dir, "truncated.tar.gz")
	os.WriteFile(truncated, gz.Bytes()[:gz.Len()/2], 0o644)
	im, err := Open(t.Context(), "tar:"+truncated, Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if _, err := im.Layers[0].Open(t.Context()); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("truncated gzip: err = %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(cacheDir, "layers", "sha256")); len(ents) != 0 {
		t.Errorf("a failed decompression left %v in the cache", ents)
	}

	// A temporary file named like a finished layer's temporary is ignored,
	// and the good layer lands under its diffID (on its second build: see
	// TestCacheFromRebuild).
	full := filepath.Join(dir, "good.tar.gz")
	os.WriteFile(full, gz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(cacheDir, "layers", "sha256", ".tmp-123"), []byte("junk"), 0o644)
	for range 2 {
		_, got := openAll(t, "tar:"+full, Options{CacheDir: cacheDir})
		if !bytes.Equal(got[0], good) {
			t.Errorf("layer differs")
		}
	}
	want := filepath.Join(cacheDir, "layers", "sha256", fmt.Sprintf("%x", sha256.Sum256(good)))
	if _, err := os.Stat(want); err != nil {
		t.Errorf("layer not cached under its diffID: %v", err)
	}
}

// TestProgress checks that progress rises to the total and never beyond.
func TestProgress(t *testing.T) {
	img, _ := sampleImage(t)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := testimages.WriteLayout(dir, "", img); err != nil {
		t.Fatal(err)
	}
	var (
		mu          sync.Mutex
		last, total int64
		calls       int
	)
	opts := Options{CacheDir: t.TempDir(), Progress: func(done, tot int64) {
		mu.Lock()
		defer mu.Unlock()
		if done < last || done > tot {
			t.Errorf("progress %d/%d after %d", done, tot, last)
		}
		last, total, calls = done, tot, calls+1
	}}
	openAll(t, "oci:"+dir, opts)
	if calls == 0 || last != total {
		t.Errorf("progress ended at %d/%d after %d calls", last, total, calls)
	}
}

// TestSpecErrors checks how spellings are told apart without any network:
// a failing transport stands in for the registry.
func TestSpecErrors(t *testing.T) {
	offline := Options{CacheDir: t.TempDir(), Transport: failingTransport{}}
	for _, tc := range []struct {
		spec  string
		usage bool
		want  string
	}{
		{"nope:/x", true, `unknown transport "nope"`},
		{"containers-storage:/var/x", true, `unknown transport "containers-storage"`},
		{"Not A Reference", true, "neither a registry reference nor TRANSPORT:PATH"},
		{"localhost:5000/img:tag", false, "offline"}, // a port, not a transport
		{"busybox:latest", false, "offline"},
		{"docker://busybox", false, "offline"},
		{"oci:", false, "no such file"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			_, err := Open(t.Context(), tc.spec, offline)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrUsage) != tc.usage {
				t.Errorf("err = %v; want one saying %q, usage error %v", err, tc.want, tc.usage)
			}
		})
	}
	if _, err := Open(t.Context(), "oci:/x", Options{Platform: "arm64"}); !errors.Is(err, ErrUsage) {
		t.Errorf("a platform without OS: err = %v, want a usage error", err)
	}
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("offline")
}

func TestPlatformMatches(t *testing.T) {
	p := func(s string) v1.Platform {
		pp, err := v1.ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return *pp
	}
	for _, tc := range []struct {
		want, have string
		ok         bool
	}{
		{"linux/arm64", "linux/arm64", true},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64", "linux/amd64", false},
		{"linux/arm/v7", "linux/arm", true},
		{"linux/arm/v7", "linux/arm/v6", false},
		{"linux/arm/v6", "linux/arm/v6", true},
		{"linux/arm", "linux/arm/v6", true},
		{"linux/arm64", "windows/arm64", false},
	} {
		if got := platformMatches(p(tc.want), p(tc.have)); got != tc.ok {
			t.Errorf("platformMatches(%s, %s) = %v, want %v", tc.want, tc.have, got, tc.ok)
		}
	}
}

func TestSplitPathRef(t *testing.T) {
	dir := t.TempDir()
	colon := filepath.Join(dir, "a:b")
	os.Mkdir(colon, 0o755)
	for _, tc := range []struct{ in, path, ref string }{
		{dir, dir, ""},
		{dir + ":v1", dir, "v1"},
		{dir + ":example/img:v1", dir, "example/img:v1"},
		{dir + "@sha256:" + strings.Repeat("a", 64), dir, "@sha256:" + strings.Repeat("a", 64)},
		{colon, colon, ""}, // a path may hold a colon
		{colon + ":v2", colon, "v2"},
		{"/nonexistent/x:tag", "/nonexistent/x", "tag"},
	} {
		p, ref := splitPathRef(tc.in)
		if p != tc.path || ref != tc.ref {
			t.Errorf("splitPathRef(%q) = %q, %q; want %q, %q", tc.in, p, ref, tc.path, tc.ref)
		}
	}
}

// TestDebData checks the ar parser on broken packages.
func TestDebData(t *testing.T) {
	member := func(name string, data string) string {
		h := fmt.Sprintf("%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(data))
		if len(data)%2 == 1 {
			data += "\n"
		}
		return h + data
	}
	for _, tc := range []struct {
		name, ar, want string
	}{
		{"not ar", "hello", "not a Debian package"},
		{"no data", "!<arch>\n" + member("debian-binary", "2.0\n") + member("control.tar.xz", "x"), "no data.tar member (members: debian-binary, control.tar.xz)"},
		{"bad size", "!<arch>\n" + strings.Replace(member("debian-binary", "2.0\n"), "4         `", "99999     `", 1), "bad size"},
		{"ok", "!<arch>\n" + member("debian-binary", "2.0\n") + member("control.tar.xz", "c") + member("data.tar/", "DATA"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr, err := debData(io.NewSectionReader(strings.NewReader(tc.ar), 0, int64(len(tc.ar))))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(sr)
				if string(b) != "DATA" {
					t.Errorf("data member = %q", b)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOpenCancelled checks that a cancelled context stops a layer open.
func TestOpenCancelled(t *testing.T) {
	img, _ := sampleImage(t)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := testimages.WriteLayout(dir, "", img); err != nil {
		t.Fatal(err)
	}
	im, err := Open(t.Context(), "oci:"+dir, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := im.Layers[0].Open(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
