package bench

import (
	"bufio"
	stdgzip "compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"

	"github.com/ocidisk/ocidisk/internal/compression"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/internal/inflate"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// BenchmarkGunzip decodes the Debian tree's gzip layers (the inputs of
// bench/run's small rows) with package inflate, which builds use, and in
// the same run with the decoders it replaced (klauspost/compress's, and
// pgzip's read-ahead over it), the standard library's and the gzip tool
// (`gzip -dc`, what the floor's zcat runs). MB/s is of decoded bytes;
// every decoder's output is checked against inflate's length.
//
//	go test -run '^$' -bench Gunzip -benchtime 5x ./bench/
func BenchmarkGunzip(b *testing.B) {
	tool := hosttool.Require(b, "gzip", "gzip")
	var blobs []string
	dir := filepath.Join(debian.Tree(b).Layout, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		kind, err := compression.SniffAt(f)
		f.Close()
		if err == nil && kind == compression.Gzip {
			blobs = append(blobs, p)
		}
	}
	if len(blobs) == 0 {
		b.Fatal("the Debian tree has no gzip layer")
	}
	decoders := []struct {
		name string
		open func(io.Reader) (io.Reader, error)
	}{
		{"inflate", func(r io.Reader) (io.Reader, error) { return inflate.NewGzipReader(r) }},
		{"klauspost", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"pgzip", func(r io.Reader) (io.Reader, error) { return pgzip.NewReader(r) }},
		{"compress-gzip", func(r io.Reader) (io.Reader, error) { return stdgzip.NewReader(r) }},
	}
	var total int64
	for _, d := range decoders {
		b.Run(d.name, func(b *testing.B) {
			buf := make([]byte, 1<<20)
			for b.Loop() {
				var n int64
				for _, p := range blobs {
					f, err := os.Open(p)
					if err != nil {
						b.Fatal(err)
					}
					r, err := d.open(bufio.NewReaderSize(f, 1<<20))
					if err != nil {
						b.Fatal(err)
					}
					m, err := io.CopyBuffer(io.Discard, r, buf)
					f.Close()
					if err != nil {
						b.Fatalf("%s: %v", p, err)
					}
					n += m
				}
				if total == 0 {
					total = n
				}
				if n != total {
					b.Fatalf("decoded %d bytes, inflate %d", n, total)
				}
			}
			b.SetBytes(total)
		})
	}
	b.Run("gzip -dc", func(b *testing.B) {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer null.Close()
		for b.Loop() {
			for _, p := range blobs {
				cmd := exec.Command(tool, "-dc", p)
				var stderr strings.Builder
				cmd.Stdout, cmd.Stderr = null, &stderr
				if err := cmd.Run(); err != nil {
					b.Fatalf("gzip -dc %s: %v\n%s", p, err, stderr.String())
				}
			}
		}
		b.SetBytes(total)
	})
}
