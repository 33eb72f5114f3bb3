package source

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blobStore is where an image's manifests and blobs come from: a layout
// directory, an archive or a registry.
type blobStore interface {
	// manifest returns the manifest or index d names, verified.
	manifest(ctx context.Context, d v1.Descriptor) ([]byte, error)
	// blob returns a small blob (a config) whole, verified.
	blob(ctx context.Context, d v1.Descriptor) ([]byte, error)
	// layer returns the layer for descriptor d with its diffID.
	layer(ctx context.Context, d v1.Descriptor, diffID v1.Hash) (*Layer, error)
}

// maxJSON bounds the manifests and configs read into memory.
const maxJSON = 16 << 20

// resolve follows desc (whose bytes are raw when already read) through
// image indexes to the manifest for platform, and fills im from it.
func resolve(ctx context.Context, im *Image, name string, bs blobStore, desc v1.Descriptor, raw []byte, platform v1.Platform) error {
	for depth := 0; ; depth++ {
		if raw == nil {
			var err error
			if raw, err = bs.manifest(ctx, desc); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		mt := desc.MediaType
		if mt == "" {
			mt = sniffMediaType(raw)
		}
		if !mt.IsIndex() {
			return useManifest(ctx, im, name, bs, desc, raw, platform)
		}
		if depth == 4 {
			return fmt.Errorf("%s: image indexes nested too deep", name)
		}
		idx, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
		if err != nil {
			return fmt.Errorf("%s: index %s: %w", name, desc.Digest, err)
		}
		child, err := pickPlatform(idx.Manifests, platform)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		desc, raw = child, nil
	}
}

// sniffMediaType reads the media type a manifest declares, telling an
// index by its "manifests" list when it declares none.
func sniffMediaType(raw []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType   `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	_ = json.Unmarshal(raw, &probe)
	if probe.MediaType != "" {
		return probe.MediaType
	}
	if probe.Manifests != nil {
		return types.OCIImageIndex
	}
	return types.OCIManifestSchema1
}

// useManifest reads an image manifest and its config into im.
func useManifest(ctx context.Context, im *Image, name string, bs blobStore, desc v1.Descriptor, raw []byte, platform v1.Platform) error {
	if mt := desc.MediaType; mt == types.DockerManifestSchema1 || mt == types.DockerManifestSchema1Signed {
		return fmt.Errorf("%s: Docker schema 1 manifests are not supported", name)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil {
		return fmt.Errorf("%s: manifest %s: %w", name, desc.Digest, err)
	}
	cfgRaw, err := bs.blob(ctx, m.Config)
	if err != nil {
		return fmt.Errorf("%s: config: %w", name, err)
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(cfgRaw)))
	if err != nil {
		return fmt.Errorf("%s: config %s: %w", name, m.Config.Digest, err)
	}
	if err := checkConfigPlatform(cfg, platform); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("%s: manifest lists %d layers but the config %d diffIDs", name, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	im.ID = desc.Digest.String()
	if desc.Digest == (v1.Hash{}) {
		im.ID = sha256Of(raw).String()
	}
	im.Config = cfg
	for i, ld := range m.Layers {
		l, err := bs.layer(ctx, ld, cfg.RootFS.DiffIDs[i])
		if err != nil {
			return fmt.Errorf("%s: layer %s: %w", name, ld.Digest, err)
		}
		im.Layers = append(im.Layers, l)
	}
	mt := desc.MediaType
	if mt == "" {
		mt = m.MediaType
	}
	if mt == "" {
		mt = sniffMediaType(raw)
	}
	im.keepManifest(raw, mt, m, cfgRaw)
	return nil
}

// pickPlatform returns the first entry of an index for platform, or an
// error listing the platforms there are.
func pickPlatform(ds []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	var have []string
	for _, d := range ds {
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue // attestations and other non-images
		}
		if platformMatches(want, *d.Platform) {
			return d, nil
		}
		if s := d.Platform.String(); !slices.Contains(have, s) {
			have = append(have, s)
		}
	}
	if len(have) == 0 {
		return v1.Descriptor{}, fmt.Errorf("no %s in index; it names no platforms", want)
	}
	return v1.Descriptor{}, fmt.Errorf("no %s in index; it has %s", want, strings.Join(have, ", "))
}

// platformMatches compares OS and architecture exactly and the variant when
// one is asked for, taking an arm64 image without a variant as v8 and an
// arm image without one as v7 (the conventions of Docker and containerd).
func platformMatches(want, have v1.Platform) bool {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	return normVariant(want) == normVariant(have)
}

func normVariant(p v1.Platform) string {
	switch {
	case p.Variant != "":
		return p.Variant
	case p.Architecture == "arm64":
		return "v8"
	case p.Architecture == "arm":
		return "v7"
	}
	return ""
}

// PlatformError is a single-platform image built for another platform
// than the one asked for.
type PlatformError struct{ Have, Want v1.Platform }

func (e *PlatformError) Error() string {
	return fmt.Sprintf("image is for %s, not %s", e.Have.String(), e.Want.String())
}

// checkConfigPlatform refuses a single-platform image built for another
// platform; an image that does not say is taken as it is.
func checkConfigPlatform(cfg *v1.ConfigFile, want v1.Platform) error {
	if cfg.OS == "" || cfg.Architecture == "" {
		return nil
	}
	have := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if !platformMatches(want, have) {
		return &PlatformError{Have: have, Want: want}
	}
	return nil
}
