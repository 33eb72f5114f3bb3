package source

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocidisk/ocidisk/internal/compression"

	"github.com/ocidisk/ocidisk/internal/outfile"
)

// cache is the on-disk store under Options.CacheDir:
//
//	blobs/sha256/HEX    registry blobs as downloaded, by digest
//	layers/sha256/HEX   uncompressed layer tars, by diffID
//	diffids/sha256/HEX  the diffID of blob HEX, for layers whose image does
//	                    not name one (tar: and deb: files)
//	seen/sha256/HEX     empty: a build decompressed the layer of blob HEX
//	                    (or diffID HEX, when no blob digest is known)
//
// A layer is kept uncompressed only from its second build on: the first
// one decompresses it into a temporary that is deleted as soon as it is
// made and gone when the build ends, and leaves a seen mark. A one-off
// build (a CI runner starts with an empty cache) then writes no second
// copy of the root to the disk: its pages are dropped, mostly before they
// are written back. Images one works on are built again and stay warm
// from their third build.
//
// Every file is written under a temporary name and renamed into place only
// once its bytes have been checked, so a name is a promise about content.
// But a disk, a copy or a person can break the promise: blobs are verified
// again each time they are read (they stream through a hash anyway), and
// so are layers, by their diffID, before their tree is built (SHA-256 runs
// at about 2 GB/s on one core, and layers are opened several at once). A
// damaged entry is removed and made again from the blob. Temporaries that
// a killed process left are swept when the cache is opened. Delete the
// directory to start afresh; nothing else depends on it.
type cache struct{ dir string }

// kinds are the cache's subdirectories.
var kinds = []string{"blobs", "layers", "diffids", "seen"}

// sweep removes the temporaries a killed process left in the cache.
func (c cache) sweep() {
	for _, kind := range kinds {
		outfile.Sweep(filepath.Join(c.dir, kind, "sha256"), "")
	}
}

func (c cache) path(kind string, h v1.Hash) string {
	return filepath.Join(c.dir, kind, h.Algorithm, h.Hex)
}

// openLayer opens the cached uncompressed layer with this diffID and
// checks that it still hashes to it. A damaged entry (a flipped byte, a
// truncated file) is removed, with a warning naming it, and reported as
// missing: the caller makes it again from the blob.
func (c cache) openLayer(ctx context.Context, im *Image, diffID v1.Hash, p *progress) (*io.SectionReader, bool, error) {
	path := c.path("layers", diffID)
	f, err := os.Open(path)
	if err != nil {
		return nil, false, nil
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, nil
	}
	sr := io.NewSectionReader(f, 0, st.Size())
	got, err := hashReader(ctx, io.NewSectionReader(f, 0, st.Size()), p)
	if err != nil {
		f.Close()
		if ctx.Err() != nil {
			return nil, false, err
		}
		im.log.Warn("cannot read a cached layer; decompressing it again", "file", path, "err", err)
		return nil, false, nil
	}
	if got != diffID {
		f.Close()
		im.log.Warn("cached layer is damaged; removing it and decompressing the layer again", "file", path, "sha256", got.Hex)
		os.Remove(path)
		return nil, false, nil
	}
	im.keep(f)
	used(path)
	return sr, true, nil
}

