package testimages

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// refName is the annotation that gives an OCI layout entry its tag.
const refName = "org.opencontainers.image.ref.name"

// WriteLayout writes img as an OCI image layout in dir (created or added
// to), tagged tag unless tag is "".
func WriteLayout(dir, tag string, img v1.Image) error {
	p, err := openLayout(dir)
	if err != nil {
		return err
	}
	return p.AppendImage(img, annotations(tag)...)
}

// WriteLayoutIndex writes an image index (a multi-platform image) into the
// OCI image layout in dir, tagged tag unless tag is "".
func WriteLayoutIndex(dir, tag string, idx v1.ImageIndex) error {
	p, err := openLayout(dir)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, annotations(tag)...)
}

func openLayout(dir string) (layout.Path, error) {
	if p, err := layout.FromPath(dir); err == nil {
		return p, nil
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("layout %s: %w", dir, err)
	}
	return p, nil
}

func annotations(tag string) []layout.Option {
	if tag == "" {
		return nil
	}
	return []layout.Option{layout.WithAnnotations(map[string]string{refName: tag})}
}

// WriteOCIArchive writes img as an oci-archive: an OCI layout in a tar.
func WriteOCIArchive(file, tag string, img v1.Image) error {
	dir, err := os.MkdirTemp("", "oci-archive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := WriteLayout(dir, tag, img); err != nil {
		return err
	}
	return TarDir(dir, file)
}

// WriteDockerArchive writes img as docker save would, tagged tag
// ("name:tag").
func WriteDockerArchive(file, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(file, ref, img)
}

// TarDir writes the regular files and directories under dir into a plain
// tar file, sorted, with fixed owners and times.
func TarDir(dir, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: time.Unix(DefaultMtime, 0)}
		if d.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			return tw.WriteHeader(h)
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		h.Typeflag, h.Size = tar.TypeReg, st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return nil
}

// PlatformIndex makes an image index with one small image per platform,
// in the order given; each image's /etc/platform holds its platform.
func PlatformIndex(platforms ...string) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, ps := range platforms {
		img, err := PlatformMarkerImage(ps)
		if err != nil {
			return nil, err
		}
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, "application/vnd.oci.image.index.v1+json"), adds...), nil
}

// PlatformMarkerImage is the image PlatformIndex holds for platform.
func PlatformMarkerImage(platform string) (v1.Image, error) {
	l, err := LayerOf([]Entry{Dir("etc", 0o755), File("etc/platform", platform+"\n", 0o644)}, Gzip)
	if err != nil {
		return nil, err
	}
	return PlatformImageOf(platform, l)
}
