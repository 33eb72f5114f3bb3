package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocidisk/ocidisk/internal/compression"
)

// Layer is one filesystem changeset of an image: a tar archive, stored
// compressed or not.
type Layer struct {
	im       *Image
	name     string  // how messages name the layer
	blob     v1.Hash // digest of the stored bytes; zero when unknown
	diffID   v1.Hash // digest of the uncompressed tar; zero when unknown
	size     int64   // stored bytes, for progress
	verified bool    // the stored bytes were already hashed against blob

	// local is the stored blob in a local file (layout, archive, tar or
	// deb file), or nil when the blob must be fetched.
	local *io.SectionReader
	// fetch streams a remote blob, verified against blob as it is read;
	// cached reports that the stream comes from the blob cache.
	fetch func(ctx context.Context) (r io.ReadCloser, cached bool, err error)
}

func newLayer(im *Image, name string, blob, diffID v1.Hash, size int64) *Layer {
	im.progress.expect(size)
	return &Layer{im: im, name: name, blob: blob, diffID: diffID, size: size}
}

// Digest names the layer: its blob digest, or when only the uncompressed
// content is named (docker-archive), its diffID.
func (l *Layer) Digest() string { return l.name }

// Size is the number of bytes the layer stores (compressed, as a blob).
func (l *Layer) Size() int64 { return l.size }

// DiffID is the digest of the uncompressed tar when the image names it,
// else "" until the layer has been opened once.
func (l *Layer) DiffID() string {
	if l.diffID == (v1.Hash{}) {
		return ""
	}
	return l.diffID.String()
}

// Open returns the layer's uncompressed tar with random access, verified:
// read in place when the blob is an uncompressed local file, otherwise
// decompressed: into a temporary the first time, into the cache the
// second, and read from the cache after (see cache). The
// returned reader stays valid until the Image is closed. Layers of one
// image may be opened concurrently.
func (l *Layer) Open(ctx context.Context) (*io.SectionReader, error) {
	sr, err := l.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.name, err)
	}
	return sr, nil
}

func (l *Layer) open(ctx context.Context) (*io.SectionReader, error) {
	c := l.im.cache
	diffID := l.diffID
	if diffID == (v1.Hash{}) && l.blob != (v1.Hash{}) {
		diffID = c.alias(l.blob)
	}
	if diffID != (v1.Hash{}) {
		sr, ok, err := c.openLayer(ctx, l.im, diffID, nil)
		if err != nil {
			return nil, err
		}
		if ok {
			l.im.progress.add(l.size)
			l.im.log.Debug("layer from cache", "layer", l.name, "diffID", diffID)
			return sr, nil
		}
	}
	if l.local != nil {
		kind, err := compression.SniffAt(l.local)
		if err != nil {
			return nil, err
		}
		if kind == compression.None {
			return l.inPlace(ctx)
		}
		r := io.Reader(io.NewSectionReader(l.local, 0, l.local.Size()))
		if !l.verified {
			r = verify(r, l.blob)
		}
		return l.materialize(ctx, r)
	}
	for try := 0; ; try++ {
		rc, cached, err := l.fetch(ctx)
		if err != nil {
			return nil, err
		}
		sr, err := l.materialize(ctx, rc)
		rc.Close()
		if err != nil && cached && try == 0 && errors.Is(err, ErrDigestMismatch) {
			// A damaged cache entry is not the registry's fault: drop it
			// and download the blob again.
			l.im.log.Warn("cached blob is damaged; downloading it again", "layer", l.name, "err", err)
			c.removeBlob(l.blob)
			continue
		}
		return sr, err
	}
}

// inPlace checks an uncompressed local blob against its digests and
// returns it as is: no copy.
func (l *Layer) inPlace(ctx context.Context) (*io.SectionReader, error) {
	want := l.blob
	if want == (v1.Hash{}) || l.verified {
		want = l.diffID
	}
	if want != (v1.Hash{}) {
		got, err := hashReader(ctx, io.NewSectionReader(l.local, 0, l.local.Size()), l.im.progress)
		if err != nil {
			return nil, err
		}
		if got != want {
			return nil, fmt.Errorf("content is %s: %w", got, ErrDigestMismatch)
		}
		if l.diffID != (v1.Hash{}) && got != l.diffID {
			return nil, fmt.Errorf("uncompressed content is %s, the config says %s: %w", got, l.diffID, ErrDigestMismatch)
		}
	} else {
		l.im.progress.add(l.size)
	}
	return l.local, nil
}

// materialize decompresses a blob stream: into the cache when a build
// decompressed the layer before, else into a temporary (see cache).
func (l *Layer) materialize(ctx context.Context, r io.Reader) (*io.SectionReader, error) {
	c := l.im.cache
	key := cmp.Or(l.blob, l.diffID)
	keep := key != (v1.Hash{}) && c.seen(key)
	l.im.log.Debug("decompressing layer", "layer", l.name, "cached", keep)
	sr, diffID, err := c.writeLayer(l.im, &progressReader{ctx: ctx, r: r, p: l.im.progress}, l.diffID, keep)
	if err != nil {
		return nil, err
	}
	switch {
	case !keep && key != (v1.Hash{}):
		c.markSeen(key)
	case keep && l.diffID == (v1.Hash{}) && l.blob != (v1.Hash{}):
		c.setAlias(l.blob, diffID)
	}
	return sr, nil
}