// writeLayer decompresses r (of any supported compression, or none) into
// the cache, hashing what it writes, or with keep false into a temporary
// that no name leads to. With want set the result must have that digest. r should verify the blob itself (see verify): when
// decompression fails, a digest mismatch found by reading on is reported
// instead, as the likelier cause.
func (c cache) writeLayer(im *Image, r io.Reader, want v1.Hash, keep bool) (*io.SectionReader, v1.Hash, error) {
	dir := filepath.Join(c.dir, "layers", "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, v1.Hash{}, fmt.Errorf("cache: %w", err)
	}
	tmp, err := outfile.NewTemp(dir, "")
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("cache: %w", err)
	}
	if !keep {
		// Unlinked at once: the file lives as long as it is open, and
		// nothing is left to sweep whatever stops the process.
		os.Remove(tmp.Name())
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			if keep {
				os.Remove(tmp.Name())
			}
		}
	}()
	br := bufio.NewReaderSize(r, 256<<10)
	dec, _, err := compression.Open(br, compression.Options{})
	if err != nil {
		return nil, v1.Hash{}, preferDigestError(br, err)
	}
	// The decompressor may read br from goroutines of its own (xz): it
	// is closed, which stops them, before br is read here.
	closed := false
	closeDec := func() {
		if !closed {
			closed = true
			dec.Close()
		}
	}
	defer closeDec()
	h := sha256.New()
	// Runs of zeros (a layer that holds an image of zeros, tar padding)
	// become holes: a 1 MB gzip of zeros must not take a gigabyte. gzip's
	// decoder writes from its own buffer (compression's WriteTo), the
	// others through the copy buffer.
	sparse := outfile.NewSparse(tmp)
	n, err := io.CopyBuffer(io.MultiWriter(sparse, h), dec, make([]byte, 1<<20))
	if err != nil {
		closeDec()
		return nil, v1.Hash{}, preferDigestError(br, err)
	}
	// Read to the end of the blob so that its digest is checked even when
	// the decompressor stopped early.
	closeDec()
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, v1.Hash{}, err
	}
	if err := sparse.Finish(); err != nil {
		return nil, v1.Hash{}, fmt.Errorf("cache: %w", err)
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if want != (v1.Hash{}) && got != want {
		return nil, v1.Hash{}, fmt.Errorf("uncompressed content is %s, the config says %s: %w", got, want, ErrDigestMismatch)
	}
	if keep {
		if err := os.Rename(tmp.Name(), c.path("layers", got)); err != nil {
			return nil, v1.Hash{}, fmt.Errorf("cache: %w", err)
		}
	}
	ok = true
	im.keep(tmp) // the open file follows the rename, or is the only way to it
	return io.NewSectionReader(tmp, 0, n), got, nil
}

// preferDigestError reads the rest of a blob after a decompression error:
// if the blob does not match its digest, that is the error to report.
func preferDigestError(rest io.Reader, err error) error {
	if _, derr := io.Copy(io.Discard, rest); errors.Is(derr, ErrDigestMismatch) {
		return derr
	}
	return err
}

// alias returns the diffID recorded for a blob, or the zero hash.
func (c cache) alias(blob v1.Hash) v1.Hash {
	b, err := os.ReadFile(c.path("diffids", blob))
	if err != nil {
		return v1.Hash{}
	}
	used(c.path("diffids", blob))
	h, err := v1.NewHash(strings.TrimSpace(string(b)))
	if err != nil {
		return v1.Hash{}
	}
	return h
}

// setAlias records the diffID of a blob; failures only cost a later
// decompression, so they are ignored.
func (c cache) setAlias(blob, diffID v1.Hash) {
	_ = c.writeFile("diffids", blob, []byte(diffID.String()+"\n"))
}

// seen reports whether a build decompressed the layer named h before
// (see cache); markSeen records that one did. Failures only cost a
// rebuild its cache copy, so they are ignored.
func (c cache) seen(h v1.Hash) bool {
	p := c.path("seen", h)
	if _, err := os.Stat(p); err != nil {
		return false
	}
	used(p)
	return true
}

func (c cache) markSeen(h v1.Hash) { _ = c.writeFile("seen", h, nil) }

// writeFile puts b under kind/ALG/HEX atomically.
func (c cache) writeFile(kind string, h v1.Hash, b []byte) error {
	p := c.path(kind, h)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := outfile.NewTemp(filepath.Dir(p), "")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func (c cache) removeBlob(h v1.Hash) { os.Remove(c.path("blobs", h)) }
