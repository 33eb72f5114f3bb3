package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// openTarFile opens tar:FILE, a single layer. Its ID is the file's sha256.
// A plain tar is read in place; a compressed one is decompressed into the
// cache once (found again through the file's digest).
func openTarFile(ctx context.Context, im *Image, file string) error {
	name := "tar:" + file
	f, sr, err := openRegular(file)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	im.keep(f)
	h, err := hashReader(ctx, io.NewSectionReader(sr, 0, sr.Size()), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	im.ID = h.String()
	l := newLayer(im, h.String(), h, v1.Hash{}, sr.Size())
	l.local, l.verified = sr, true
	im.Layers = []*Layer{l}
	return nil
}

// openDeb opens deb:FILE, a Debian package: its data.tar.* member is the
// one layer. The ar container is parsed here; it is simple enough.
func openDeb(ctx context.Context, im *Image, file string) error {
	name := "deb:" + file
	f, sr, err := openRegular(file)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	im.keep(f)
	data, err := debData(sr)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	id, dh, err := hashDeb(ctx, sr, data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	im.ID = id.String()
	l := newLayer(im, dh.String(), dh, v1.Hash{}, data.Size())
	l.local, l.verified = data, true
	im.Layers = []*Layer{l}
	return nil
}

// hashDeb returns the digests of a package file and of its data member,
// reading the file once: the member's bytes go to both hashes.
func hashDeb(ctx context.Context, file, data *io.SectionReader) (whole, member v1.Hash, err error) {
	_, off, n := data.Outer()
	hw, hm := sha256.New(), sha256.New()
	buf := make([]byte, 1<<20)
	for _, part := range []struct {
		w          io.Writer
		start, end int64
	}{
		{hw, 0, off},
		{io.MultiWriter(hw, hm), off, off + n},
		{hw, off + n, file.Size()},
	} {
		r := &progressReader{ctx: ctx, r: io.NewSectionReader(file, part.start, part.end-part.start)}
		if _, err := io.CopyBuffer(part.w, r, buf); err != nil {
			return v1.Hash{}, v1.Hash{}, err
		}
	}
	sum := func(h hash.Hash) v1.Hash {
		return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	}
	return sum(hw), sum(hm), nil
}

func openRegular(file string) (*os.File, *io.SectionReader, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("not a regular file")
	}
	return f, io.NewSectionReader(f, 0, st.Size()), nil
}

// debData finds the data.tar[.EXT] member of a Debian package (an ar
// archive: an 8-byte magic, then members each with a 60-byte header of
// fixed-width ASCII fields, data padded to an even length).
func debData(r *io.SectionReader) (*io.SectionReader, error) {
	magic := make([]byte, 8)
	if _, err := r.ReadAt(magic, 0); err != nil || string(magic) != "!<arch>\n" {
		return nil, fmt.Errorf("not a Debian package (no ar archive header)")
	}
	var members []string
	hdr := make([]byte, 60)
	for off := int64(8); off+60 <= r.Size(); {
		if _, err := r.ReadAt(hdr, off); err != nil {
			return nil, fmt.Errorf("ar member at %d: %w", off, err)
		}
		if !bytes.Equal(hdr[58:60], []byte("`\n")) {
			return nil, fmt.Errorf("ar member at %d: bad header", off)
		}
		name := strings.TrimRight(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || size < 0 || off+60+size > r.Size() {
			return nil, fmt.Errorf("ar member %q at %d: bad size", name, off)
		}
		if name == "data.tar" || strings.HasPrefix(name, "data.tar.") {
			return io.NewSectionReader(r, off+60, size), nil
		}
		members = append(members, name)
		off += 60 + size + size%2
	}
	return nil, fmt.Errorf("no data.tar member (members: %s)", strings.Join(members, ", "))
}
