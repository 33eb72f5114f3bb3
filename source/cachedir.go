package source

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultCacheMaxSize bounds the cache unless Options.CacheMaxSize says
// otherwise: 10 GiB holds the uncompressed layers and blobs of several
// large images (the large Debian tree of bench/ takes 1.7 GiB: 1.3 of
// layers, 0.4 of blobs), so that rebuilds of the images one works on stay
// warm, and it is small next to the disks images are built on. On a small
// filesystem the bound is a quarter of it instead, so that the cache
// never fills a disk by itself.
const DefaultCacheMaxSize = 10 << 30

// InUseMargin is how long before an Image was opened an entry's last use
// still counts as this build's: the inputs of one build (root, kernel,
// firmware) are opened a little apart.
const InUseMargin = 10 * time.Minute

// CacheDir returns the cache directory opts use: opts.CacheDir, or
// $XDG_CACHE_HOME/ocidisk (~/.cache/ocidisk).
func CacheDir(opts Options) (string, error) {
	o, err := opts.withDefaults()
	return o.CacheDir, err
}

// CacheMaxSize returns the bound opts put on the cache in dir, -1 for none.
func CacheMaxSize(opts Options, dir string) int64 {
	switch {
	case opts.CacheMaxSize < 0:
		return -1
	case opts.CacheMaxSize > 0:
		return opts.CacheMaxSize
	}
	bound := int64(DefaultCacheMaxSize)
	var st unix.Statfs_t
	for d := dir; ; d = filepath.Dir(d) {
		if unix.Statfs(d, &st) == nil {
			bound = min(bound, int64(st.Blocks)*st.Bsize/4)
			break
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	return bound
}

// CacheEntry is one file of the cache.
type CacheEntry struct {
	// Kind is "blob" (a registry blob as downloaded), "layer" (an
	// uncompressed layer), "diffid" (the diffID of a blob) or "seen" (the
	// empty mark of a layer a build decompressed once, without keeping it).
	Kind string
	// Digest names the entry: "sha256:HEX".
	Digest string
	Path   string
	// Size is what the entry takes on disk: holes (runs of zeros) take
	// nothing.
	Size int64
	// LastUse is when a build last wrote or read the entry.
	LastUse time.Time
}

var kindNames = map[string]string{"blobs": "blob", "layers": "layer", "diffids": "diffid", "seen": "seen"}

// CacheEntries lists the entries of the cache in dir, least recently
// used first (then by path). A cache that does not exist has none.
// Temporaries being written are not entries.
func CacheEntries(dir string) ([]CacheEntry, error) {
	var out []CacheEntry
	for _, kind := range kinds {
		sub := filepath.Join(dir, kind, "sha256")
		ents, err := os.ReadDir(sub)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(sub, e.Name())
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				continue // removed meanwhile
			}
			out = append(out, CacheEntry{Kind: kindNames[kind], Digest: "sha256:" + e.Name(), Path: p,
				Size: st.Blocks * 512, LastUse: time.Unix(st.Mtim.Unix())})
		}
	}
	slices.SortFunc(out, func(a, b CacheEntry) int {
		return cmp.Or(a.LastUse.Compare(b.LastUse), strings.Compare(a.Path, b.Path))
	})
	return out, nil
}

// PruneOptions say what PruneCache removes.
type PruneOptions struct {
	// OlderThan removes the entries not used for this long; 0 for no
	// age limit.
	OlderThan time.Duration
	// MaxSize then removes the least recently used entries until the
	// rest take at most this many bytes; 0 for no size limit.
	MaxSize int64
	// InUseSince keeps every entry used at or after it, whatever the
	// limits: those a running build reads.
	InUseSince time.Time
	// Now is the time OlderThan counts back from; zero means now.
	Now time.Time
}

// PruneCache removes entries of the cache in dir by age and then, least
// recently used first, by size, and returns those it removed. Temporaries
// a killed process left are swept too (see outfile.Sweep).
func PruneCache(dir string, opts PruneOptions) ([]CacheEntry, error) {
	cache{dir: dir}.sweep()
	ents, err := CacheEntries(dir)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	var total int64
	for _, e := range ents {
		total += e.Size
	}
	var removed []CacheEntry
	for _, e := range ents { // least recently used first
		inUse := !opts.InUseSince.IsZero() && !e.LastUse.Before(opts.InUseSince)
		old := opts.OlderThan > 0 && now.Sub(e.LastUse) > opts.OlderThan
		over := opts.MaxSize > 0 && total > opts.MaxSize
		if inUse || !old && !over {
			continue
		}
		if err := os.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		total -= e.Size
		removed = append(removed, e)
	}
	return removed, nil
}

// used records that a build used the cache file at p now, for the
// least-recently-used order; failure costs only that order.
func used(p string) {
	now := time.Now()
	_ = os.Chtimes(p, now, now)
}

// prune applies the image's cache bound when it is closed, keeping what
// this build used.
func (im *Image) prune() {
	if im.maxCache < 0 || im.cache.dir == "" {
		return
	}
	removed, err := PruneCache(im.cache.dir, PruneOptions{MaxSize: im.maxCache, InUseSince: im.opened.Add(-InUseMargin)})
	if err != nil {
		im.log.Warn("cache: pruning failed", "dir", im.cache.dir, "err", err)
	}
	if len(removed) > 0 {
		var freed int64
		for _, e := range removed {
			freed += e.Size
		}
		im.log.Info("cache: removed least recently used entries to stay within its bound", "dir", im.cache.dir,
			"entries", len(removed), "bytes", freed, "bound", im.maxCache)
	}
}
