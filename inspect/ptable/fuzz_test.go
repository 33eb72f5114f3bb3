package ptable

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// FuzzRead reads arbitrary bytes as a disk's first sectors (and, for the
// backup GPT, its last): the reader may refuse them, but never panics, and
// a table it accepts lists partitions inside the image that do not
// overlap, as its checks promise.
// Run with: go test -run XXX -fuzz FuzzRead ./inspect/ptable/
func FuzzRead(f *testing.F) {
	f.Add(mbrDisk(16, [4]uint32{0x80, 0x0c, 2, 6}, [4]uint32{0, 0x83, 8, 8}))
	// A GPT as sfdisk writes it, in 64 KiB: its primary header, entries
	// and backup are what a mutation starts from.
	sfdisk := hosttool.Require(f, "sfdisk", "fdisk")
	img := filepath.Join(f.TempDir(), "gpt.img")
	if err := os.WriteFile(img, make([]byte, 64<<10), 0o644); err != nil {
		f.Fatal(err)
	}
	cmd := exec.Command(sfdisk, "-q", "--no-reread", img)
	cmd.Stdin = strings.NewReader("label: gpt\nfirst-lba: 34\nstart=34, size=16, type=L\nstart=50, size=16, type=U\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		f.Fatalf("sfdisk: %v\n%s", err, out)
	}
	gpt, err := os.ReadFile(img)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gpt)
	f.Add(make([]byte, 512))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, img []byte) {
		tb, err := Read(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		for i, p := range tb.Partitions {
			if p.Start < 0 || p.Size < 0 || p.Start+p.Size > int64(len(img)) {
				t.Fatalf("partition %d (bytes %d+%d) is outside the %d-byte image", p.Number, p.Start, p.Size, len(img))
			}
			for _, q := range tb.Partitions[:i] {
				if p.Start < q.Start+q.Size && q.Start < p.Start+p.Size {
					t.Fatalf("partitions %d and %d overlap", q.Number, p.Number)
				}
			}
		}
	})
}
