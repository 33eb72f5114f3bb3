package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
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

// randomCard returns a file of n random bytes: a card that held something
// else before.
func randomCard(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	rng := rand.New(rand.NewChaCha8([32]byte{13, 2}))
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	p := filepath.Join(t.TempDir(), "card.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 13.2: an image flashed onto a used card, with its .bmap and
// without, gives a card whose filesystems check clean and that boots;
// without a .bmap the card holds the image byte for byte, holes included.
func TestFlashUsedCardBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and boots an image")
	}
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	img := buildImage(t, "--board", "qemu-virt-arm64", "--kernel", "deb:"+kernel, "--bmap", "oci:"+root)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		whole bool
	}{{"with .bmap", nil, false}, {"without a .bmap", []string{"--no-bmap"}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			card := randomCard(t, len(data)+1<<20)
			args := append(append([]string{"flash", "--allow-file"}, tc.args...), img, card)
			if code, stdout, stderr := runCLI(t, args...); code != exitOK {
				t.Fatalf("ocidisk %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
			}
			if tc.whole {
				got, err := os.ReadFile(card)
				if err != nil {
					t.Fatal(err)
				}
				if i := firstDifference(got[:len(data)], data); i >= 0 {
					t.Errorf("the card differs from the image at byte %d", i)
				}
			}
			checkStatic(t, card)
			code, out := bootTest(t, card, "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "120s")
			if code != exitOK {
				t.Fatalf("the flashed card did not boot (exit %d):\n%s", code, tail(out, 40))
			}
		})
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// loopDevice attaches a file of size bytes of a pattern as a loop block
// device: a small card. It returns the device and the file.
func loopDevice(t *testing.T, size int) (dev, file string) {
	t.Helper()
	losetup := hosttool.Require(t, "losetup", "mount")
	if os.Getuid() != 0 {
		hosttool.Missing(t, "a loop device needs root")
	}
	file = usedCard(t, size)
	out, err := exec.Command(losetup, "--find", "--show", file).Output()
	if err != nil {
		hosttool.Missing(t, fmt.Sprintf("losetup --find --show: %v (no loop devices here?)", err))
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command(losetup, "--detach", dev).Run() })
	return dev, file
}

// Issue 13.12: a compressed image without a .bmap is refused by a disk too
// small for it before anything is written, whether its format records its
// size (xz, zstd) or it must be decompressed once to know (gzip).
func TestFlashRefusesSmallDiskBeforeWriting(t *testing.T) {
	for _, format := range []string{"gz", "xz", "zstd"} {
		t.Run(format, func(t *testing.T) {
			raw, comp := compressedImage(t, format)
			st, _ := os.Stat(raw)
			dev, file := loopDevice(t, 4<<20)
			before, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI(t, "flash", "--yes", "--force", comp, dev)
			if code != exitFailure || !strings.Contains(stderr, "refusing to write "+dev) || !strings.Contains(stderr, "larger than the disk") {
				t.Errorf("flash of a %d-byte image to a 4 MiB disk: exit %d\n%s%s", st.Size(), code, stdout, stderr)
			}
			if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
				t.Errorf("the disk was written before the refusal")
			}
		})
	}
}
