package diskimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/ocidisk/ocidisk/internal/bytesize"
)

// bmapRange is one <Range> of a .bmap: blocks [first, end) and the SHA-256
// of their bytes.
type bmapRange struct {
	blockRange
	sha256 string
}

// writeBmap writes the block map in bmaptool's format version 2.0: image
// and block sizes, mapped block count, SHA-256 per range, and the file's
// own SHA-256, computed with its field set to zeros, as bmaptool checks it.
func writeBmap(w io.Writer, size int64, ranges []bmapRange) error {
	blocks := (size + BlockSize - 1) / BlockSize
	var mapped int64
	for _, r := range ranges {
		mapped += r.end - r.first
	}
	mappedBytes := min(mapped*BlockSize, size)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" ?>
<!-- The block map of an image made by ocidisk: the blocks that hold data
     (partition table, filesystems, blobs) and must be copied, with a
     SHA-256 per range. The other blocks need not be copied. bmaptool copy
     uses it; the image may be compressed, the map describes it raw. -->

<bmap version="2.0">
    <!-- Image size in bytes: %s -->
    <ImageSize> %d </ImageSize>

    <!-- Size of a block in bytes -->
    <BlockSize> %d </BlockSize>

    <!-- Count of blocks in the image file -->
    <BlocksCount> %d </BlocksCount>

    <!-- Count of mapped blocks: %s or %.1f%% -->
    <MappedBlocksCount> %d </MappedBlocksCount>

    <!-- Type of checksum used in this file -->
    <ChecksumType> sha256 </ChecksumType>

    <!-- The checksum of this bmap file. When it is calculated, the value of
         the checksum has be zero (all ASCII "0" symbols).  -->
    <BmapFileChecksum> `, bytesize.Human(size), size, BlockSize, blocks, bytesize.Human(mappedBytes), percent(mapped, blocks), mapped)
	sumAt := b.Len()
	b.WriteString(strings.Repeat("0", sha256.Size*2))
	b.WriteString(` </BmapFileChecksum>

    <!-- The block map which consists of elements which may either be a
         range of blocks or a single block. The 'chksum' attribute
         (if present) is the checksum of this blocks range. -->
    <BlockMap>
`)
	for _, r := range ranges {
		if r.end-r.first == 1 {
			fmt.Fprintf(&b, "        <Range chksum=\"%s\"> %d </Range>\n", r.sha256, r.first)
		} else {
			fmt.Fprintf(&b, "        <Range chksum=\"%s\"> %d-%d </Range>\n", r.sha256, r.first, r.end-1)
		}
	}
	b.WriteString("    </BlockMap>\n</bmap>\n")
	sum := sha256.Sum256(b.Bytes())
	out := b.Bytes()
	copy(out[sumAt:], hex.EncodeToString(sum[:]))
	_, err := w.Write(out)
	return err
}

func percent(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) * 100 / float64(of)
}
