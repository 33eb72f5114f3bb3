package fat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/inspect/internal/rofstest"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// FuzzOpen opens arbitrary bytes, seeded with small filesystems mkfs.fat
// and mtools wrote (FAT12 and FAT16, long names), as FAT and walks what it
// finds: the reader may refuse a damaged image, but never panics or hangs.
// Run with: go test -run XXX -fuzz FuzzOpen ./inspect/fat/
func FuzzOpen(f *testing.F) {
	mkfs := hosttool.Require(f, "mkfs.fat", "dosfstools")
	mcopy := hosttool.Require(f, "mcopy", "mtools")
	mmd := hosttool.Require(f, "mmd", "mtools")
	file := filepath.Join(f.TempDir(), "A long file name.txt")
	os.WriteFile(file, bytes.Repeat([]byte("fat\n"), 300), 0o644)
	for _, args := range [][]string{{"-C"}, {"-F", "16", "-s", "1", "-C"}} {
		img := filepath.Join(f.TempDir(), "seed.fat")
		kib := "64"
		if len(args) > 1 {
			kib = "2200"
		}
		if out, err := exec.Command(mkfs, append(args, "-n", "SEED", img, kib)...).CombinedOutput(); err != nil {
			f.Fatalf("mkfs.fat: %v\n%s", err, out)
		}
		for _, cmd := range [][]string{{mmd, "-i", img, "::/dir"}, {mcopy, "-i", img, file, "::/dir/"}} {
			if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
				f.Fatalf("%s: %v\n%s", cmd, err, out)
			}
		}
		b, err := os.ReadFile(img)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, img []byte) {
		rofstest.Within(t, 10*time.Second, func() {
			fsys, err := Open(bytes.NewReader(img), 0, int64(len(img)))
			if err != nil {
				return
			}
			_, _ = fsys.Type(), fsys.Free()
			rofstest.Walk(fsys)
		})
	})
}
