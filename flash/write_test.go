package flash

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// testImage writes a two-partition image with ocidisk's own diskimage: data
// with runs of zeros, so that the image has holes, and its .bmap and the
// compressed copy asked for.
func testImage(t testing.TB, compress string) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	part := func(n int) []byte {
		b := make([]byte, n)
		for off := 0; off < n; off += 64 << 10 {
			if rng.IntN(3) != 0 { // a third of the 64 KiB pieces stay zero
				for i := off; i < min(n, off+64<<10); i++ {
					b[i] = byte(rng.Uint32())
				}
			}
		}
		return b
	}
	a, b := part(3<<20+512), part(5<<20)
	l := &diskimage.Layout{Table: diskimage.MBR, Seed: []byte("flash test"), Partitions: []diskimage.Partition{
		{Name: "a", Kind: diskimage.KindLinux, FS: diskimage.Raw(bytes.NewReader(a), int64(len(a)))},
		{Name: "b", Kind: diskimage.KindLinux, Size: 12 << 20, FS: diskimage.Raw(bytes.NewReader(b), int64(len(b)))},
	}}
	path := filepath.Join(t.TempDir(), "disk.img")
	if _, err := diskimage.Write(context.Background(), path, l, diskimage.WriteOptions{Bmap: true, Compress: compress, KeepRaw: true}); err != nil {
		t.Fatal(err)
	}
	return path
}

const pattern = 0xa5

