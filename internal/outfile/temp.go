package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// StaleAfter is how old a temporary must be before Sweep removes it: a
// process that is alive holds a lock on its temporaries, and one that
// writes them touches them; an hour guards against filesystems where
// locks are not shared between machines.
const StaleAfter = time.Hour

// tempMark separates an output's name from the random part in the names
// of its temporaries: ".NAME.tmp-123456789".
const tempMark = ".tmp-"

// NewTemp creates a temporary file in dir named prefix + ".tmp-" + digits
// and takes an exclusive lock on it, which holds as long as the file is
// open: Sweep leaves a locked temporary alone, however old. The caller
// renames or removes it.
func NewTemp(dir, prefix string) (*os.File, error) {
	f, err := os.CreateTemp(dir, prefix+tempMark+"*")
	if err != nil {
		return nil, err
	}
	// Locks are advice: a filesystem without them still has the age
	// rule.
	_ = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	return f, nil
}

// IsTemp reports whether name is a temporary NewTemp made with prefix:
// exactly prefix, ".tmp-" and the digits os.CreateTemp puts there.
func IsTemp(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix+tempMark)
	if !ok || rest == "" {
		return false
	}
	return strings.Trim(rest, "0123456789") == ""
}

// Sweep removes the temporaries with prefix in dir that a process killed
// while writing them left behind: regular files named as NewTemp names
// them, not modified for StaleAfter, and not locked by a live process.
// Nothing else in dir is touched. It returns the paths removed; failures
// are ignored, as a sweep is housekeeping.
func Sweep(dir, prefix string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !IsTemp(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if stale(p) && os.Remove(p) == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

// stale reports a temporary that is old and that no process holds.
func stale(p string) bool {
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() || time.Since(st.ModTime()) < StaleAfter {
		return false
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	return !errors.Is(err, unix.EWOULDBLOCK)
}
