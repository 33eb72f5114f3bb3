// Package flash writes disk images to block devices safely: only the
// ranges that hold data when the image has a .bmap (bmaptool's format),
// every byte otherwise, decompressing compressed images (gzip, xz, zstd,
// lz4, bzip2) on the fly, then reading every range back to check it.
//
// Check applies the safety rules before anything is opened for writing: it
// refuses the disk holding the root filesystem, disks with anything
// mounted, used as swap or stacked on them, and, unless forced, disks that
// are not removable or are larger than a limit. It sees the machine only
// through the System interface, so that the rules are tested against
// recorded snapshots of real machines.
package flash

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/ocidisk/ocidisk/internal/compression"
)

// Image is an image file to flash, raw or compressed, with the map of what
// to copy.
type Image struct {
	Path string
	// Format is the compression, told by the file's first bytes.
	Format compression.Format
	Map    *Map
	f      *os.File
}

// OpenOptions say where the map comes from.
type OpenOptions struct {
	// Bmap is the .bmap to use; "" looks beside the image for
	// IMAGE.bmap, and for a compressed IMAGE.EXT for IMAGE.bmap too.
	Bmap string
	// NoBmap ignores any .bmap: the image is copied whole.
	NoBmap bool
}

// Open opens an image and finds its map: the .bmap beside it, else the
// whole image. Without a .bmap nothing says which zero blocks the image's
// filesystems count on reading as zeros (a new image file has them as
// holes, a used card has old data there), so every byte is written, the
// holes as zeros, and read back.
func Open(path string, opts OpenOptions) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	im := &Image{Path: path, f: f}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("image %s: not a regular file", path)
	}
	if im.Format, err = compression.SniffAt(f); err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}

	if !opts.NoBmap {
		bmapPath := opts.Bmap
		if bmapPath == "" {
			bmapPath = findBmap(path)
		}
		if bmapPath != "" {
			data, err := os.ReadFile(bmapPath)
			if err != nil {
				return nil, fmt.Errorf("block map: %w", err)
			}
			if im.Map, err = ParseBmap(bmapPath, data); err != nil {
				return nil, err
			}
			if im.Format == compression.None && im.Map.ImageSize != st.Size() {
				return nil, fmt.Errorf("image %s is %d bytes, but its block map %s describes %d bytes: they do not belong together",
					path, st.Size(), bmapPath, im.Map.ImageSize)
			}
		}
	}
	if im.Map == nil {
		if im.Format == compression.None {
			im.Map = &Map{ImageSize: st.Size(), Ranges: []Range{{Off: 0, Len: st.Size()}}, Source: "the whole image (no .bmap)"}
		} else {
			im.Map = &Map{ImageSize: -1, Ranges: []Range{{Off: 0, Len: -1}}, Source: "the whole image (no .bmap)"}
		}
	}
	ok = true
	return im, nil
}

// Close closes the image file.
func (im *Image) Close() error { return im.f.Close() }

// findBmap returns the .bmap beside an image, "" if there is none:
// IMAGE.bmap, or for disk.img.zst also disk.img.bmap, which ocidisk
// build --bmap --compress writes.
func findBmap(path string) string {
	cands := []string{path + ".bmap"}
	if base, f := compression.TrimExt(path); f != compression.None {
		cands = append([]string{base + ".bmap"}, cands...)
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c
		}
	}
	return ""
}

// stream returns the image's raw bytes from the start.
func (im *Image) stream() (io.ReadCloser, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(im.f, 0, 1<<62), 1<<20)
	return compression.NewReader(br, im.Format, compression.Options{Parallel: true})
}
