// Package compression holds the compression formats ocidisk reads and
// writes, declared once: their names and aliases, file extensions and
// magic bytes, readers that tell a complete stream from a truncated one,
// and the decoded size of a file when its format records it.
//
// Formats are told apart by their magic bytes, never by file names or
// media types: both lie often enough (".tar.gz" files that are plain,
// layers labelled gzip that are zstd). Names and extensions are for the
// command line and for the files ocidisk writes.
package compression

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Format is a compression format, None for uncompressed data.
type Format uint8

// The formats, in the order messages list them.
const (
	None Format = iota
	Gzip
	XZ
	Zstd
	LZ4
	Bzip2
)

// declaration is everything ocidisk knows about a format's name and shape.
type declaration struct {
	name    string   // canonical: what String returns and messages say
	aliases []string // also accepted by Parse
	ext     string   // of the files written in the format
	magic   []byte   // how its streams start
}

// declarations is indexed by Format. It is never written to.
var declarations = [...]declaration{
	None:  {name: "none", aliases: []string{""}},
	Gzip:  {name: "gzip", aliases: []string{"gz"}, ext: ".gz", magic: []byte{0x1f, 0x8b}},
	XZ:    {name: "xz", ext: ".xz", magic: []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	Zstd:  {name: "zstd", aliases: []string{"zst"}, ext: ".zst", magic: []byte{0x28, 0xb5, 0x2f, 0xfd}},
	LZ4:   {name: "lz4", ext: ".lz4", magic: []byte{0x04, 0x22, 0x4d, 0x18}},
	Bzip2: {name: "bzip2", aliases: []string{"bz2"}, ext: ".bz2", magic: []byte("BZh")},
}

// MagicLen is how many leading bytes Sniff needs to tell every format.
const MagicLen = 6

// Formats lists the compressed formats (not None).
func Formats() []Format {
	return []Format{Gzip, XZ, Zstd, LZ4, Bzip2}
}

func (f Format) decl() declaration {
	if int(f) < len(declarations) {
		return declarations[f]
	}
	return declaration{name: fmt.Sprintf("format(%d)", uint8(f))}
}

// String is the format's canonical name: "none", "gzip", "xz", "zstd",
// "lz4", "bzip2".
func (f Format) String() string { return f.decl().name }

// Ext is the extension of files in the format (".gz", ".zst"...), "" for
// None.
func (f Format) Ext() string { return f.decl().ext }

// Parse reads a format's name or alias: "gz" and "gzip" are both Gzip,
// "zst" and "zstd" Zstd, "bz2" and "bzip2" Bzip2, "" and "none" None.
func Parse(name string) (Format, error) {
	for f, d := range declarations {
		if name == d.name || slices.Contains(d.aliases, name) {
			return Format(f), nil
		}
	}
	var names []string
	for _, d := range declarations {
		names = append(names, d.name)
	}
	return None, fmt.Errorf("compression %q: want one of %s", name, strings.Join(names, ", "))
}

// Sniff tells the format of a stream from its first bytes (MagicLen of
// them, or all there are); None when no format's magic matches.
func Sniff(head []byte) Format {
	for f, d := range declarations {
		if len(d.magic) > 0 && bytes.HasPrefix(head, d.magic) {
			return Format(f)
		}
	}
	return None
}

// SniffAt tells the format of a file with random access.
func SniffAt(r io.ReaderAt) (Format, error) {
	head := make([]byte, MagicLen)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return None, fmt.Errorf("read: %w", err)
	}
	return Sniff(head[:n]), nil
}

// TrimExt returns path without the extension of a compressed format and
// that format, or path and None when it has none of them.
func TrimExt(path string) (string, Format) {
	for _, f := range Formats() {
		if base, ok := strings.CutSuffix(path, f.Ext()); ok && base != "" {
			return base, f
		}
	}
	return path, None
}
