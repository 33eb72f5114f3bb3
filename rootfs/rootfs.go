// Package rootfs turns an image's layers into one filesystem tree, with the
// semantics of the OCI image spec and of overlayfs as container runtimes
// apply it: whiteouts and opaque directories hide lower layers, later
// entries replace earlier ones of any type, hardlinks join the same inode
// (also across layers), and everything is taken exactly as written: owners,
// all mode bits, times, xattrs, device numbers, symlink targets.
//
// Nothing is extracted: file content in the tree is a section of the
// verified, uncompressed layer tar (see package source), so memory grows
// with the number of entries, not with their size.
package rootfs

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/source"
)

// Image is a source flattened into a tree.
type Image struct {
	// Tree is the flattened filesystem. Its content reads from files that
	// stay open until Close.
	Tree *fstree.Tree
	// ID identifies the input stably (see source.Image.ID).
	ID string
	// Config is the image configuration, nil when the source has none.
	Config *v1.ConfigFile

	src *source.Image
	// host is set for a source that is a ready tree of a host directory,
	// whose ID hashes host metadata.
	host bool
}

// StoredID identifies the input by what an image built from it stores,
// for seeding identifiers. For layered sources it is ID, whose digests
// name the content. A host directory's ID hashes its entries' host
// metadata, mtimes unclamped, so touching a file changes it although the
// image, with times clamped to SOURCE_DATE_EPOCH, would not: there it is
// the fingerprint of the tree as it is when called (after clamping and
// any change of owners), with times later than limit taken as limit, and
// without reading content (see fstree.Tree.Fingerprint).
func (im *Image) StoredID(limit time.Time) (string, error) {
	if !im.host {
		return im.ID, nil
	}
	id, err := im.Tree.Fingerprint(limit, false)
	if err != nil {
		return "", fmt.Errorf("identify the tree: %w", err)
	}
	return id, nil
}

// Close releases the files the tree's content is read from.
func (im *Image) Close() error {
	if im.src == nil {
		return nil
	}
	return im.src.Close()
}

// Load opens any source spelling (see package source) and flattens it,
// calling opts.Configured in between.
func Load(ctx context.Context, spec string, opts source.Options) (*Image, error) {
	src, err := source.Open(ctx, spec, opts)
	if err != nil {
		return nil, err
	}
	im := &Image{ID: src.ID, Config: src.Config, src: src}
	if opts.Configured != nil {
		opts.Configured(src.Config)
	}
	if src.Tree != nil {
		im.Tree, im.host = src.Tree, true
		return im, nil
	}
	layers := make([]Layer, len(src.Layers))
	for i, l := range src.Layers {
		layers[i] = l
	}
	if im.Tree, err = Flatten(ctx, layers, opts); err != nil {
		src.Close()
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	return im, nil
}

// V1 is the image as stored, for writing it out again with more layers
// (see source.Image.V1); nil for sources that are not images.
func (im *Image) V1() (v1.Image, error) {
	if im.src == nil {
		return nil, nil
	}
	return im.src.V1()
}

// Created is when the image says it was made, else the newest mtime in its
// tree: the time of an output made from it when SOURCE_DATE_EPOCH is not
// set, so that the same image gives the same output.
func (im *Image) Created() time.Time {
	if im.Config != nil && !im.Config.Created.IsZero() {
		return im.Config.Created.UTC()
	}
	var newest time.Time
	_ = im.Tree.Walk(func(_ string, n *fstree.Node) error {
		if n.Mtime.After(newest) {
			newest = n.Mtime
		}
		return nil
	})
	return newest.UTC()
}
