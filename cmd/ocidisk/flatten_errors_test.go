package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocidisk/ocidisk/testimages"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layoutOf writes an image of raw layer blobs as an OCI layout and returns
// its directory and the digests of the layers.
func layoutOf(t *testing.T, dir string, blobs ...v1.Layer) (string, []v1.Hash) {
	t.Helper()
	img, err := testimages.ImageOf(blobs...)
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(dir, "layout")
	if err := testimages.WriteLayout(dir, "", img); err != nil {
		t.Fatal(err)
	}
	var ds []v1.Hash
	for _, l := range blobs {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return dir, ds
}

func blobPath(dir string, d v1.Hash) string { return filepath.Join(dir, "blobs", d.Algorithm, d.Hex) }

// TestFlattenBadInput checks each kind of bad input: exit status 1 (2 for
// usage errors), one line naming the input and what is wrong, and no file
// at the output path.
func TestFlattenBadInput(t *testing.T) {
	isolate(t)
	tarBytes, err := testimages.TarOf([]testimages.Entry{testimages.File("etc/hostname", "box\n", 0o644)})
	if err != nil {
		t.Fatal(err)
	}
	gz := gzipped(t, tarBytes)

	tests := []struct {
		name  string
		spec  func(t *testing.T, dir string) string // makes the input in dir, returns SOURCE
		code  int
		wants []string // parts of the message; "@DIR" is replaced by the input's path
	}{{
		name: "compressed blob does not match its digest",
		spec: func(t *testing.T, dir string) string {
			dir, ds := layoutOf(t, dir, static.NewLayer(gz, types.OCILayer))
			corrupt(t, blobPath(dir, ds[0]), len(gz)/2)
			return "oci:" + dir
		},
		code: 1, wants: []string{"layer sha256:", "bytes do not match the digest"},
	}, {
		name: "uncompressed blob does not match its digest",
		spec: func(t *testing.T, dir string) string {
			dir, ds := layoutOf(t, dir, static.NewLayer(tarBytes, types.OCIUncompressedLayer))
			corrupt(t, blobPath(dir, ds[0]), 600)
			return "oci:" + dir
		},
		code: 1, wants: []string{"layer sha256:", "bytes do not match the digest"},
	}, {
		name: "uncompressed layer does not match the config's diffID",
		spec: func(t *testing.T, dir string) string {
			// static takes the blob's digest as its diffID: wrong for gzip.
			dir, _ = layoutOf(t, dir, static.NewLayer(gz, types.OCILayer))
			return "oci:" + dir
		},
		code: 1, wants: []string{"layer sha256:", "the config says sha256:", "bytes do not match the digest"},
	}, {
		name: "truncated gzip layer",
		spec: func(t *testing.T, dir string) string {
			dir, _ = layoutOf(t, dir, static.NewLayer(gz[:len(gz)/2], types.OCILayer))
			return "oci:" + dir
		},
		code: 1, wants: []string{"layer sha256:", "gzip: unexpected EOF"},
	}, {
		name: "gzip layer that is not a tar",
		spec: func(t *testing.T, dir string) string {
			// tarball computes the true diffID (static would use the digest).
			b := gzipped(t, []byte(strings.Repeat("not a tar archive\n", 100)))
			l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
			if err != nil {
				t.Fatal(err)
			}
			dir, _ = layoutOf(t, dir, l)
			return "oci:" + dir
		},
		code: 1, wants: []string{"layer sha256:", "not a tar archive"},
	}, {
		name: "plain layer that is not a tar",
		spec: func(t *testing.T, dir string) string {
			dir, _ = layoutOf(t, dir, static.NewLayer([]byte(strings.Repeat("not a tar archive\n", 100)), types.OCIUncompressedLayer))
			return "oci:" + dir
		},
		code: 1, wants: []string{"layer sha256:", "not a tar archive"},
	}, {
		name: "unknown transport",
		spec: func(t *testing.T, dir string) string { return "nope:/some/where" },
		code: 2, wants: []string{`unknown transport "nope"`, "oci-archive:"},
	}, {
		name: "missing layout",
		spec: func(t *testing.T, dir string) string { return "oci:" + filepath.Join(dir, "missing") },
		code: 1, wants: []string{"oci:@DIR/missing", "no such file or directory"},
	}, {
		name: "missing archive",
		spec: func(t *testing.T, dir string) string { return "oci-archive:" + filepath.Join(dir, "missing.tar") },
		code: 1, wants: []string{"oci-archive:@DIR/missing.tar", "no such file or directory"},
	}, {
		name: "missing tar",
		spec: func(t *testing.T, dir string) string { return "tar:" + filepath.Join(dir, "missing.tar.gz") },
		code: 1, wants: []string{"tar:@DIR/missing.tar.gz", "no such file or directory"},
	}, {
		name: "no such tag in a layout",
		spec: func(t *testing.T, dir string) string {
			img, err := testimages.ImageOf()
			if err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(dir, "layout")
			if err := testimages.WriteLayout(dir, "v1", img); err != nil {
				t.Fatal(err)
			}
			return "oci:" + dir + ":v2"
		},
		code: 1, wants: []string{"oci:@DIR/layout", `no tag "v2"`, "tags: v1"},
	}, {
		name: "no such tag in a docker archive",
		spec: func(t *testing.T, dir string) string {
			img, err := testimages.ImageOf()
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "img.tar")
			if err := testimages.WriteDockerArchive(p, "example/img:v1", img); err != nil {
				t.Fatal(err)
			}
			return "docker-archive:" + p + ":example/img:v2"
		},
		code: 1, wants: []string{"docker-archive:@DIR/img.tar", `no image tagged "example/img:v2"`, "example/img:v1"},
	}, {
		name: "platform not in the index",
		spec: func(t *testing.T, dir string) string {
			idx, err := testimages.PlatformIndex("linux/amd64", "linux/arm/v7")
			if err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(dir, "layout")
			if err := testimages.WriteLayoutIndex(dir, "multi", idx); err != nil {
				t.Fatal(err)
			}
			return "oci:" + dir + ":multi"
		},
		code: 1, wants: []string{"oci:@DIR/layout", "no linux/arm64 in index; it has linux/amd64, linux/arm/v7"},
	}, {
		name: "single image of another platform",
		spec: func(t *testing.T, dir string) string {
			img, err := testimages.PlatformMarkerImage("linux/amd64")
			if err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(dir, "layout")
			if err := testimages.WriteLayout(dir, "", img); err != nil {
				t.Fatal(err)
			}
			return "oci:" + dir
		},
		code: 1, wants: []string{"oci:@DIR/layout", "image is for linux/amd64, not linux/arm64"},
	}, {
		name: "unsafe path",
		spec: func(t *testing.T, dir string) string {
			l, err := testimages.LayerOf([]testimages.Entry{testimages.File("../../etc/shadow", "x", 0o600)}, testimages.Gzip)
			if err != nil {
				t.Fatal(err)
			}
			dir, _ = layoutOf(t, dir, l)
			return "oci:" + dir
		},
		code: 1, wants: []string{"layer sha256:", `"../../etc/shadow"`, "path escapes the root"},
	}, {
		name: "bad platform",
		spec: func(t *testing.T, dir string) string { return "--platform=arm64" },
		code: 2, wants: []string{`platform "arm64"`},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			spec := tc.spec(t, dir)
			args := []string{spec}
			if strings.HasPrefix(spec, "--") {
				args = []string{spec, "tar:/dev/null"}
			}
			out := filepath.Join(t.TempDir(), "out.tar")
			code, stderr := flattenRun(t, append([]string{"-o", out}, args...)...)
			var wants []string
			for _, w := range tc.wants {
				wants = append(wants, strings.ReplaceAll(w, "@DIR", dir))
			}
			checkFailed(t, code, stderr, out, tc.code, wants...)
		})
	}
}

// corrupt flips one byte of a file.
func corrupt(t *testing.T, file string, at int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0xff
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFlattenUsage checks the usage errors of the command line: exit 2,
// no output.
func TestFlattenUsage(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tar:/dev/null"}, "-o OUT is required"},
		{[]string{"-o", "@OUT"}, "want one SOURCE, got 0"},
		{[]string{"-o", "@OUT", "tar:a", "tar:b"}, "want one SOURCE, got 2"},
		{[]string{"--format", "cpio", "-o", "@OUT", "tar:/dev/null"}, `--format "cpio": want one of tar`},
		{[]string{"--bogus", "-o", "@OUT", "tar:/dev/null"}, "unknown flag: --bogus"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.tar")
			var args []string
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "@OUT", out))
			}
			code, stderr := flattenRun(t, args...)
			checkFailed(t, code, stderr, out, 2, tc.want)
		})
	}
}
