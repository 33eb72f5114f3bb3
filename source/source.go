// Package source opens the inputs ocidisk builds from: registry images,
// OCI layouts and archives, docker-archive tarballs, plain tar files, host
// directories and Debian packages. It resolves an image index to one
// platform, verifies every blob against its digest, and yields the image's
// layers as uncompressed tars with random access; it never interprets what
// the layers contain (package rootfs does).
//
// The spellings follow skopeo and podman:
//
//	PATH                       an existing file or directory, read as what it is:
//	                           a layout, an archive, a tar, a .deb or a tree
//	REF, docker://REF          a registry image (credentials from the Docker config)
//	oci:DIR[:TAG|@DIGEST]      an OCI image layout directory
//	oci-archive:FILE[:TAG]     an OCI image layout in a tar file, read in place
//	docker-archive:FILE[:REF]  a "docker save" tarball, read in place
//	tar:FILE                   one layer: a tar, plain or gzip, zstd, xz, bzip2
//	deb:FILE                   one layer: a Debian package's data archive
//	dir:DIR                    a host directory, taken as a ready tree; or an
//	                           image as skopeo's dir: transport writes it
//
// Layer data takes one path whatever the spelling: a compressed blob is
// verified against its digest while it is decompressed; from the second
// build that decompresses it on, into the cache as an uncompressed tar
// named by its diffID, before that into a temporary that the build
// deletes (a one-off build writes no second copy of the root); an
// uncompressed blob in a local file is verified and then read where it is.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ocidisk/ocidisk/fstree"
)

// ErrUsage matches (errors.Is) errors in how a source was named (an
// unknown transport, a malformed reference or platform): the caller's
// mistake, not a failure of the input.
var ErrUsage = errors.New("usage error")

// usageErr is an error that matches ErrUsage without saying so in its text.
type usageErr struct{ error }

func (usageErr) Is(target error) bool { return target == ErrUsage }

func usagef(format string, a ...any) error { return usageErr{fmt.Errorf(format, a...)} }

// ErrDigestMismatch is wrapped by errors for bytes that do not hash to the
// digest that names them.
var ErrDigestMismatch = errors.New("bytes do not match the digest")

// DefaultPlatform is the platform an image index resolves to unless
// Options.Platform says otherwise.
const DefaultPlatform = "linux/arm64"

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// Platform picks an image from an index: "linux/arm64" (the default),
	// "linux/arm/v7", "linux/arm/v6", ...
	Platform string
	// CacheDir holds downloaded blobs and uncompressed layers; "" means
	// $XDG_CACHE_HOME/ocidisk (or ~/.cache/ocidisk).
	CacheDir string
	// CacheMaxSize bounds the bytes the cache takes on disk: when an
	// Image is closed, the least recently used entries that no build used
	// lately are removed. 0 means DefaultCacheMaxSize (or a quarter of the
	// filesystem, if less); negative, no bound.
	CacheMaxSize int64
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
	// Progress, when set, is called with the bytes of layer data read so
	// far and the total expected, from one goroutine at a time.
	Progress func(done, total int64)
	// Keychain finds registry credentials; nil means the Docker config, as
	// docker and crane find it (authn.DefaultKeychain).
	Keychain authn.Keychain
	// Transport carries registry requests; nil means go-containerregistry's
	// default.
	Transport http.RoundTripper
	// Configured, when set, is called by rootfs.Load with the image's
	// configuration (nil when the source has none) once it is read and
	// before the layers are: what depends on it alone, such as the
	// image's creation time, can start while they decompress.
	Configured func(*v1.ConfigFile)
}

func (o Options) withDefaults() (Options, error) {
	if o.Platform == "" {
		o.Platform = DefaultPlatform
	}
	if o.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return o, fmt.Errorf("cache directory: %w (set XDG_CACHE_HOME)", err)
		}
		o.CacheDir = filepath.Join(base, "ocidisk")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	return o, nil
}

// Image is an opened source. Most sources are layers; a host directory is
// a ready tree instead. Close releases the files its layers hold open,
// which trees built from them read their content through.
type Image struct {
	// ID identifies the input stably: the platform manifest's digest, the
	// config digest of a docker-archive image, or the sha256 of a tar or
	// deb file. Builds seed their deterministic identifiers from it.
	ID string
	// Config is the image configuration; nil for sources without one.
	Config *v1.ConfigFile
	// Layers are the filesystem changesets, oldest first; nil for dir:.
	Layers []*Layer
	// Tree is set, instead of Layers, by sources that are already a tree.
	Tree *fstree.Tree

	// stored is the manifest and config as read, for V1; dockerConfig a
	// docker-archive's config, whose manifest V1 writes.
	stored       *stored
	dockerConfig []byte

	cache    cache
	log      *slog.Logger
	progress *progress
	opened   time.Time // when Open began: entries used since are this build's
	maxCache int64     // the cache's bound, -1 for none

	mu      sync.Mutex
	closers []io.Closer
	closed  bool
}

