package qcow2_test

import (
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/diskimage/qcow2"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/pipeline"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// TestWritePipelineImage converts an image `ocidisk build` makes (the
// busybox test root on qemu-virt-arm64), with the ranges its .bmap maps,
// which are the record of the build's writes.
func TestWritePipelineImage(t *testing.T) {
	qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := pipeline.Config{
		Board:   b,
		Source:  "oci:" + debian.BusyboxRoot(t),
		Kernel:  "deb:" + debian.KernelDeb(t),
		Output:  filepath.Join(dir, "disk.img"),
		Bmap:    true,
		Epoch:   time.Unix(1700000000, 0),
		Sources: source.Options{Platform: pipeline.Platform(b), CacheDir: filepath.Join(dir, "cache")},
	}
	res, err := pipeline.Build(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ranges := bmapRanges(t, res.Bmap)

	raw, err := os.Open(res.Image)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	img := filepath.Join(dir, "disk.qcow2")
	n := writeFile(t, img, raw, res.Size, ranges)

	ours := judge(t, img, res.Image, res.Size).Allocated
	// The image carries the data, not the holes: no more clusters than
	// qemu-img's own conversion, which finds the data by itself.
	conv := filepath.Join(dir, "convert.qcow2")
	if out, err := exec.Command(qemuImg, "convert", "-O", "qcow2", res.Image, conv).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	if theirs := check(t, conv).Allocated; ours > theirs {
		t.Errorf("%d clusters allocated, qemu-img convert allocates %d", ours, theirs)
	}
	t.Logf("raw %d bytes, %d mapped; qcow2 %d bytes, %d data clusters", res.Size, res.Mapped, n, ours)
}

// bmapRanges reads the byte ranges a .bmap maps.
func bmapRanges(t *testing.T, path string) []qcow2.Range {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bm struct {
		BlockSize int64    `xml:"BlockSize"`
		ImageSize int64    `xml:"ImageSize"`
		Ranges    []string `xml:"BlockMap>Range"`
	}
	if err := xml.Unmarshal(data, &bm); err != nil {
		t.Fatal(err)
	}
	var out []qcow2.Range
	for _, s := range bm.Ranges {
		var first, last int64
		s = strings.TrimSpace(s)
		if _, err := fmt.Sscanf(s, "%d-%d", &first, &last); err != nil {
			if _, err := fmt.Sscanf(s, "%d", &first); err != nil {
				t.Fatalf("bmap range %q", s)
			}
			last = first
		}
		off := first * bm.BlockSize
		out = append(out, qcow2.Range{Off: off, Len: min((last+1)*bm.BlockSize, bm.ImageSize) - off})
	}
	if len(out) == 0 {
		t.Fatal("the .bmap maps nothing")
	}
	return out
}
