package flash

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"regexp"
	"strconv"
	"strings"
)

// Map is what of an image to copy: its ranges of data, each with the
// checksum a .bmap gives (none for the whole image, without a .bmap).
type Map struct {
	// ImageSize is the raw image's size.
	ImageSize int64
	// Ranges are sorted and do not overlap.
	Ranges []Range
	// Checksum names the hash of Range.Sum: "sha256", "sha1" or "".
	Checksum string
	// Source says where the map came from, for messages.
	Source string
}

// Range is Len bytes at Off, and the hex checksum of those bytes if known.
type Range struct {
	Off, Len int64
	Sum      string
}

// Mapped is the number of bytes the map says to copy.
func (m *Map) Mapped() int64 {
	var n int64
	for _, r := range m.Ranges {
		n += r.Len
	}
	return n
}

func (m *Map) newHash() hash.Hash {
	if m.Checksum == "sha1" {
		return sha1.New()
	}
	return sha256.New()
}

// bmapXML is bmaptool's format, versions 1.2 to 2.0.
type bmapXML struct {
	XMLName      xml.Name `xml:"bmap"`
	Version      string   `xml:"version,attr"`
	ImageSize    string   `xml:"ImageSize"`
	BlockSize    string   `xml:"BlockSize"`
	BlocksCount  string   `xml:"BlocksCount"`
	ChecksumType string   `xml:"ChecksumType"`
	FileChecksum string   `xml:"BmapFileChecksum"`
	FileSHA1     string   `xml:"BmapFileSHA1"`
	Ranges       []struct {
		Sum    string `xml:"chksum,attr"`
		Blocks string `xml:",chardata"`
	} `xml:"BlockMap>Range"`
}

// ParseBmap reads a block map in bmaptool's format (versions 1.2 to 2.0;
// SHA-1 or SHA-256 checksums) and checks the file's own checksum. name
// names it in errors.
func ParseBmap(name string, data []byte) (*Map, error) {
	var x bmapXML
	if err := xml.Unmarshal(data, &x); err != nil {
		return nil, fmt.Errorf("block map %s: %w", name, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("block map %s: %s", name, fmt.Sprintf(format, a...))
	}
	major, _, _ := strings.Cut(x.Version, ".")
	switch major {
	case "1":
		x.ChecksumType = "sha1"
		x.FileChecksum = x.FileSHA1
	case "2":
	default:
		return nil, bad("version %q: want 1.x or 2.x", x.Version)
	}
	x.ChecksumType = strings.TrimSpace(x.ChecksumType)
	if x.ChecksumType != "sha256" && x.ChecksumType != "sha1" {
		return nil, bad("checksum type %q: want sha256 or sha1", x.ChecksumType)
	}
	if sum := strings.TrimSpace(x.FileChecksum); sum != "" {
		if err := checkFileSum(data, sum, x.ChecksumType); err != nil {
			return nil, bad("%v", err)
		}
	}
	num := func(field, s string) (int64, error) {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < 0 {
			return 0, bad("%s %q is not a number", field, strings.TrimSpace(s))
		}
		return n, nil
	}
	size, err := num("ImageSize", x.ImageSize)
	if err != nil {
		return nil, err
	}
	bs, err := num("BlockSize", x.BlockSize)
	if err != nil {
		return nil, err
	}
	blocks, err := num("BlocksCount", x.BlocksCount)
	if err != nil {
		return nil, err
	}
	if bs == 0 || blocks != (size+bs-1)/bs {
		return nil, bad("%d blocks of %d bytes do not make an image of %d bytes", blocks, bs, size)
	}
	m := &Map{ImageSize: size, Checksum: x.ChecksumType, Source: name}
	next := int64(0)
	for _, r := range x.Ranges {
		s := strings.TrimSpace(r.Blocks)
		a, b, isRange := strings.Cut(s, "-")
		first, err1 := strconv.ParseInt(a, 10, 64)
		last := first
		var err2 error
		if isRange {
			last, err2 = strconv.ParseInt(b, 10, 64)
		}
		if err1 != nil || err2 != nil || last < first || first < next || last >= blocks {
			return nil, bad("range %q: not a block range after block %d within %d blocks", s, next, blocks)
		}
		next = last + 1
		end := min((last+1)*bs, size)
		m.Ranges = append(m.Ranges, Range{Off: first * bs, Len: end - first*bs, Sum: strings.ToLower(r.Sum)})
	}
	return m, nil
}

var fileSumRE = regexp.MustCompile(`(<BmapFile(?:Checksum|SHA1)>\s*)([0-9a-fA-F]+)(\s*</BmapFile)`)

// checkFileSum checks a .bmap's own checksum, which bmaptool computes over
// the file with the checksum's digits replaced by zeros.
func checkFileSum(data []byte, want, kind string) error {
	zeroed := fileSumRE.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := fileSumRE.FindSubmatch(m)
		return bytes.Join([][]byte{sub[1], bytes.Repeat([]byte("0"), len(sub[2])), sub[3]}, nil)
	})
	var got string
	if kind == "sha1" {
		s := sha1.Sum(zeroed)
		got = hex.EncodeToString(s[:])
	} else {
		s := sha256.Sum256(zeroed)
		got = hex.EncodeToString(s[:])
	}
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("its checksum is %s, but it says %s: the file is damaged or was edited", got, want)
	}
	return nil
}