// target returns a file of n bytes of pattern: a used card.
func target(t testing.TB, n int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "card")
	if err := os.WriteFile(p, bytes.Repeat([]byte{pattern}, int(n)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func flashFile(t *testing.T, image, dst string, opts OpenOptions) (*Result, *Image, error) {
	t.Helper()
	im, err := Open(t.Context(), image, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Write(context.Background(), im, f, WriteOptions{})
	return res, im, err
}

// Only the mapped ranges are written: the used card keeps its bytes
// everywhere else, and holds the image's bytes in every range. Without a
// map, the whole image is the range, holes and all. bmaptool
// copy, given the same image and map, leaves the same bytes.
func TestWriteOnlyMapped(t *testing.T) {
	bmaptool := hosttool.Require(t, "bmaptool", "bmap-tools")
	for _, tc := range []struct {
		name, compress, suffix string
		opts                   OpenOptions
		whole                  bool // the map is the whole image
	}{
		{"raw with .bmap", "", "", OpenOptions{}, false},
		{"zstd with .bmap", "zstd", ".zst", OpenOptions{}, false},
		{"gz with .bmap", "gz", ".gz", OpenOptions{}, false},
		{"xz with .bmap", "xz", ".xz", OpenOptions{}, false},
		{"raw without a map", "", "", OpenOptions{NoBmap: true}, true},
		{"zstd without a map", "zstd", ".zst", OpenOptions{NoBmap: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := testImage(t, tc.compress)
			img, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			size := int64(len(img)) + 1<<20 // the card is larger than the image
			dst := target(t, size)
			res, im, err := flashFile(t, raw+tc.suffix, dst, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			mapped := make([]bool, size)
			for _, r := range im.Map.Ranges {
				if r.Len < 0 {
					r.Len = int64(len(img))
				}
				for i := r.Off; i < r.Off+r.Len; i++ {
					mapped[i] = true
				}
			}
			var kept, written int64
			for i := range size {
				switch {
				case mapped[i] && got[i] != img[i]:
					t.Fatalf("byte %d: %#x, want the image's %#x", i, got[i], img[i])
				case !mapped[i] && got[i] != pattern:
					t.Fatalf("byte %d outside the map was written: %#x", i, got[i])
				case !mapped[i] && i < int64(len(img)) && img[i] != 0:
					t.Fatalf("byte %d of the image is data but not mapped", i)
				case mapped[i]:
					written++
				default:
					kept++
				}
			}
			if written != res.Written || res.Verified != res.Written || res.ImageSize != int64(len(img)) {
				t.Errorf("result %+v: %d bytes mapped, image %d bytes", res, written, len(img))
			}
			if !tc.whole && kept < int64(len(img))/4 {
				t.Errorf("only %d of %d bytes kept: the map has no holes", kept, size)
			}
			if tc.opts.NoBmap {
				return
			}
			// bmaptool copy of the same image and map writes the same bytes
			// in the mapped ranges (it truncates a file it writes, so
			// the rest cannot be compared).
			ref := target(t, size)
			out, err := exec.Command(bmaptool, "copy", "--bmap", raw+".bmap", raw+tc.suffix, ref).CombinedOutput()
			if err != nil {
				t.Fatalf("bmaptool copy: %v\n%s", err, out)
			}
			want, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if mapped[i] && got[i] != want[i] {
					t.Fatalf("byte %d: %#x, bmaptool copy wrote %#x", i, got[i], want[i])
				}
			}
		})
	}
}

// flipper corrupts the byte at offset at as it is written: a card that
// loses data.
type flipper struct {
	*os.File
	at int64
}

func (f flipper) WriteAt(p []byte, off int64) (int, error) {
	if f.at >= off && f.at < off+int64(len(p)) {
		p = bytes.Clone(p)
		p[f.at-off] ^= 0x40
	}
	return f.File.WriteAt(p, off)
}

func TestVerifyCatchesCorruption(t *testing.T) {
	raw := testImage(t, "")
	for _, opts := range []OpenOptions{{}, {NoBmap: true}} {
		im, err := Open(t.Context(), raw, opts)
		if err != nil {
			t.Fatal(err)
		}
		r := im.Map.Ranges[len(im.Map.Ranges)/2]
		at := r.Off + r.Len/2
		st, _ := os.Stat(raw)
		f, err := os.OpenFile(target(t, st.Size()), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Write(context.Background(), im, flipper{f, at}, WriteOptions{})
		f.Close()
		im.Close()
		if err == nil || !strings.Contains(err.Error(), "verify: bytes ") || !strings.Contains(err.Error(), "differ") {
			t.Fatalf("%+v: a flipped byte at %d gave %v", opts, at, err)
		}
	}
}

// An image that no longer matches its .bmap fails while it is read.
func TestWriteDamagedImage(t *testing.T) {
	raw := testImage(t, "")
	im, err := Open(t.Context(), raw, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := im.Map.Ranges[len(im.Map.Ranges)-1]
	im.Close()
	f, err := os.OpenFile(raw, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xfe}, r.Off+1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, _ := os.Stat(raw)
	_, _, err = flashFile(t, raw, target(t, st.Size()), OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("damaged image: %v", err)
	}
}

func TestParseBmapErrors(t *testing.T) {
	raw := testImage(t, "")
	good, err := os.ReadFile(raw + ".bmap")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseBmap("good", good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"edited", "<ImageSize> ", "<ImageSize> 1", "checksum"},
		{"version", `version="2.0"`, `version="9.0"`, "version"},
		{"not xml", "<bmap", "<<bmap", "block map"},
	} {
		data := bytes.Replace(good, []byte(tc.old), []byte(tc.new), 1)
		if _, err := ParseBmap("x.bmap", data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// bmaptool's own maps (made by bmaptool create from a sparse file) are read
// as bmaptool reads them.
func TestParseBmaptoolCreate(t *testing.T) {
	bmaptool := hosttool.Require(t, "bmaptool", "bmap-tools")
	raw := testImage(t, "")
	out, err := exec.Command(bmaptool, "create", raw).Output()
	if err != nil {
		t.Fatalf("bmaptool create: %v", err)
	}
	m, err := ParseBmap("bmaptool create", out)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(raw)
	dst := target(t, st.Size())
	bm := filepath.Join(t.TempDir(), "x.bmap")
	if err := os.WriteFile(bm, out, 0o644); err != nil {
		t.Fatal(err)
	}
	res, _, err := flashFile(t, raw, dst, OpenOptions{Bmap: bm})
	if err != nil || res.Written != m.Mapped() {
		t.Fatalf("flash with bmaptool's map: %+v, %v (map has %d bytes)", res, err, m.Mapped())
	}
}
