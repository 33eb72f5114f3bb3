package commit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/inspect/ext4"
	"github.com/ocidisk/ocidisk/internal/compression"
	"github.com/ocidisk/ocidisk/mkfs/tar"
)

// overlayXattrPrefix names overlayfs' own xattrs in an upper directory:
// bookkeeping of the mount, never part of a layer.
const overlayXattrPrefix = "trusted.overlay."

// OCI whiteouts: an entry .wh.NAME deletes NAME of the lower layers; the
// entry .wh..wh..opq in a directory hides all the lower layers put there.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// LayerTree turns an overlayfs upper directory into the tree of an OCI
// layer, in place: a whiteout (a character device 0:0) becomes an empty
// file .wh.NAME, a directory whose trusted.overlay.opaque is "y" gets a
// .wh..wh..opq entry, and overlayfs' xattrs go. Every other entry is kept
// as it is: owner, mode, xattrs, hardlinks, devices, FIFOs. Redirects and
// metacopy files, which no layer can express, are an error (the init
// mounts without them). It returns the number of whiteouts made, opaque
// markers included.
func LayerTree(t *fstree.Tree) (int, error) {
	whiteouts := 0
	var fix func(p string, dir *fstree.Node) error
	fix = func(p string, dir *fstree.Node) error {
		opaque, err := dropOverlayXattrs(p, dir)
		if err != nil {
			return err
		}
		if opaque {
			if dir.Child(opaqueMarker) != nil {
				return fmt.Errorf("/%s: holds a file named %s", p, opaqueMarker)
			}
			dir.SetChild(opaqueMarker, whiteoutFile(dir))
			whiteouts++
		}
		for _, e := range dir.Entries() {
			cp := path.Join(p, e.Name)
			n := e.Node
			if e.Name == opaqueMarker && opaque {
				continue
			}
			if strings.HasPrefix(e.Name, whiteoutPrefix) {
				return fmt.Errorf("/%s: a name starting with %s cannot be kept in an OCI layer", cp, whiteoutPrefix)
			}
			if n.Type == fstree.TypeCharDev && n.Major == 0 && n.Minor == 0 {
				dir.RemoveChild(e.Name)
				dir.SetChild(whiteoutPrefix+e.Name, whiteoutFile(dir))
				whiteouts++
				continue
			}
			if n.IsDir() {
				if err := fix(cp, n); err != nil {
					return err
				}
			} else if _, err := dropOverlayXattrs(cp, n); err != nil {
				return err
			}
		}
		return nil
	}
	return whiteouts, fix("", t.Root)
}

// whiteoutFile is a whiteout entry in dir: an empty file owned by root,
// with the directory's time.
func whiteoutFile(dir *fstree.Node) *fstree.Node {
	n := fstree.NewFile(0, 0, nil)
	n.Mtime = dir.Mtime
	return n
}

// dropOverlayXattrs removes overlayfs' xattrs from n (at path p) and
// reports whether it is an opaque directory.
func dropOverlayXattrs(p string, n *fstree.Node) (opaque bool, err error) {
	for k, v := range n.Xattrs {
		name, ok := strings.CutPrefix(k, overlayXattrPrefix)
		if !ok {
			continue
		}
		switch name {
		case "opaque":
			// "x" marks a directory that merely holds whiteouts
			// (Linux 6.7 and later): not opaque.
			opaque = n.IsDir() && v == "y"
		case "redirect", "metacopy":
			return false, fmt.Errorf("/%s: overlayfs left a %s, which no OCI layer can express", p, name)
		}
		delete(n.Xattrs, k)
	}
	if len(n.Xattrs) == 0 {
		n.Xattrs = nil
	}
	return opaque, nil
}

// builtLayer is the new layer, compressed in a file.
type builtLayer struct {
	file      string
	mediaType types.MediaType
	info      LayerInfo
}

// makeLayer reads the upper directory from the scratch disk, turns it into
// a layer (times clamped to epoch) and writes it compressed to file.
func makeLayer(scratch, file, compression string, mt types.MediaType, epoch time.Time, times *Times) (*builtLayer, error) {
	start := time.Now()
	f, err := os.Open(scratch)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fsys, err := ext4.Open(f, 0, st.Size())
	if err != nil {
		return nil, fmt.Errorf("scratch disk: %w", err)
	}
	t, err := fsys.Tree(protocol.CommitUpper)
	if err != nil {
		return nil, fmt.Errorf("scratch disk: %w", err)
	}
	wh, err := LayerTree(t)
	if err != nil {
		return nil, err
	}
	t.ClampTimes(epoch)
	times.Pack = time.Since(start)
	start = time.Now()
	l := &builtLayer{file: file, mediaType: mt, info: LayerInfo{Whiteouts: wh}}
	_ = t.Walk(func(string, *fstree.Node) error { l.info.Entries++; return nil })
	if l.info, err = writeLayer(file, t, compression, l.info); err != nil {
		return nil, err
	}
	times.Compress = time.Since(start)
	return l, nil
}

// writeLayer writes t as a compressed tar to file, hashing the tar
// (diffID) and the compressed bytes (digest) on the way.
func writeLayer(file string, t *fstree.Tree, compression string, info LayerInfo) (LayerInfo, error) {
	out, err := os.Create(file)
	if err != nil {
		return info, err
	}
	defer out.Close()
	digest := sha256.New()
	counted := &countWriter{w: io.MultiWriter(out, digest)}
	var zw io.WriteCloser
	switch compression {
	case Zstd:
		// One encoder goroutine: the same bytes whatever the host.
		zw, err = zstd.NewWriter(counted, zstd.WithEncoderConcurrency(1))
	default:
		zw, err = gzip.NewWriterLevel(counted, gzip.DefaultCompression)
	}
	if err != nil {
		return info, err
	}
	diffID := sha256.New()
	if err := tar.Write(io.MultiWriter(zw, diffID), t); err != nil {
		return info, fmt.Errorf("layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return info, fmt.Errorf("layer: %w", err)
	}
	if err := out.Close(); err != nil {
		return info, err
	}
	info.Digest, info.DiffID, info.Size = sha256Hash(digest), sha256Hash(diffID), counted.n
	return info, nil
}

func sha256Hash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fileLayer is the built layer as a v1.Layer, its digests known.
type fileLayer struct{ *builtLayer }

func (l fileLayer) Digest() (v1.Hash, error)            { return l.info.Digest, nil }
func (l fileLayer) DiffID() (v1.Hash, error)            { return l.info.DiffID, nil }
func (l fileLayer) Size() (int64, error)                { return l.info.Size, nil }
func (l fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

func (l fileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.file) }

func (l fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.file)
	if err != nil {
		return nil, err
	}
	d, _, err := compression.Open(f, compression.Options{Name: "layer " + l.file})
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{d, f}, nil
}

// readCloser closes a decompressor and its file.
type readCloser struct {
	io.ReadCloser
	f *os.File
}

func (r readCloser) Close() error {
	r.ReadCloser.Close()
	return r.f.Close()
}
