package source

import (
	"bufio"
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
)

// cache is the on-disk store under Options.CacheDir:
//
//	blobs/sha256/HEX    registry blobs as downloaded, by digest
//	layers/sha256/HEX   uncompressed layer tars, by diffID
//	diffids/sha256/HEX  the diffID of blob HEX, for layers whose image does
//	                    not name one (tar: and deb: files)
//
// Every file is written under a temporary name and renamed into place only
// once its bytes have been checked, so a name is a promise about content.
// Blobs are verified again each time they are read (they stream through a
// hash anyway). Layers are trusted without re-hashing: only this code puts
// a file under layers/, after hashing exactly the bytes it wrote, and
// re-hashing a gigabyte on every build would cost more than decompressing
// did. Delete the directory to start afresh; nothing else depends on it.
type cache struct{ dir string }

func (c cache) path(kind string, h v1.Hash) string {
	return filepath.Join(c.dir, kind, h.Algorithm, h.Hex)
}

// openLayer opens the cached uncompressed layer with this diffID.
func (c cache) openLayer(im *Image, diffID v1.Hash) (*io.SectionReader, bool) {
	f, err := os.Open(c.path("layers", diffID))
	if err != nil {
		return nil, false
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false
	}
	im.keep(f)
	return io.NewSectionReader(f, 0, st.Size()), true
}

// writeLayer decompresses r (of any supported compression, or none) into
// the cache, hashing what it writes. With want set the result must have
// that digest. r should verify the blob itself (see verify): when
// decompression fails, a digest mismatch found by reading on is reported
// instead, as the likelier cause.
func (c cache) writeLayer(im *Image, r io.Reader, want v1.Hash) (*io.SectionReader, v1.Hash, error) {
	dir := filepath.Join(c.dir, "layers", "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, v1.Hash{}, fmt.Errorf("cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("cache: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
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
	bw := bufio.NewWriterSize(tmp, 1<<20)
	n, err := io.CopyBuffer(io.MultiWriter(bw, h), dec, make([]byte, 1<<20))
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
	if err := bw.Flush(); err != nil {
		return nil, v1.Hash{}, fmt.Errorf("cache: %w", err)
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if want != (v1.Hash{}) && got != want {
		return nil, v1.Hash{}, fmt.Errorf("uncompressed content is %s, the config says %s: %w", got, want, ErrDigestMismatch)
	}
	if err := os.Rename(tmp.Name(), c.path("layers", got)); err != nil {
		return nil, v1.Hash{}, fmt.Errorf("cache: %w", err)
	}
	ok = true
	im.keep(tmp) // the open file follows the rename
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

// writeFile puts b under kind/ALG/HEX atomically.
func (c cache) writeFile(kind string, h v1.Hash, b []byte) error {
	p := c.path(kind, h)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
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
