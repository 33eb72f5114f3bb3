package debian

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by errors that mean an input cannot be made on
// this machine (a host tool, an apt index or the network is missing), as
// opposed to a bug. Test helpers skip locally on it, and fail under CI.
var ErrUnavailable = errors.New("test input unavailable")

// Cache is a directory of built inputs. Entries are published by renaming a
// finished temporary directory into place, under a lock file, so concurrent
// test processes wait for one build instead of racing.
type Cache struct {
	Dir string
	Log *slog.Logger
}

// CacheDir returns the cache directory: $OCIDISK_TESTDATA, else
// $XDG_CACHE_HOME/ocidisk-testdata, else ~/.cache/ocidisk-testdata.
func CacheDir() (string, error) {
	if d := os.Getenv("OCIDISK_TESTDATA"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "ocidisk-testdata"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("test data cache: %w", err)
	}
	return filepath.Join(home, ".cache", "ocidisk-testdata"), nil
}

// OpenCache returns the cache at CacheDir, creating it. A nil log discards.
func OpenCache(log *slog.Logger) (*Cache, error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("test data cache: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{Dir: dir, Log: log}, nil
}

// entry returns the path of cache entry name (a relative path), building it
// with build when it is not there yet. build gets an empty temporary
// directory that becomes the entry when build succeeds.
func (c *Cache) entry(name string, build func(tmp string) error) (string, error) {
	final := filepath.Join(c.Dir, name)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", fmt.Errorf("cache %s: %w", name, err)
	}
	unlock, err := lockFile(final + ".lock")
	if err != nil {
		return "", fmt.Errorf("cache %s: %w", name, err)
	}
	defer unlock()
	// Another process may have built it while we waited for the lock.
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := final + ".tmp-" + hex.EncodeToString(rnd[:])
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return "", fmt.Errorf("cache %s: %w", name, err)
	}
	if err := build(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("cache %s: %w", name, err)
	}
	return final, nil
}

// lockFile takes an exclusive flock on path, waiting for it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
