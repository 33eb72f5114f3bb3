package diskimage_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// TestWriteQcow2: Format qcow2 writes a qcow2 file at the path, which
// qemu-img finds clean and equal to the raw image of the same layout, the
// same bytes each time, and nothing else beside it.
func TestWriteQcow2(t *testing.T) {
	qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
	for _, table := range []diskimage.Table{diskimage.MBR, diskimage.GPT} {
		t.Run(string(table), func(t *testing.T) {
			raw, rawRes := write(t, newImage(table, 7).layout, diskimage.WriteOptions{})
			var sums []string
			for range 2 {
				dir := t.TempDir()
				q := filepath.Join(dir, "disk.qcow2")
				res, err := diskimage.Write(context.Background(), q, newImage(table, 7).layout, diskimage.WriteOptions{Format: diskimage.FormatQcow2})
				if err != nil {
					t.Fatal(err)
				}
				if res.Image != q || res.Format != diskimage.FormatQcow2 || res.Size != rawRes.Size || res.DiskID != rawRes.DiskID {
					t.Fatalf("result %+v; raw %+v", res, rawRes)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Errorf("%d files beside the qcow2 image, want none (the raw one is removed)", len(ents)-1)
				}
				if out, err := exec.Command(qemuImg, "check", q).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors were found") {
					t.Fatalf("qemu-img check: %v\n%s", err, out)
				}
				if out, err := exec.Command(qemuImg, "compare", "-f", "raw", "-F", "qcow2", raw, q).CombinedOutput(); err != nil {
					t.Fatalf("qemu-img compare with the raw image: %v\n%s", err, out)
				}
				sums = append(sums, fileSHA(t, q))
			}
			if sums[0] != sums[1] {
				t.Error("two writes of the same layout give different qcow2 files")
			}
		})
	}
}

// TestWriteQcow2Refuses: a block map and compression are for raw images.
func TestWriteQcow2Refuses(t *testing.T) {
	for _, tc := range []struct {
		opts diskimage.WriteOptions
		want string
	}{
		{diskimage.WriteOptions{Format: diskimage.FormatQcow2, Bmap: true}, "block map"},
		{diskimage.WriteOptions{Format: diskimage.FormatQcow2, Compress: "zstd"}, "compression (zstd)"},
		{diskimage.WriteOptions{Format: "vmdk"}, `output format "vmdk": want raw or qcow2`},
	} {
		path := filepath.Join(t.TempDir(), "disk.img")
		if _, err := diskimage.Write(context.Background(), path, newImage(diskimage.MBR, 1).layout, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.want)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%+v: something at the output path", tc.opts)
		}
	}
}
