package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
)

// compressedImage writes a small disk image and its compressed copy in
// format (gz, xz, zstd), without a .bmap, and returns both paths.
func compressedImage(t *testing.T, format string) (raw, compressed string) {
	t.Helper()
	part := bytes.Repeat([]byte("ocidisk flash integrity\n"), 300_000)
	raw = filepath.Join(t.TempDir(), "disk.img")
	l := &diskimage.Layout{Table: diskimage.GPT, Seed: []byte("flash integrity"), Partitions: []diskimage.Partition{
		{Name: "data", Kind: diskimage.KindLinux, FS: diskimage.Raw(bytes.NewReader(part), int64(len(part)))},
	}}
	res, err := diskimage.Write(context.Background(), raw, l, diskimage.WriteOptions{Compress: format, KeepRaw: true})
	if err != nil {
		t.Fatal(err)
	}
	return raw, res.Compressed
}

// Issue 13.1: a compressed image cut short, flashed without a .bmap, fails
// saying it is truncated: never "read back and verified" over half an
// image.
func TestFlashTruncatedImage(t *testing.T) {
	for _, format := range []string{"gz", "xz", "zstd"} {
		t.Run(format, func(t *testing.T) {
			raw, comp := compressedImage(t, format)
			data, err := os.ReadFile(comp)
			if err != nil {
				t.Fatal(err)
			}
			cut := filepath.Join(t.TempDir(), filepath.Base(comp))
			if err := os.WriteFile(cut, data[:len(data)*6/10], 0o644); err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(raw)
			card := usedCard(t, int(st.Size()))
			code, stdout, stderr := runCLI(t, "flash", "--allow-file", cut, card)
			if code != exitFailure || strings.Contains(stdout, "verified") || !strings.Contains(stderr, "truncated") || !strings.Contains(stderr, cut) {
				t.Errorf("flash of a truncated %s image: exit %d\nstdout: %s\nstderr: %s\nwant exit 1 and an error naming it and saying it is truncated", format, code, stdout, stderr)
			}
		})
	}
}
