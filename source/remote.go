package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ocidisk/ocidisk/internal/outfile"
)

// openRemote opens an image in a registry, through go-containerregistry
// with credentials from opts.Keychain. Blobs are cached by digest.
func openRemote(ctx context.Context, im *Image, ref string, platform v1.Platform, opts Options) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return usagef("reference %q: %w", ref, err)
	}
	ropts := []remote.Option{remote.WithAuthFromKeychain(opts.Keychain), remote.WithUserAgent("ocidisk")}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	rs := &registryStore{repo: r.Context(), opts: ropts, im: im}
	desc, err := remote.Get(r, rs.with(ctx)...)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, registryError(err))
	}
	return resolve(ctx, im, ref, rs, desc.Descriptor, desc.Manifest, platform)
}

// registryError shortens go-containerregistry's errors for a missing
// manifest, which carry the whole request.
func registryError(err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return errors.New("no such image, tag or digest in the registry")
	}
	return err
}

type registryStore struct {
	repo name.Repository
	opts []remote.Option
	im   *Image
}

func (s *registryStore) with(ctx context.Context) []remote.Option {
	return append(s.opts[:len(s.opts):len(s.opts)], remote.WithContext(ctx))
}

func (s *registryStore) manifest(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	desc, err := remote.Get(s.repo.Digest(d.Digest.String()), s.with(ctx)...)
	if err != nil {
		return nil, registryError(err)
	}
	if got := sha256Of(desc.Manifest); got != d.Digest {
		return nil, fmt.Errorf("manifest %s has %s: %w", d.Digest, got, ErrDigestMismatch)
	}
	return desc.Manifest, nil
}

func (s *registryStore) blob(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	if d.Size > maxJSON {
		return nil, fmt.Errorf("blob %s: %d bytes is too large", d.Digest, d.Size)
	}
	for try := 0; ; try++ {
		rc, cached, err := s.fetch(ctx, d.Digest)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxJSON+1))
		rc.Close()
		if err == nil && len(b) > maxJSON {
			err = fmt.Errorf("blob %s: too large", d.Digest)
		}
		if err != nil && cached && try == 0 {
			s.im.cache.removeBlob(d.Digest)
			continue
		}
		return b, err
	}
}

func (s *registryStore) layer(_ context.Context, d v1.Descriptor, diffID v1.Hash) (*Layer, error) {
	l := newLayer(s.im, d.Digest.String(), d.Digest, diffID, d.Size)
	l.fetch = func(ctx context.Context) (io.ReadCloser, bool, error) { return s.fetch(ctx, d.Digest) }
	return l, nil
}

// fetch streams a blob, verified against its digest as it is read: from
// the cache when it is there, else from the registry, written to the cache
// on the way and renamed into place once the digest has matched.
func (s *registryStore) fetch(ctx context.Context, h v1.Hash) (io.ReadCloser, bool, error) {
	c := s.im.cache
	if f, err := os.Open(c.path("blobs", h)); err == nil {
		used(f.Name())
		return readCloser{verify(f, h), f}, true, nil
	}
	l, err := remote.Layer(s.repo.Digest(h.String()), s.with(ctx)...)
	if err != nil {
		return nil, false, registryError(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, false, fmt.Errorf("blob %s: %w", h, registryError(err))
	}
	final := c.path("blobs", h)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		rc.Close()
		return nil, false, fmt.Errorf("cache: %w", err)
	}
	tmp, err := outfile.NewTemp(filepath.Dir(final), "")
	if err != nil {
		rc.Close()
		return nil, false, fmt.Errorf("cache: %w", err)
	}
	return &teeToCache{r: verify(rc, h), src: rc, tmp: tmp, final: final}, false, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// teeToCache copies a verified stream into a temporary file and renames it
// to its final name when the stream ends without error.
type teeToCache struct {
	r     io.Reader
	src   io.Closer
	tmp   *os.File
	final string
	done  bool
}

func (t *teeToCache) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 && !t.done {
		if _, werr := t.tmp.Write(p[:n]); werr != nil {
			return n, fmt.Errorf("cache: %w", werr)
		}
	}
	if err == io.EOF && !t.done {
		t.done = true
		if cerr := t.tmp.Close(); cerr != nil {
			os.Remove(t.tmp.Name())
			return n, fmt.Errorf("cache: %w", cerr)
		}
		if rerr := os.Rename(t.tmp.Name(), t.final); rerr != nil {
			os.Remove(t.tmp.Name())
			return n, fmt.Errorf("cache: %w", rerr)
		}
	}
	return n, err
}

func (t *teeToCache) Close() error {
	if !t.done {
		t.done = true
		t.tmp.Close()
		os.Remove(t.tmp.Name())
	}
	return t.src.Close()
}
