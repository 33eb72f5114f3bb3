package source

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocidisk/ocidisk/internal/compression"
)

// stored is what an image source keeps of the image as stored, for V1:
// the manifest and config bytes as read, and the layers by blob digest.
type stored struct {
	manifest  []byte
	mediaType types.MediaType
	config    []byte
	configID  v1.Hash
	layers    map[v1.Hash]*storedLayer
}

// storedLayer is a layer's blob as the manifest names it.
type storedLayer struct {
	l    *Layer
	desc v1.Descriptor
}

// keepManifest records the manifest and config an image was read from,
// and its layers (whose blob digests the manifest gives).
func (im *Image) keepManifest(raw []byte, mt types.MediaType, m *v1.Manifest, cfgRaw []byte) {
	s := &stored{manifest: raw, mediaType: mt, config: cfgRaw, configID: m.Config.Digest, layers: map[v1.Hash]*storedLayer{}}
	for i, d := range m.Layers {
		s.layers[d.Digest] = &storedLayer{l: im.Layers[i], desc: d}
	}
	im.stored = s
}

// V1 returns the image as go-containerregistry models it, for writing it
// out again with more layers (ocidisk commit): its manifest and config
// exactly as stored, and its layers' blobs read where this package reads
// them (the layout's or archive's files, the registry through the blob
// cache), unchanged, each verified against its digest as it is read. A
// docker-archive, which stores no manifest, gets an OCI one naming its
// blobs as they are. Sources that are not images (tar:, deb:, dir:) have
// none: V1 returns nil.
func (im *Image) V1() (v1.Image, error) {
	if im.stored == nil && im.dockerConfig != nil {
		if err := im.dockerManifest(); err != nil {
			return nil, err
		}
	}
	if im.stored == nil {
		return nil, nil
	}
	return partial.CompressedToImage(storedImage{im.stored})
}

// dockerManifest writes the OCI manifest of a docker-archive image.
func (im *Image) dockerManifest() error {
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(im.dockerConfig)), Digest: sha256Of(im.dockerConfig)},
	}
	for _, l := range im.Layers {
		kind, err := compression.SniffAt(l.local)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.name, err)
		}
		d := v1.Descriptor{Size: l.local.Size(), Digest: l.blob}
		switch kind {
		case compression.None:
			d.MediaType = types.OCIUncompressedLayer
			d.Digest = l.diffID
		case compression.Gzip:
			d.MediaType = types.OCILayer
		case compression.Zstd:
			d.MediaType = types.OCILayerZStd
		default:
			return fmt.Errorf("layer %s: %s layers have no OCI media type", l.name, kind)
		}
		if d.Digest == (v1.Hash{}) {
			if d.Digest, err = hashReader(context.Background(), io.NewSectionReader(l.local, 0, l.local.Size()), nil); err != nil {
				return fmt.Errorf("layer %s: %w", l.name, err)
			}
		}
		m.Layers = append(m.Layers, d)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	im.keepManifest(raw, m.MediaType, &m, im.dockerConfig)
	return nil
}

// storedImage is a partial.CompressedImageCore over what was stored.
type storedImage struct{ s *stored }

func (i storedImage) RawConfigFile() ([]byte, error)      { return i.s.config, nil }
func (i storedImage) MediaType() (types.MediaType, error) { return i.s.mediaType, nil }
func (i storedImage) RawManifest() ([]byte, error)        { return i.s.manifest, nil }
func (i storedImage) ConfigName() (v1.Hash, error)        { return i.s.configID, nil }
func (i storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.s.layers[h]; ok {
		return storedBlob{l}, nil
	}
	if h == i.s.configID {
		return static.NewLayer(i.s.config, types.OCIConfigJSON), nil
	}
	return nil, fmt.Errorf("blob %s is not in the image", h)
}

// storedBlob is a partial.CompressedLayer over a layer's stored blob.
type storedBlob struct{ *storedLayer }

func (b storedBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b storedBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b storedBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }

// DiffID spares go-containerregistry decompressing the blob to learn it.
func (b storedBlob) DiffID() (v1.Hash, error) {
	if b.l.diffID == (v1.Hash{}) {
		return v1.Hash{}, fmt.Errorf("layer %s: no diffID known", b.l.name)
	}
	return b.l.diffID, nil
}

// Compressed returns the blob as stored, verified as it is read.
func (b storedBlob) Compressed() (io.ReadCloser, error) {
	if b.l.local != nil {
		return io.NopCloser(verify(io.NewSectionReader(b.l.local, 0, b.l.local.Size()), b.desc.Digest)), nil
	}
	rc, _, err := b.l.fetch(context.Background())
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", b.l.name, err)
	}
	return rc, nil
}
