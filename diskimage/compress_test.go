package diskimage_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/compression"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// TestDeterministicAndCompressed writes the same layout twice for each
// compression, with GOMAXPROCS 1 then 3 (the compressors use every core):
// the images, .bmap files and compressed files must be byte-identical,
// and each compressed file must pass its tool's test and decompress to
// exactly the raw image.
func TestDeterministicAndCompressed(t *testing.T) {
	tools := map[string][2]string{"gz": {"gzip", "gzip"}, "xz": {"xz", "xz-utils"}, "zstd": {"zstd", "zstd"}}
	for _, format := range []string{"gz", "xz", "zstd"} {
		t.Run(format, func(t *testing.T) {
			tool := hosttool.Require(t, tools[format][0], tools[format][1])
			var sums [][3]string
			for _, procs := range []int{1, 3} {
				prev := runtime.GOMAXPROCS(procs)
				img, res := write(t, newImage(diskimage.GPT, 5).layout, diskimage.WriteOptions{Bmap: true, Compress: format, KeepRaw: true})
				runtime.GOMAXPROCS(prev)
				sums = append(sums, [3]string{fileSHA(t, img), fileSHA(t, res.Bmap), fileSHA(t, res.Compressed)})

				if out, err := exec.Command(tool, "-t", res.Compressed).CombinedOutput(); err != nil {
					t.Fatalf("%s -t %s: %v\n%s", tool, res.Compressed, err, out)
				}
				cmd := exec.Command(tool, "-dc", res.Compressed)
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				h := sha256.New()
				n, err := io.Copy(h, stdout)
				if err != nil || cmd.Wait() != nil {
					t.Fatalf("%s -dc: %v", tool, err)
				}
				if got := hex.EncodeToString(h.Sum(nil)); got != sums[len(sums)-1][0] || n != res.Size {
					t.Errorf("%s decompresses to %d bytes, sha256 %.16s; the image is %d bytes, %.16s", res.Compressed, n, got, res.Size, sums[len(sums)-1][0])
				}
				// xz's index and zstd's frame header record the size, for
				// ocidisk flash to know before writing.
				if format != "gz" {
					f, err := os.Open(res.Compressed)
					if err != nil {
						t.Fatal(err)
					}
					st, _ := f.Stat()
					cf, _ := compression.Parse(format)
					size, err := compression.Size(f, st.Size(), cf)
					f.Close()
					if err != nil || size != res.Size {
						t.Errorf("%s records a size of %d (%v), want %d", res.Compressed, size, err, res.Size)
					}
				}
			}
			for i, what := range []string{"image", ".bmap", format} {
				if sums[0][i] != sums[1][i] {
					t.Errorf("%s differs between GOMAXPROCS 1 and 3", what)
				}
			}
		})
	}
}
