package commit

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocidisk/ocidisk/rootfs"
)

// base is the image the new layer goes on.
type base struct {
	img v1.Image // nil until made, for a source that is not an image
	// layerType is the media type of a layer in the base's manifest
	// family (Docker or OCI) and compression.
	layerType types.MediaType
	// fromTree is the source tree, when the source is not an image and
	// becomes the base's one layer.
	fromTree *rootfs.Image
	source   string
}

// baseImage finds the image to commit on: the source as stored, or, for
// a source that is not an image (tar:, dir:, deb:), a new OCI image whose
// one layer is the flattened source.
func baseImage(img *rootfs.Image, opts Options) (*base, error) {
	v, err := img.V1()
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", opts.Source, err)
	}
	b := &base{img: v, source: opts.Source}
	docker := false
	if v != nil {
		mt, err := v.MediaType()
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", opts.Source, err)
		}
		docker = mt == types.DockerManifestSchema2
	} else {
		b.fromTree = img
	}
	switch {
	case docker && opts.Compression == Zstd:
		return nil, fieldErr("Compression", "the source %s is a Docker image, whose manifests have no zstd layers: commit it with gzip", opts.Source)
	case docker:
		b.layerType = types.DockerLayer
	case opts.Compression == Zstd:
		b.layerType = types.OCILayerZStd
	default:
		b.layerType = types.OCILayer
	}
	return b, nil
}

// append puts the built layer on the base, with a history entry naming
// the steps, and the config's and history's times at epoch.
func (b *base) append(l *builtLayer, opts Options, epoch time.Time) (v1.Image, error) {
	at := v1.Time{Time: epoch}
	img := b.img
	if img == nil {
		var err error
		if img, err = b.treeImage(l, opts, at); err != nil {
			return nil, err
		}
	}
	img, err := mutate.Append(img, mutate.Addendum{
		Layer:     fileLayer{l},
		MediaType: b.layerType,
		History:   v1.History{Created: at, CreatedBy: history(opts), Comment: "ocidisk commit"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, at)
}

// treeImage makes the base of a source that is not an image: an OCI
// image for the platform whose one layer is the flattened source.
func (b *base) treeImage(l *builtLayer, opts Options, at v1.Time) (v1.Image, error) {
	arch, err := guestArch(b.fromTree, opts.Sources.Platform)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{OS: "linux", Architecture: arch, Created: at}
	if opts.Sources.Platform != "" {
		if p, err := v1.ParsePlatform(opts.Sources.Platform); err == nil && p.Architecture == arch {
			cfg.Variant = p.Variant
		}
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(filepath.Dir(l.file), "base-layer")
	info, err := writeLayer(file, b.fromTree.Tree, opts.Compression, LayerInfo{})
	if err != nil {
		return nil, fmt.Errorf("the source as a layer: %w", err)
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:     fileLayer{&builtLayer{file: file, mediaType: b.layerType, info: info}},
		MediaType: b.layerType,
		History:   v1.History{Created: at, CreatedBy: "ocidisk commit: " + b.source, Comment: "the source, flattened"},
	})
}

// history is the history entry's created_by: the steps and copies, as a
// Dockerfile would say them.
func history(opts Options) string {
	var parts []string
	for _, c := range opts.Copies {
		parts = append(parts, "COPY "+filepath.Base(c.Host)+" "+c.Guest)
	}
	for _, s := range opts.Steps {
		if s.Script != "" {
			parts = append(parts, "RUN "+s.String())
		} else {
			parts = append(parts, "RUN "+s.Run)
		}
	}
	return "ocidisk commit: " + strings.Join(parts, " && ")
}
