package fat

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	mkfat "github.com/ocidisk/ocidisk/mkfs/fat"
	"github.com/ocidisk/ocidisk/mkfs/fat/fattest"
)

// readAll returns what the reader finds in the filesystem, in the form
// fattest.ReadBack gives for mtools' view.
func readAll(t *testing.T, fsys *FS) map[string]fattest.Record {
	t.Helper()
	got := map[string]fattest.Record{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if d.IsDir() {
			got[p] = fattest.Record{Dir: true}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		got[p] = fattest.Record{Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Mtime: info.ModTime()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func open(t *testing.T, image string) *FS {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	fsys, err := Open(f, 0, st.Size())
	if err != nil {
		t.Fatalf("%s: %v", image, err)
	}
	return fsys
}

func compare(t *testing.T, what string, got, want map[string]fattest.Record) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok || g != w {
			t.Errorf("%s: %q: reader has %v (%v), mtools %v", what, p, g, ok, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: %q: only the reader sees it", what, p)
		}
	}
}

// Random boot trees written by mkfs/fat, FAT16 and FAT32, read by this
// package and by mtools (mcopy -s -m), must agree on every name, size, byte
// and time; mdir must agree on the label and serial.
func TestAgainstMtools(t *testing.T) {
	for _, tc := range []struct {
		seed  uint64
		typ   int
		label string
	}{{1, 16, "BOOT"}, {2, 32, "FIRMWARE"}, {3, 16, ""}, {4, 32, ""}} {
		t.Run(fmt.Sprintf("seed%d-FAT%d", tc.seed, tc.typ), func(t *testing.T) {
			tree := fattest.Tree(tc.seed, fattest.TreeOptions{Entries: 120})
			image := filepath.Join(t.TempDir(), "fat.img")
			f, err := os.Create(image)
			if err != nil {
				t.Fatal(err)
			}
			size := int64(64 << 20)
			if tc.typ == 32 {
				size = 600 << 20
			}
			err = mkfat.Write(f, 0, tree, mkfat.Options{Size: size, Type: tc.typ, Label: tc.label, Seed: []byte{byte(tc.seed)}})
			if err == nil {
				err = f.Truncate(size)
			}
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			fsys := open(t, image)
			compare(t, "mkfs/fat", readAll(t, fsys), fattest.ReadBack(t, image, 0))
			checkLabel(t, image, fsys)
			if fsys.Type() != fmt.Sprintf("FAT%d", tc.typ) {
				t.Errorf("type %s, want FAT%d", fsys.Type(), tc.typ)
			}
		})
	}
}

// checkLabel compares the label and serial with mdir's header.
func checkLabel(t *testing.T, image string, fsys *FS) {
	t.Helper()
	out := fattest.Mdir(t, image, 0, "::/")
	m := regexp.MustCompile(`Volume Serial Number is ([0-9A-F-]+)`).FindStringSubmatch(out)
	if m == nil || m[1] != fsys.UUID() {
		t.Errorf("serial %s, mdir says:\n%s", fsys.UUID(), out)
	}
	label := "has no label"
	if fsys.Label() != "" {
		label = "is " + fsys.Label()
	}
	if !strings.Contains(out, "Volume in drive : "+label) {
		t.Errorf("label %q, mdir says:\n%s", fsys.Label(), out)
	}
}

// Filesystems made by mkfs.vfat and filled by mcopy (FAT12, FAT16, FAT32)
// read the same as mtools reads them.
func TestMkfsVfat(t *testing.T) {
	mkfs := hosttool.Require(t, "mkfs.vfat", "dosfstools")
	mcopy := hosttool.Require(t, "mcopy", "mtools")
	src := t.TempDir()
	files := map[string]string{
		"config.txt":                      "arm_64bit=1\n",
		"overlays/vc4-kms-v3d.dtbo":       strings.Repeat("dtbo", 3000),
		"Long Name With Spaces.TXT":       "x",
		"UPPER.TXT":                       "upper",
		"lower.txt":                       "lower",
		"Mixed.Txt":                       "mixed",
		"dir.with.dots/ünïcödé-名前.txt":    strings.Repeat("u", 70000),
		"deep/a/b/c/d/e/f/g/h/file":       "deep",
		"exactly-thirteen.txt":            "13",
		"a-name-that-is-26-chars.bin":     "",
		strings.Repeat("n", 200) + ".dat": "long",
	}
	for p, c := range files {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)
		os.Chtimes(full, mt, mt)
	}
	for _, tc := range []struct {
		bits   int
		sizeMB int
	}{{12, 4}, {16, 64}, {32, 300}} {
		t.Run(fmt.Sprintf("FAT%d", tc.bits), func(t *testing.T) {
			image := filepath.Join(t.TempDir(), "v.img")
			out, err := exec.Command(mkfs, "-C", "-F", fmt.Sprint(tc.bits), "-n", "MKFSVFAT", "-i", "12AB34CD", image, fmt.Sprint(tc.sizeMB*1024)).CombinedOutput()
			if err != nil {
				t.Fatalf("mkfs.vfat: %v\n%s", err, out)
			}
			ents, _ := os.ReadDir(src)
			args := []string{"-s", "-m", "-i", image}
			for _, e := range ents {
				args = append(args, filepath.Join(src, e.Name()))
			}
			cmd := exec.Command(mcopy, append(args, "::/")...)
			cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null", "TZ=UTC", "LC_ALL=C.UTF-8")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mcopy: %v\n%s", err, out)
			}
			fsys := open(t, image)
			if fsys.Type() != fmt.Sprintf("FAT%d", tc.bits) || fsys.Label() != "MKFSVFAT" || fsys.UUID() != "12AB-34CD" {
				t.Errorf("type %s label %q serial %s", fsys.Type(), fsys.Label(), fsys.UUID())
			}
			compare(t, "mkfs.vfat", readAll(t, fsys), fattest.ReadBack(t, image, 0))
			if err := fstest.TestFS(fsys, "config.txt", "overlays/vc4-kms-v3d.dtbo", "Long Name With Spaces.TXT"); err != nil {
				t.Error(err)
			}
			b, err := fs.ReadFile(fsys, "CONFIG.TXT") // names match regardless of case
			if err != nil || string(b) != "arm_64bit=1\n" {
				t.Errorf("CONFIG.TXT: %q, %v", b, err)
			}
		})
	}
}

func TestCorrupt(t *testing.T) {
	tree := fattest.Tree(5, fattest.TreeOptions{Entries: 20})
	image := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := mkfat.Write(f, 0, tree, mkfat.Options{Size: 32 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(32 << 20); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		off  int64
		b    []byte
		size int64
		want string
	}{
		{"no signature", 510, []byte{0, 0}, 32 << 20, "not a FAT filesystem"},
		{"sector size", 11, []byte{0, 3}, 32 << 20, "bytes per sector"},
		{"truncated", 0, nil, 16 << 20, "truncated"},
	} {
		data := make([]byte, 512)
		f.ReadAt(data, 0)
		copy(data[tc.off:], tc.b)
		r := &patched{f, data}
		if _, err := Open(r, 0, tc.size); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// patched reads a file with its first sector replaced.
type patched struct {
	r     io.ReaderAt
	first []byte
}

func (p *patched) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	if off < int64(len(p.first)) {
		copy(b, p.first[off:])
	}
	return n, err
}
