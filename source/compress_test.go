package source

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// TestDecompress sends data through each compressor as its tool writes it
// and opens it as a tar: layer, which must come out as the bytes put in.
// xz with a branch filter is refused, saying why.
func TestDecompress(t *testing.T) {
	data := bytes.Repeat([]byte("ocidisk decompresses layers once\n"), 40000)
	for i := range data {
		if i%97 == 0 {
			data[i] = byte(i)
		}
	}
	tests := []struct {
		name, tool, pkg string
		args            []string
		fails           bool // valid, but not supported
	}{
		{"plain", "", "", nil, false},
		{"gzip", "gzip", "gzip", []string{"-c"}, false},
		{"zstd", "zstd", "zstd", []string{"-c", "-q"}, false},
		{"bzip2", "bzip2", "bzip2", []string{"-c"}, false},
		{"lz4", "lz4", "lz4", []string{"-c", "-q"}, false},
		{"xz", "xz", "xz-utils", []string{"-c"}, false},
		{"xz blocks", "xz", "xz-utils", []string{"-c", "-T2", "--block-size=100KiB"}, false},
		{"xz arm64 filter", "xz", "xz-utils", []string{"-c", "--arm64", "--lzma2"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := data
			if tt.tool != "" {
				cmd := exec.Command(hosttool.Require(t, tt.tool, tt.pkg), tt.args...)
				cmd.Stdin = bytes.NewReader(data)
				var err error
				if in, err = cmd.Output(); err != nil {
					t.Fatalf("%s %v: %v", tt.tool, tt.args, err)
				}
			}
			file := filepath.Join(t.TempDir(), "layer")
			if err := os.WriteFile(file, in, 0o644); err != nil {
				t.Fatal(err)
			}
			im, err := Open(t.Context(), "tar:"+file, Options{CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			sr, err := im.Layers[0].Open(t.Context())
			if tt.fails {
				if err == nil || !strings.Contains(err.Error(), "unsupported") {
					t.Errorf("got %v, want an error saying the input is unsupported", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(io.NewSectionReader(sr, 0, sr.Size()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("got %d bytes back, want the %d put in", len(got), len(data))
			}
		})
	}
}

// A truncated compressed layer is an error saying so, not a short layer.
func TestTruncatedLayer(t *testing.T) {
	data := bytes.Repeat([]byte("a layer cut short\n"), 100000)
	for _, tool := range []struct{ name, pkg string }{{"gzip", "gzip"}, {"zstd", "zstd"}, {"xz", "xz-utils"}, {"bzip2", "bzip2"}, {"lz4", "lz4"}} {
		cmd := exec.Command(hosttool.Require(t, tool.name, tool.pkg), "-c")
		cmd.Stdin = bytes.NewReader(data)
		in, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "layer")
		if err := os.WriteFile(file, in[:len(in)-5], 0o644); err != nil {
			t.Fatal(err)
		}
		im, err := Open(t.Context(), "tar:"+file, Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = im.Layers[0].Open(t.Context())
		im.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "layer sha256:") || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("%s, cut short: %v; want a truncation error naming the layer", tool.name, err)
		}
	}
}

// TestCorruptXZLayer: a layer whose xz is damaged in its first block fails
// to open, and the rest of the blob is read for its digest only after the
// decoder's goroutines stopped reading it (run with -race).
func TestCorruptXZLayer(t *testing.T) {
	data := bytes.Repeat([]byte("layer bytes, not a tar, which does not matter here\n"), 100000)
	cmd := exec.Command(hosttool.Require(t, "xz", "xz-utils"), "-c", "-T2", "--block-size=64KiB")
	cmd.Stdin = bytes.NewReader(data)
	xzdata, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	xzdata[100] ^= 0xFF // inside the first block
	file := filepath.Join(t.TempDir(), "layer.tar.xz")
	if err := os.WriteFile(file, xzdata, 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := Open(t.Context(), "tar:"+file, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if _, err := im.Layers[0].Open(t.Context()); err == nil || !strings.Contains(err.Error(), "xz") {
		t.Fatalf("err = %v, want an xz error", err)
	}
}
