// Package outfile creates output files that appear at their final path only
// when complete: the contract that a failed build leaves nothing half-written
// where the user asked for the result.
package outfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is an output being written under a temporary name beside its final
// path.
type File struct {
	*os.File
	final string
	done  bool
}

// Create starts an output for path. The temporary file sits in the same
// directory so that Commit is an atomic rename on one filesystem.
func Create(path string) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("output %s: is a directory", path)
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	return &File{File: f, final: path}, nil
}

// Commit syncs nothing (the page cache is enough for an image builder),
// closes the file, sets mode 0644 and renames it into place.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("output %s: already finished", f.final)
	}
	f.done = true
	if err := f.File.Chmod(0o644); err != nil {
		f.File.Close()
		os.Remove(f.File.Name())
		return fmt.Errorf("output %s: %w", f.final, err)
	}
	if err := f.File.Close(); err != nil {
		os.Remove(f.File.Name())
		return fmt.Errorf("output %s: %w", f.final, err)
	}
	if err := os.Rename(f.File.Name(), f.final); err != nil {
		os.Remove(f.File.Name())
		return fmt.Errorf("output %s: %w", f.final, err)
	}
	return nil
}

// Abort removes the temporary file; after Commit it does nothing, so it can
// be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.File.Name())
}

// Path is where the output will appear.
func (f *File) Path() string { return f.final }

// Extend grows a file-like w to at least n bytes, so that a bare
// filesystem image has its full size although its trailing blocks, all
// zero, are never written and stay a hole. It never shrinks (w may be a
// whole disk image) and does nothing for a w that is not a regular file.
func Extend(w io.WriterAt, n int64) error {
	f, ok := w.(interface {
		Stat() (os.FileInfo, error)
		Truncate(int64) error
	})
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() >= n {
		return nil
	}
	if err := f.Truncate(n); err != nil {
		return fmt.Errorf("extend image to %d bytes: %w", n, err)
	}
	return nil
}
