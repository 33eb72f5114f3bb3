package flash

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParseBmap parses arbitrary bytes, seeded with a .bmap ocidisk build
// wrote, as a block map: the parser may refuse them, but never panics,
// and a map it accepts has sorted ranges that do not overlap, inside the
// image, with sizes that add up.
// Run with: go test -run XXX -fuzz FuzzParseBmap ./flash/
func FuzzParseBmap(f *testing.F) {
	raw := testImage(f, "")
	good, err := os.ReadFile(raw + ".bmap")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`version="2.0"`), []byte(`version="1.4"`), 1))
	f.Add([]byte(`<bmap version="2.0"><ImageSize>8192</ImageSize><BlockSize>4096</BlockSize><BlocksCount>2</BlocksCount>` +
		`<ChecksumType>sha256</ChecksumType><BlockMap><Range chksum="00">0-1</Range></BlockMap></bmap>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseBmap("fuzz.bmap", data)
		if err != nil {
			return
		}
		end := int64(0)
		for i, r := range m.Ranges {
			if r.Off < end || r.Len <= 0 || r.Off+r.Len > m.ImageSize || r.Off+r.Len < r.Off {
				t.Fatalf("range %d (%d+%d) after byte %d of a %d-byte image", i, r.Off, r.Len, end, m.ImageSize)
			}
			end = r.Off + r.Len
		}
		if m.Mapped() < 0 || m.Mapped() > m.ImageSize {
			t.Fatalf("maps %d bytes of a %d-byte image", m.Mapped(), m.ImageSize)
		}
	})
}
