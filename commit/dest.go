package commit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/outfile"
	"github.com/ocidisk/ocidisk/mkfs/tar"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
)

// Dest is where a committed image goes, parsed from one of the spellings
// Write takes.
type Dest struct {
	// Kind is "oci", "oci-archive", "docker-archive" or "registry".
	Kind string
	// Path is the layout directory or archive file; Ref the tag (oci,
	// oci-archive), the image name (docker-archive) or the registry
	// reference.
	Path, Ref string
}

// refNameAnnotation names an image in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// tagPattern is what an OCI layout's tag may be (the distribution spec's
// tag grammar).
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ParseDest reads a destination:
//
//	oci:DIR[:TAG]              an OCI image layout directory, new or existing
//	oci-archive:FILE[:TAG]     an OCI image layout in a tar file
//	docker-archive:FILE[:REF]  a "docker save" tarball, REF naming the image
//	REF, docker://REF          a registry (credentials from the Docker config)
func ParseDest(s string) (Dest, error) {
	transport, rest, ok := strings.Cut(s, ":")
	switch {
	case strings.HasPrefix(s, "docker://"):
		return registryDest(strings.TrimPrefix(s, "docker://"))
	case ok && (transport == "oci" || transport == "oci-archive"):
		d := Dest{Kind: transport, Path: rest}
		if i := strings.LastIndex(rest, ":"); i > 0 && tagPattern.MatchString(rest[i+1:]) {
			d.Path, d.Ref = rest[:i], rest[i+1:]
		}
		if d.Path == "" {
			return d, fmt.Errorf("destination %q: no path", s)
		}
		return d, nil
	case ok && transport == "docker-archive":
		d := Dest{Kind: transport, Path: rest}
		if p, ref, ok := strings.Cut(rest, ":"); ok {
			if _, err := name.NewTag(ref); err != nil {
				return d, fmt.Errorf("destination %q: image name %q: %w", s, ref, err)
			}
			d.Path, d.Ref = p, ref
		}
		if d.Path == "" {
			return d, fmt.Errorf("destination %q: no path", s)
		}
		return d, nil
	case ok && slices.Contains([]string{"tar", "deb", "dir"}, transport):
		return Dest{}, fmt.Errorf("destination %q: an image goes to oci:, oci-archive:, docker-archive: or a registry", s)
	}
	return registryDest(s)
}

func registryDest(s string) (Dest, error) {
	if _, err := name.ParseReference(s); err != nil {
		return Dest{}, fmt.Errorf("destination %q is neither oci:, oci-archive:, docker-archive: nor a registry reference: %w", s, err)
	}
	return Dest{Kind: "registry", Ref: s}, nil
}

// String spells d as ParseDest reads it.
func (d Dest) String() string {
	switch d.Kind {
	case "registry":
		return d.Ref
	}
	if d.Ref == "" {
		return d.Kind + ":" + d.Path
	}
	return d.Kind + ":" + d.Path + ":" + d.Ref
}

// WriteOptions tune Write.
type WriteOptions struct {
	// Keychain finds registry credentials; nil means the Docker config.
	Keychain authn.Keychain
	// Transport carries registry requests; nil means the default.
	Transport http.RoundTripper
	Log       *slog.Logger
}

// Write writes img to d. Nothing of a failed write is found at d: a new
// layout directory or archive file appears only when complete; an existing
// layout gets the blobs first, then an index naming the image, in one
// rename (an earlier image of the same tag is no longer named); a registry
// tag moves when the manifest is pushed, last.
func Write(ctx context.Context, img v1.Image, d Dest, opts WriteOptions) error {
	switch d.Kind {
	case "oci":
		return writeLayout(d.Path, d.Ref, img)
	case "oci-archive":
		return writeOCIArchive(ctx, d.Path, d.Ref, img)
	case "docker-archive":
		return writeDockerArchive(d.Path, d.Ref, img)
	case "registry":
		ref, err := name.ParseReference(d.Ref)
		if err != nil {
			return err
		}
		kc := opts.Keychain
		if kc == nil {
			kc = authn.DefaultKeychain
		}
		ro := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithUserAgent("ocidisk")}
		if opts.Transport != nil {
			ro = append(ro, remote.WithTransport(opts.Transport))
		}
		if err := remote.Write(ref, img, ro...); err != nil {
			return fmt.Errorf("push %s: %w", d.Ref, err)
		}
		return nil
	}
	return fmt.Errorf("destination kind %q", d.Kind)
}

