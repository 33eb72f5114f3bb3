package randtree

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ocidisk/ocidisk/fstree"
)

func TestDeterministic(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		a, err := fstree.ManifestLines(New(seed, Options{}))
		if err != nil {
			t.Fatal(err)
		}
		b, err := fstree.ManifestLines(New(seed, Options{}))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) {
			t.Fatalf("seed %d: two trees differ", seed)
		}
		c, _ := fstree.ManifestLines(New(seed+1000, Options{}))
		if slices.Equal(a, c) {
			t.Fatalf("seeds %d and %d give the same tree", seed, seed+1000)
		}
	}
}

// TestCoverage checks that a modest batch of seeds exercises every feature
// the package promises.
func TestCoverage(t *testing.T) {
	seen := map[string]bool{}
	for seed := uint64(0); seed < 50; seed++ {
		tr := New(seed, Options{Entries: 200})
		links := map[*fstree.Node]int{}
		err := tr.Walk(func(p string, n *fstree.Node) error {
			seen[n.Type.String()] = true
			links[n]++
			name := p[strings.LastIndexByte(p, '/')+1:]
			if len(name) == 255 {
				seen["name255"] = true
			}
			if !isASCII(name) {
				seen["nonascii"] = true
			}
			if strings.Count(p, "/") >= 8 {
				seen["deep"] = true
			}
			if n.IsDir() && n.Len() >= 60 {
				seen["wide"] = true
			}
			if n.Mode&(fstree.ModeSetuid|fstree.ModeSetgid|fstree.ModeSticky) != 0 {
				seen["special"] = true
			}
			if n.UID > 65535 || n.GID > 65535 {
				seen["id32"] = true
			}
			if n.Mtime.Nanosecond() != 0 {
				seen["ns"] = true
			}
			if !n.Atime().IsZero() {
				seen["atime"] = true
			}
			if _, ok := n.Xattrs["security.capability"]; ok {
				seen["cap"] = true
			}
			for k, v := range n.Xattrs {
				if len(v) > 200 {
					seen["bigxattr"] = true
				}
				seen["xattr:"+k[:strings.IndexByte(k, '.')]] = true
			}
			switch n.Type {
			case fstree.TypeSymlink:
				if len(n.Target) < 60 {
					seen["fastlink"] = true
				} else {
					seen["slowlink"] = true
				}
			case fstree.TypeCharDev, fstree.TypeBlockDev:
				if n.Major > 255 || n.Minor > 255 {
					seen["bigdev"] = true
				}
			case fstree.TypeRegular:
				switch {
				case n.Size == 0:
					seen["empty"] = true
				case n.Size > 256<<10:
					seen["big"] = true
				}
				if c, ok := n.Content.(Content); ok && c.ZeroOdds > 0 {
					seen["sparse"] = true
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range links {
			if c > 1 {
				seen["hardlink"] = true
			}
		}
	}
	for _, want := range []string{"file", "directory", "symlink", "char device", "block device", "fifo", "socket",
		"name255", "nonascii", "deep", "wide", "special", "id32", "ns", "atime", "cap", "bigxattr",
		"xattr:user", "xattr:trusted", "xattr:security", "fastlink", "slowlink", "bigdev", "empty", "big",
		"sparse", "hardlink"} {
		if !seen[want] {
			t.Errorf("50 seeds never produced %q", want)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestRestrictions(t *testing.T) {
	opts := Options{
		Entries:        300,
		Types:          []fstree.Type{fstree.TypeRegular},
		NoHardlinks:    true,
		NoXattrs:       true,
		NoOwners:       true,
		NoSpecialModes: true,
		ASCII:          true,
		MaxNameLen:     40,
		ValidName:      func(s string) bool { return !strings.ContainsAny(s, " +") },
		NameKey:        strings.ToUpper,
		MtimeOnly:      true,
	}
	for seed := uint64(0); seed < 20; seed++ {
		tr := New(seed, opts)
		keys := map[*fstree.Node]map[string]bool{}
		err := tr.Walk(func(p string, n *fstree.Node) error {
			if p == "" {
				return nil
			}
			if n.Type != fstree.TypeRegular && n.Type != fstree.TypeDir {
				t.Errorf("seed %d: %s is a %s", seed, p, n.Type)
			}
			if n.Links() != 1 || n.Xattrs != nil || n.UID != 0 || n.GID != 0 || n.Mode&^0o777 != 0 || !n.Atime().IsZero() {
				t.Errorf("seed %d: %s has a feature that was turned off", seed, p)
			}
			name := p[strings.LastIndexByte(p, '/')+1:]
			if len(name) > 40 || !isASCII(name) || strings.ContainsAny(name, " +") {
				t.Errorf("seed %d: bad name %q", seed, name)
			}
			if n.IsDir() {
				keys[n] = map[string]bool{}
				for _, e := range n.Entries() {
					k := strings.ToUpper(e.Name)
					if keys[n][k] {
						t.Errorf("seed %d: %s: names collide under NameKey: %q", seed, p, e.Name)
					}
					keys[n][k] = true
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestNamesAreUTF8(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		_ = New(seed, Options{Entries: 300}).Walk(func(p string, _ *fstree.Node) error {
			if !utf8.ValidString(p) || strings.ContainsAny(p, "\x00\n") {
				t.Errorf("seed %d: bad path %q", seed, p)
			}
			return nil
		})
	}
}

func TestContent(t *testing.T) {
	for _, c := range []Content{
		{Seed: 1, Size: 0},
		{Seed: 2, Size: 1},
		{Seed: 3, Size: 4095},
		{Seed: 4, Size: 4096*10 + 17},
		{Seed: 5, Size: 1 << 20, RunShift: 2, ZeroOdds: 128},
		{Seed: 6, Size: 8 << 20, RunShift: 0, ZeroOdds: 250},
	} {
		r, _ := c.Open()
		all, err := io.ReadAll(r)
		if err != nil || int64(len(all)) != c.Size {
			t.Fatalf("%+v: read %d bytes, %v", c, len(all), err)
		}
		// Random access agrees with the stream at unaligned offsets.
		for _, off := range []int64{0, 1, 7, 4095, 4096, 5000, c.Size / 2, c.Size - 3} {
			if off < 0 || off >= c.Size {
				continue
			}
			buf := make([]byte, min(9000, c.Size-off))
			if n, err := c.ReadAt(buf, off); n != len(buf) || (err != nil && err != io.EOF) {
				t.Fatalf("%+v: ReadAt(%d) = %d, %v", c, off, n, err)
			}
			if !bytes.Equal(buf, all[off:off+int64(len(buf))]) {
				t.Fatalf("%+v: ReadAt(%d) differs from the stream", c, off)
			}
		}
		zeroChunks, dataChunks := 0, 0
		for k := int64(0); k*ChunkSize < c.Size; k++ {
			chunk := all[k*ChunkSize : min((k+1)*ChunkSize, c.Size)]
			isZero := !slices.ContainsFunc(chunk, func(b byte) bool { return b != 0 })
			if c.IsZeroChunk(k) {
				zeroChunks++
				if !isZero {
					t.Fatalf("%+v: chunk %d should be zero", c, k)
				}
			} else if !isZero {
				dataChunks++
			}
		}
		if c.ZeroOdds > 0 && (zeroChunks == 0 || dataChunks == 0) {
			t.Errorf("%+v: %d zero and %d data chunks; want both", c, zeroChunks, dataChunks)
		}
	}
}

func BenchmarkContent(b *testing.B) {
	c := Content{Seed: 9, Size: 64 << 20}
	buf := make([]byte, 1<<20)
	b.SetBytes(c.Size)
	for b.Loop() {
		for off := int64(0); off < c.Size; off += int64(len(buf)) {
			if _, err := c.ReadAt(buf, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
}