// Close closes every file the image and its layers opened, and keeps the
// cache within its bound (see Options.CacheMaxSize).
func (im *Image) Close() error {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.closed {
		return nil
	}
	im.closed = true
	var errs []error
	for _, c := range im.closers {
		errs = append(errs, c.Close())
	}
	im.closers = nil
	im.prune()
	return errors.Join(errs...)
}

// keep registers c to be closed with the image.
func (im *Image) keep(c io.Closer) {
	im.mu.Lock()
	im.closers = append(im.closers, c)
	im.mu.Unlock()
}

// transportNames lists the spellings for messages, in the documented order.
const transportNames = "docker://, oci:, oci-archive:, docker-archive:, tar:, deb:, dir:"

// looksLikeTransport matches what could be meant as a transport name.
var looksLikeTransport = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)

// registryPort matches the rest of "host:PORT/repo" after the colon.
var registryPort = regexp.MustCompile(`^[0-9]+/`)

// LocalPath returns the file or directory on this machine that spec reads,
// "" for a registry image: commands check that no output overwrites an
// input.
func LocalPath(spec string) string {
	if t, err := inferTransport(spec); err == nil && t != "" {
		spec = t + spec // a plain path
	}
	transport, rest, ok := strings.Cut(spec, ":")
	if !ok || strings.HasPrefix(spec, "docker://") {
		return ""
	}
	switch transport {
	case "oci", "oci-archive", "docker-archive":
		p, _ := splitPathRef(rest)
		return p
	case "tar", "deb", "dir":
		return rest
	}
	return ""
}

// Open resolves spec to an image. It reads manifests and configs and
// checks what it can cheaply; layer data is read when a Layer is opened.
func Open(ctx context.Context, spec string, opts Options) (*Image, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	platform, err := v1.ParsePlatform(opts.Platform)
	if err != nil || platform.OS == "" || platform.Architecture == "" {
		return nil, usagef("platform %q: want OS/ARCH[/VARIANT], e.g. linux/arm64", opts.Platform)
	}
	switch t, err := inferTransport(spec); {
	case err != nil:
		return nil, err
	case t != "":
		spec = t + spec
	}
	im := &Image{cache: cache{dir: opts.CacheDir}, log: opts.Log, progress: &progress{fn: opts.Progress},
		opened: time.Now(), maxCache: CacheMaxSize(opts, opts.CacheDir)}
	im.cache.sweep()
	transport, rest, ok := strings.Cut(spec, ":")
	switch {
	case strings.HasPrefix(spec, "docker://"):
		err = openRemote(ctx, im, strings.TrimPrefix(spec, "docker://"), *platform, opts)
	case transport == "oci" && ok:
		err = openLayoutDir(ctx, im, rest, *platform)
	case transport == "oci-archive" && ok:
		err = openLayoutArchive(ctx, im, rest, *platform)
	case transport == "docker-archive" && ok:
		err = openDockerArchive(ctx, im, rest, *platform)
	case transport == "tar" && ok:
		err = openTarFile(ctx, im, rest)
	case transport == "deb" && ok:
		err = openDeb(ctx, im, rest)
	case transport == "dir" && ok && isSkopeoDir(rest):
		err = openSkopeoDir(ctx, im, rest, *platform)
	case transport == "dir" && ok:
		err = openDir(ctx, im, rest)
	case ok && looksLikeTransport.MatchString(transport) && strings.Contains(rest, "/") && !registryPort.MatchString(rest):
		// "nope:/x" parses as a reference (registry "nope:"), but what was
		// meant is a transport.
		return nil, usagef("%s: unknown transport %q (known: %s)", spec, transport, transportNames)
	default:
		if _, perr := name.ParseReference(spec); perr != nil {
			return nil, usagef("%q is neither a registry reference nor TRANSPORT:PATH (transports: %s)", spec, transportNames)
		}
		err = openRemote(ctx, im, spec, *platform, opts)
	}
	if err != nil {
		im.Close()
		return nil, err
	}
	return im, nil
}

// localTransports are the spellings whose reference is a host path.
var localTransports = []string{"oci:", "oci-archive:", "docker-archive:", "tar:", "deb:", "dir:"}

// ResolvePath rewrites the host path of a local spec with rel (e.g. to make
// it relative to a build file's directory): TRANSPORT:PATH, or a plain
// path (one that looks like a path, or exists once rewritten). Registry
// references are left as they are.
func ResolvePath(spec string, rel func(string) string) string {
	for _, t := range localTransports {
		if p, ok := strings.CutPrefix(spec, t); ok {
			return t + rel(p)
		}
	}
	if !hasTransport(spec) && (looksLikePath(spec) || exists(rel(spec))) {
		return rel(spec)
	}
	return spec
}
