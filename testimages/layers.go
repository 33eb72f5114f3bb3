// Package testimages makes deterministic test inputs: synthetic OCI images
// built in Go with go-containerregistry, above all the conformance corpus
// (Corpus) that every way of reading an image must flatten to the listing
// written by hand beside each case. Subpackages make inputs from real
// Debian packages (debian) and random trees (randtree).
//
// Nothing here is shipped to users; everything is exported so that tests of
// any package, and a registry push, can reuse the builders.
package testimages

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultMtime is the mtime (Unix seconds) of every entry that does not set
// one, and of every line of an expected listing that does not say.
const DefaultMtime = 1_700_000_000

// Entry is one tar entry of a synthetic layer, written exactly as given:
// Name may be "./etc/", "/abs", "../escape" or ".wh.foo".
type Entry struct {
	Name         string
	Type         byte // archive/tar's Typeflag
	Mode         int64
	UID, GID     int
	Body         string // regular file content
	Link         string // symlink target, or hardlink target name
	Major, Minor int64
	Mtime        time.Time // zero: DefaultMtime
	Atime, Ctime time.Time // zero: none (PAX atime and ctime records)
	Xattrs       map[string]string
	PAX          map[string]string // further PAX records
}

// File is a regular file.
func File(name, body string, mode int64) Entry {
	return Entry{Name: name, Type: tar.TypeReg, Mode: mode, Body: body}
}

// Dir is a directory; a trailing slash is added when missing.
func Dir(name string, mode int64) Entry {
	if !strings.HasSuffix(name, "/") {
		name += "/"
	}
	return Entry{Name: name, Type: tar.TypeDir, Mode: mode}
}

// Symlink is a symlink, mode 0777 as Linux makes them.
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Mode: 0o777, Link: target}
}

// Hardlink is a tar hardlink to the entry called target.
func Hardlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeLink, Mode: 0o644, Link: target}
}

// CharDev, BlockDev and FIFO are device nodes.
func CharDev(name string, mode, major, minor int64) Entry {
	return Entry{Name: name, Type: tar.TypeChar, Mode: mode, Major: major, Minor: minor}
}

// BlockDev is a block device node.
func BlockDev(name string, mode, major, minor int64) Entry {
	return Entry{Name: name, Type: tar.TypeBlock, Mode: mode, Major: major, Minor: minor}
}

// FIFO is a named pipe.
func FIFO(name string, mode int64) Entry {
	return Entry{Name: name, Type: tar.TypeFifo, Mode: mode}
}

// Whiteout hides p in the lower layers: an empty file p's-dir/.wh.BASE, as
// docker and buildkit write it.
func Whiteout(p string) Entry {
	dir, base := path.Split(strings.TrimSuffix(p, "/"))
	return Entry{Name: dir + ".wh." + base, Type: tar.TypeReg, Mode: 0o644}
}

// Opaque hides everything lower layers put in directory dir ("" or "./"
// for the root).
func Opaque(dir string) Entry {
	dir = strings.TrimSuffix(dir, "/")
	if dir != "" {
		dir += "/"
	}
	return Entry{Name: dir + ".wh..wh..opq", Type: tar.TypeReg, Mode: 0o644}
}

// Own returns e owned by uid:gid.
func (e Entry) Own(uid, gid int) Entry { e.UID, e.GID = uid, gid; return e }

// At returns e with mtime t (Unix seconds).
func (e Entry) At(t int64) Entry { e.Mtime = time.Unix(t, 0); return e }

// Xattr returns e with one more extended attribute.
func (e Entry) Xattr(k, v string) Entry {
	m := maps.Clone(e.Xattrs)
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	e.Xattrs = m
	return e
}

// TarOf writes entries as a PAX tar, in order, with empty user and group
// names.
func TarOf(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			Linkname: e.Link, Devmajor: e.Major, Devminor: e.Minor,
			ModTime: e.Mtime, AccessTime: e.Atime, ChangeTime: e.Ctime, Format: tar.FormatPAX,
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(DefaultMtime, 0)
		}
		if e.Type == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if len(e.Xattrs)+len(e.PAX) > 0 {
			h.PAXRecords = maps.Clone(e.PAX)
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			for _, k := range slices.Sorted(maps.Keys(e.Xattrs)) {
				h.PAXRecords["SCHILY.xattr."+k] = e.Xattrs[k]
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.Name, err)
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Compression of a synthetic layer blob.
const (
	Gzip         = "gzip"
	Zstd         = "zstd"
	Uncompressed = "none"
)

// LayerOf makes a layer of entries, compressed as asked ("" is Gzip).
func LayerOf(entries []Entry, comp string) (v1.Layer, error) {
	b, err := TarOf(entries)
	if err != nil {
		return nil, err
	}
	return LayerFromTar(b, comp)
}

// LayerFromTar makes a layer of an uncompressed tar.
func LayerFromTar(b []byte, comp string) (v1.Layer, error) {
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	switch comp {
	case "", Gzip:
		return tarball.LayerFromOpener(opener, tarball.WithMediaType(types.OCILayer))
	case Zstd:
		return tarball.LayerFromOpener(opener, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	case Uncompressed:
		return static.NewLayer(b, types.OCIUncompressedLayer), nil
	}
	return nil, fmt.Errorf("compression %q: want gzip, zstd or none", comp)
}

// ImageOf makes a linux/arm64 OCI image of layers, oldest first.
func ImageOf(layers ...v1.Layer) (v1.Image, error) {
	return PlatformImageOf("linux/arm64", layers...)
}

// PlatformImageOf makes an OCI image for platform ("linux/arm/v7") of
// layers, oldest first. Everything is fixed, so the digest is too.
func PlatformImageOf(platform string, layers ...v1.Layer) (v1.Image, error) {
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		OS: p.OS, Architecture: p.Architecture, Variant: p.Variant,
		Config: v1.Config{Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(img, layers...)
}

// CheckBlobs reads every layer of img, compressed and uncompressed, and
// checks each against the digest and diffID the image gives, and the
// diffIDs against the config: go-containerregistry's validate.Image does
// as much for gzip layers only.
func CheckBlobs(img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if len(cfg.RootFS.DiffIDs) != len(ls) {
		return fmt.Errorf("%d layers, %d diffIDs", len(ls), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range ls {
		for _, c := range []struct {
			open func() (io.ReadCloser, error)
			want func() (v1.Hash, error)
		}{{l.Compressed, l.Digest}, {l.Uncompressed, l.DiffID}} {
			rc, err := c.open()
			if err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			got, _, err := v1.SHA256(rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			if want, _ := c.want(); got != want {
				return fmt.Errorf("layer %d: content %s, want %s", i, got, want)
			}
		}
		if id, _ := l.DiffID(); id != cfg.RootFS.DiffIDs[i] {
			return fmt.Errorf("layer %d: diffID %s, the config says %s", i, id, cfg.RootFS.DiffIDs[i])
		}
	}
	return nil
}
