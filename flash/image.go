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
	"context"
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
	// Progress, when set, is called as a compressed image whose format
	// does not record its size is decompressed to measure it, with the
	// compressed bytes read and the file's size.
	Progress func(done, total int64)
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
//
// The image's size is known when Open returns, so that a disk too small
// for it is refused before anything is written: a raw image's is the
// file's, a compressed one's comes from its .bmap, else from what its
// format records (xz's index, zstd's frame headers), else from
// decompressing it once without writing anything (gzip records the size
// only modulo 4 GiB, bzip2 not at all). That pass also proves the file
// whole: a truncated image is refused before the card is touched.
func Open(ctx context.Context, path string, opts OpenOptions) (*Image, error) {
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
		}
	}
	size, err := compression.Size(f, st.Size(), im.Format)
	if err != nil {
		return nil, fmt.Errorf("image %s: %v: %w", path, im.Format, err)
	}
	if im.Map != nil {
		if size >= 0 && im.Map.ImageSize != size {
			return nil, fmt.Errorf("image %s is %d bytes, but its block map %s describes %d bytes: they do not belong together",
				path, size, im.Map.Source, im.Map.ImageSize)
		}
		ok = true
		return im, nil
	}
	if size < 0 {
		if size, err = im.measure(ctx, st.Size(), opts.Progress); err != nil {
			return nil, err
		}
	}
	im.Map = &Map{ImageSize: size, Ranges: []Range{{Off: 0, Len: size}}, Source: "the whole image (no .bmap)"}
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

// measure decompresses the image to count its bytes.
func (im *Image) measure(ctx context.Context, fileSize int64, progress func(done, total int64)) (int64, error) {
	var r io.Reader = io.NewSectionReader(im.f, 0, fileSize)
	if progress != nil || ctx.Done() != nil {
		r = &measureReader{ctx: ctx, r: r, total: fileSize, progress: progress}
	}
	d, err := compression.NewReader(bufio.NewReaderSize(r, 1<<20), im.Format, compression.Options{Parallel: true})
	if err != nil {
		return 0, fmt.Errorf("image %s: %w", im.Path, err)
	}
	defer d.Close()
	n, err := io.CopyBuffer(io.Discard, d, make([]byte, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("image %s: %w", im.Path, err)
	}
	return n, nil
}

// measureReader reports the compressed bytes read and stops when ctx
// ends.
type measureReader struct {
	ctx      context.Context
	r        io.Reader
	done     int64
	total    int64
	progress func(done, total int64)
}

func (m *measureReader) Read(p []byte) (int, error) {
	if err := m.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := m.r.Read(p)
	m.done += int64(n)
	if m.progress != nil {
		m.progress(m.done, m.total)
	}
	return n, err
}

// stream returns the image's raw bytes from the start.
func (im *Image) stream() (io.ReadCloser, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(im.f, 0, 1<<62), 1<<20)
	return compression.NewReader(br, im.Format, compression.Options{Parallel: true})
}
