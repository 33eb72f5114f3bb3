package randtree

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"io"
	"path"
	"testing"
)

func TestWriteRootTar(t *testing.T) {
	for _, n := range []int{1, 10, 5000} {
		var a, b bytes.Buffer
		sa, err := WriteRootTar(&a, 7, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := WriteRootTar(&b, 7, n); err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(a.Bytes()) != sha256.Sum256(b.Bytes()) {
			t.Errorf("%d entries: the same seed gave different bytes", n)
		}
		if sa.Entries != n {
			t.Errorf("%d entries: stats say %d", n, sa.Entries)
		}
		// Read it back: every entry's parent comes before it, every name
		// is new, every hardlink names a file already written, and the
		// kinds a root has are there.
		seen := map[string]byte{}
		kinds := map[byte]int{}
		var bytes int64
		tr := tar.NewReader(&a)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%d entries: %v", n, err)
			}
			name := path.Clean(h.Name)
			if _, ok := seen[name]; ok {
				t.Fatalf("%d entries: %s twice", n, name)
			}
			if dir := path.Dir(name); name != "." && seen[dir] != tar.TypeDir {
				t.Fatalf("%d entries: %s before its directory", n, name)
			}
			if h.Typeflag == tar.TypeLink && seen[path.Clean(h.Linkname)] != tar.TypeReg {
				t.Fatalf("%d entries: hardlink %s to %s, not a file written before", n, name, h.Linkname)
			}
			seen[name] = h.Typeflag
			kinds[h.Typeflag]++
			bytes += h.Size
		}
		if len(seen) != n+1 || bytes != sa.Bytes {
			t.Errorf("%d entries: read back %d entries (root included) and %d bytes, stats say %d and %d", n, len(seen), bytes, sa.Entries, sa.Bytes)
		}
		if n == 5000 {
			for _, k := range []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar} {
				if kinds[k] == 0 {
					t.Errorf("no entry of type %q in %d: %v", k, n, kinds)
				}
			}
			if f := float64(kinds[tar.TypeReg]) / float64(n); f < 0.7 || f > 0.9 {
				t.Errorf("files are %.0f%% of the entries, want about 80%%", 100*f)
			}
		}
	}
}
