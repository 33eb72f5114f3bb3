package source

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocidisk/ocidisk/internal/compression"
)

// Plain paths. A SOURCE without a transport that names an existing file or
// directory is read as what it is, so that `ocidisk build ./root.tar` does
// what `tar:./root.tar` does; one that only looks like a path and does not
// exist is an error naming it, never a registry lookup.

// pathExtensions are the endings that make a missing SOURCE a path rather
// than a registry reference.
var pathExtensions = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2", ".deb", ".oci", ".img"}

// looksLikePath reports whether spec is meant as a host path: it starts
// like one, or ends like one.
func looksLikePath(spec string) bool {
	if strings.HasPrefix(spec, "/") || strings.HasPrefix(spec, "./") || strings.HasPrefix(spec, "../") ||
		spec == "." || spec == ".." || strings.HasPrefix(spec, "~") {
		return true
	}
	for _, ext := range pathExtensions {
		if strings.HasSuffix(spec, ext) {
			return true
		}
	}
	return false
}

// inferTransport returns the transport (with its colon) for a plain path
// that exists, "" for a spec that is not a plain path, or an error for a
// path that does not exist or cannot be read as any source.
func inferTransport(spec string) (string, error) {
	if hasTransport(spec) {
		return "", nil
	}
	st, err := os.Stat(spec)
	if err != nil {
		if looksLikePath(spec) {
			return "", fmt.Errorf("%s: %w", spec, err)
		}
		return "", nil // a registry reference
	}
	if st.IsDir() {
		switch {
		case exists(filepath.Join(spec, "oci-layout")):
			return "oci:", nil
		case isSkopeoDir(spec):
			return "dir:", nil // read as an image by openDir
		}
		return "dir:", nil
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: neither a file nor a directory", spec)
	}
	return sniffFile(spec)
}

// hasTransport reports whether spec starts with a transport ocidisk knows.
func hasTransport(spec string) bool {
	if strings.HasPrefix(spec, "docker://") {
		return true
	}
	for _, t := range localTransports {
		if strings.HasPrefix(spec, t) {
			return true
		}
	}
	return false
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// sniffFile tells what a file holds: a Debian package (ar), a compressed
// tar (one layer), or a tar that is an OCI layout, a docker save archive
// or a plain root tree.
func sniffFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	if bytes.Equal(head[:n], []byte("!<arch>\n")) {
		return "deb:", nil
	}
	kind, err := compression.SniffAt(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if kind != compression.None {
		return "tar:", nil // a compressed root tree
	}
	// An uncompressed tar: a layout or docker save archive has its
	// marker files among the first entries, a root tree has neither.
	tr := tar.NewReader(io.NewSectionReader(f, 0, 1<<62))
	for i := 0; i < 64; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%s: neither a tar, a compressed tar nor a Debian package: %w", name, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "oci-layout":
			return "oci-archive:", nil
		case "manifest.json":
			return "docker-archive:", nil
		}
	}
	return "tar:", nil
}

// Skopeo's dir: transport writes an image as a directory holding
// manifest.json, a "version" file and each blob named by its hex digest.

const skopeoVersionPrefix = "Directory Transport Version:"

// isSkopeoDir reports whether dir holds an image as skopeo's dir:
// transport writes it.
func isSkopeoDir(dir string) bool {
	v, err := os.ReadFile(filepath.Join(dir, "version"))
	return err == nil && strings.HasPrefix(string(v), skopeoVersionPrefix) && exists(filepath.Join(dir, "manifest.json"))
}

// openSkopeoDir opens a skopeo dir: image.
func openSkopeoDir(ctx context.Context, im *Image, dir string, platform v1.Platform) error {
	name := "dir:" + dir
	fsys := dirFiles{root: dir, im: im}
	raw, err := readSmall(fsys, "manifest.json")
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	d := v1.Descriptor{Digest: sha256Of(raw), Size: int64(len(raw))}
	return resolve(ctx, im, name, skopeoStore{layoutStore{fsys: fsys, im: im}, d, raw}, d, raw, platform)
}

// skopeoStore reads the blobs of a skopeo dir: by their hex digests; the
// top manifest is manifest.json.
type skopeoStore struct {
	layoutStore
	top v1.Descriptor
	raw []byte
}

func (s skopeoStore) manifest(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	if d.Digest == s.top.Digest {
		return s.raw, nil
	}
	return s.blob(ctx, d)
}

func (s skopeoStore) blob(_ context.Context, d v1.Descriptor) ([]byte, error) {
	b, err := readSmall(s.fsys, d.Digest.Hex)
	if err != nil {
		return nil, err
	}
	if got := sha256Of(b); got != d.Digest {
		return nil, fmt.Errorf("blob %s has %s: %w", d.Digest, got, ErrDigestMismatch)
	}
	return b, nil
}

func (s skopeoStore) layer(_ context.Context, d v1.Descriptor, diffID v1.Hash) (*Layer, error) {
	sr, err := s.fsys.open(d.Digest.Hex)
	if err != nil {
		return nil, err
	}
	l := newLayer(s.im, d.Digest.String(), d.Digest, diffID, sr.Size())
	l.local = sr
	return l, nil
}
