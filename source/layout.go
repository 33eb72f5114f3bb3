package source

import (
	"context"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// refNameAnnotation names an image in an OCI layout's index.json: the TAG
// of oci:DIR:TAG.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// openLayoutDir opens oci:DIR[:TAG|@DIGEST].
func openLayoutDir(ctx context.Context, im *Image, spec string, platform v1.Platform) error {
	dir, ref := splitPathRef(spec)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("oci:%s: %w", dir, err)
	}
	return readLayout(ctx, im, "oci:"+dir, dirFiles{root: dir, im: im}, ref, platform)
}

// openLayoutArchive opens oci-archive:FILE[:TAG]: the same layout, inside a
// tar file that is indexed and read in place, never extracted.
func openLayoutArchive(ctx context.Context, im *Image, spec string, platform v1.Platform) error {
	file, ref := splitPathRef(spec)
	name := "oci-archive:" + file
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	im.keep(f)
	t, err := indexTar(f)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return readLayout(ctx, im, name, t, ref, platform)
}

// readLayout picks the image ref names from a layout's index.json: a tag,
// a digest, the only entry, or (among several entries that say their
// platforms) the one for platform.
func readLayout(ctx context.Context, im *Image, name string, fsys files, ref string, platform v1.Platform) error {
	raw, err := readSmall(fsys, "index.json")
	if err != nil {
		return fmt.Errorf("%s: not an OCI image layout: %w", name, err)
	}
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
	if err != nil {
		return fmt.Errorf("%s: index.json: %w", name, err)
	}
	bs := layoutStore{fsys: fsys, im: im}
	var desc v1.Descriptor
	switch {
	case strings.HasPrefix(ref, "@"):
		h, err := v1.NewHash(ref[1:])
		if err != nil {
			return usagef("%s%s: %w", name, ref, err)
		}
		desc.Digest = h
		for _, d := range idx.Manifests {
			if d.Digest == h {
				desc = d
			}
		}
	case ref != "":
		found := false
		for _, d := range idx.Manifests {
			if d.Annotations[refNameAnnotation] == ref {
				desc, found = d, true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s: no tag %q in the layout (%s)", name, ref, layoutTags(idx))
		}
	case len(idx.Manifests) == 1:
		desc = idx.Manifests[0]
	case len(idx.Manifests) == 0:
		return fmt.Errorf("%s: the layout holds no image", name)
	default:
		// Several entries: treat index.json as the image index it is.
		if _, err := pickPlatform(idx.Manifests, platform); err != nil {
			return fmt.Errorf("%s: %d images and none for %s; name one as %s:TAG (%s)", name, len(idx.Manifests), platform, name, layoutTags(idx))
		}
		desc.MediaType = idx.MediaType
		return resolve(ctx, im, name, bs, desc, raw, platform)
	}
	return resolve(ctx, im, name, bs, desc, nil, platform)
}

func layoutTags(idx *v1.IndexManifest) string {
	var tags []string
	for _, d := range idx.Manifests {
		if t := d.Annotations[refNameAnnotation]; t != "" {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return "it has no tags"
	}
	return "tags: " + strings.Join(tags, ", ")
}

// layoutStore reads blobs from blobs/ALG/HEX of a layout.
type layoutStore struct {
	fsys files
	im   *Image
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

func (s layoutStore) manifest(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	return s.blob(ctx, d)
}

func (s layoutStore) blob(_ context.Context, d v1.Descriptor) ([]byte, error) {
	b, err := readSmall(s.fsys, blobName(d.Digest))
	if err != nil {
		return nil, err
	}
	if got := sha256Of(b); got != d.Digest {
		return nil, fmt.Errorf("blob %s has %s: %w", d.Digest, got, ErrDigestMismatch)
	}
	return b, nil
}

func (s layoutStore) layer(_ context.Context, d v1.Descriptor, diffID v1.Hash) (*Layer, error) {
	sr, err := s.fsys.open(blobName(d.Digest))
	if err != nil {
		return nil, err
	}
	l := newLayer(s.im, d.Digest.String(), d.Digest, diffID, sr.Size())
	l.local = sr
	return l, nil
}