// writeLayout writes img into the layout at dir, tagged tag ("" for none).
func writeLayout(dir, tag string, img v1.Image) error {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return addToLayout(dir, tag, img)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s: neither an OCI layout (no index.json) nor empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// A new layout is written beside dir and renamed into place.
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := newLayout(tmp, tag, img); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}

func newLayout(dir, tag string, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{refNameAnnotation: tag}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}

// addToLayout writes img's blobs into an existing layout, then replaces
// its index.json with one that also names img (and no longer names
// another image of the same tag), by a rename.
func addToLayout(dir, tag string, img v1.Image) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	if err := p.WriteImage(img); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return err
	}
	var idx map[string]json.RawMessage // keeps what the index says beyond its manifests
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("%s: index.json: %w", dir, err)
	}
	var ms []v1.Descriptor
	if m, ok := idx["manifests"]; ok {
		if err := json.Unmarshal(m, &ms); err != nil {
			return fmt.Errorf("%s: index.json: %w", dir, err)
		}
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return err
	}
	if tag != "" {
		ms = slices.DeleteFunc(ms, func(d v1.Descriptor) bool { return d.Annotations[refNameAnnotation] == tag })
		desc.Annotations = map[string]string{refNameAnnotation: tag}
	}
	ms = append(ms, *desc)
	if idx["manifests"], err = json.Marshal(ms); err != nil {
		return err
	}
	out, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	f, err := outfile.Create(filepath.Join(dir, "index.json"))
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(out); err != nil {
		return err
	}
	return f.Commit()
}

// writeOCIArchive writes img as an OCI layout in a tar file: the layout
// is written to a temporary directory and archived, entries sorted and
// owned by root, at one fixed time.
func writeOCIArchive(ctx context.Context, file, tag string, img v1.Image) error {
	tmp, err := os.MkdirTemp(filepath.Dir(file), ".ocidisk-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := newLayout(tmp, tag, img); err != nil {
		return err
	}
	dir, err := rootfs.Load(ctx, "dir:"+tmp, source.Options{})
	if err != nil {
		return err
	}
	defer dir.Close()
	when := time.Unix(0, 0)
	if cfg, err := img.ConfigFile(); err == nil && !cfg.Created.IsZero() {
		when = cfg.Created.Time
	}
	seen := map[*fstree.Node]bool{}
	_ = dir.Tree.Walk(func(_ string, n *fstree.Node) error {
		if !seen[n] {
			seen[n] = true
			n.UID, n.GID, n.Xattrs, n.Mtime = 0, 0, nil, when
			if n.IsDir() {
				n.Mode = 0o755
			} else {
				n.Mode = 0o644
			}
		}
		return nil
	})
	f, err := outfile.Create(file)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := tar.Write(f, dir.Tree); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return f.Commit()
}

// writeDockerArchive writes img as docker save does, named ref (no name
// when "").
func writeDockerArchive(file, ref string, img v1.Image) error {
	var r name.Reference
	if ref != "" {
		t, err := name.NewTag(ref)
		if err != nil {
			return err
		}
		r = t
	} else {
		// An untagged image: docker load takes it by its config.
		d, err := img.Digest()
		if err != nil {
			return err
		}
		if r, err = name.NewDigest("ocidisk-commit@" + d.String()); err != nil {
			return err
		}
	}
	f, err := outfile.Create(file)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := tarball.Write(r, img, f); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return f.Commit()
}
