package debian

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/ocidisk/ocidisk/fstree"
)

// SourceDateEpoch is the time every generated entry, image config and
// mmdebstrap run uses, so that inputs are the same bytes on every run.
const SourceDateEpoch = 1700000000

// Epoch returns SourceDateEpoch as a time.
func Epoch() time.Time { return time.Unix(SourceDateEpoch, 0).UTC() }

// Platform returns the platform recorded in a layout's index unless
// another architecture is asked for: linux/arm64.
func Platform() v1.Platform { return v1.Platform{OS: "linux", Architecture: Arch} }

// PlatformOf returns the OCI platform of a Debian architecture: armhf is
// linux/arm/v7 (ARMv7 with VFPv3-D16, the baseline Debian builds it for).
func PlatformOf(debArch string) (v1.Platform, error) {
	switch debArch {
	case "arm64":
		return Platform(), nil
	case "armhf":
		return v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, nil
	}
	return v1.Platform{}, fmt.Errorf("architecture %q: want arm64 or armhf", debArch)
}

// DebianArch returns Debian's name for an architecture spelt the Debian,
// OCI or kernel way: arm64 or aarch64 is arm64; armhf, arm or arm/v7 is
// armhf.
func DebianArch(s string) (string, error) {
	switch strings.TrimPrefix(s, "linux/") {
	case "arm64", "aarch64", "arm64/v8":
		return "arm64", nil
	case "armhf", "arm", "arm/v7", "armv7l":
		return "armhf", nil
	}
	return "", fmt.Errorf("architecture %q: want arm64 or armhf (arm, arm/v7)", s)
}

// Tag is the ref.name annotation of the image in every layout, so
// "oci:DIR:latest" and "oci:DIR" both name it.
const Tag = "latest"

// layerEntry is one tar entry of a layer being written. Body is read for
// regular files with Hdr.Size > 0.
type layerEntry struct {
	Hdr  tar.Header
	Body fstree.Content
}

// writeLayer writes entries, in the order given, as a gzip-compressed tar at
// file.
func writeLayer(file string, entries []layerEntry) error {
	return writeGzip(file, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for i := range entries {
			e := &entries[i]
			if err := tw.WriteHeader(&e.Hdr); err != nil {
				return fmt.Errorf("%s: %w", e.Hdr.Name, err)
			}
			if e.Hdr.Typeflag != tar.TypeReg || e.Hdr.Size == 0 {
				continue
			}
			r, err := e.Body.Open()
			if err != nil {
				return fmt.Errorf("%s: %w", e.Hdr.Name, err)
			}
			_, err = io.Copy(tw, r)
			r.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", e.Hdr.Name, err)
			}
		}
		return tw.Close()
	})
}

// writeGzip writes what write writes, gzip-compressed, at file. The gzip
// stream has no name or time, so it depends on the content alone.
func writeGzip(file string, write func(io.Writer) error) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if err := write(zw); err != nil {
		return fmt.Errorf("layer %s: %w", file, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("layer %s: %w", file, err)
	}
	return f.Close()
}

// imageSpec describes an image to write as an OCI layout.
type imageSpec struct {
	Layers    []string // gzip tar files, bottom layer first
	CreatedBy []string // one history line per layer
	Cmd       []string
	Platform  v1.Platform // linux/arm64 when empty
}

// writeLayout writes spec as an OCI image layout at dir with one image in
// its index, for spec's platform, OCI media types and fixed times. It
// returns the manifest digest.
func writeLayout(dir string, spec imageSpec) (v1.Hash, error) {
	platform := spec.Platform
	if platform.Architecture == "" {
		platform = Platform()
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: platform.Architecture,
		Variant:      platform.Variant,
		OS:           platform.OS,
		Created:      v1.Time{Time: Epoch()},
		Config: v1.Config{
			Cmd: spec.Cmd,
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return v1.Hash{}, err
	}
	for i, file := range spec.Layers {
		l, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return v1.Hash{}, fmt.Errorf("layer %s: %w", file, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: Epoch()}, CreatedBy: spec.CreatedBy[i]},
		})
		if err != nil {
			return v1.Hash{}, fmt.Errorf("layer %s: %w", file, err)
		}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("layout %s: %w", dir, err)
	}
	if err := p.AppendImage(img, layout.WithPlatform(platform),
		layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": Tag})); err != nil {
		return v1.Hash{}, fmt.Errorf("layout %s: %w", dir, err)
	}
	return img.Digest()
}

// layerBlobs returns the paths of the layer blobs of the single image in
// the layout at dir, bottom first.
func layerBlobs(dir string) ([]string, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		return nil, fmt.Errorf("layout %s: want one image in the index (%v)", dir, err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	var out []string
	for _, l := range mf.Layers {
		out = append(out, filepath.Join(dir, "blobs", l.Digest.Algorithm, l.Digest.Hex))
	}
	return out, nil
}
