// Package outfile creates output files that appear at their final path only
// when complete: the contract that a failed build leaves nothing half-written
// where the user asked for the result.
package outfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// File is an output being written under a temporary name beside its final
// path.
type File struct {
	*os.File
	final string
	done  bool
}

// Create starts an output for path, which Check must accept. The
// temporary file sits in the same directory so that Commit is an atomic
// rename on one filesystem; temporaries of path that a killed process
// left there are swept first (see Sweep).
func Create(path string) (*File, error) {
	if err := Check(path); err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	Sweep(dir, "."+base)
	f, err := NewTemp(dir, "."+base)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	return &File{File: f, final: path}, nil
}

// Check tells whether path may take an output, so that a command can say
// so before any work: outputs replace only regular files (a device node,
// FIFO or symlink there would be replaced by a file, or a directory
// refuses the rename) or go to new paths, in a directory that exists.
// Errors name the path and what is wrong with it.
func Check(path string) error {
	if path == "" {
		return errors.New("output: no path given")
	}
	st, err := os.Lstat(path)
	switch {
	case err == nil && !st.Mode().IsRegular():
		return fmt.Errorf("output %s is %s: outputs are written only to regular files or new paths", path, describe(path, st))
	case err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("output %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	dst, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("output %s: directory %s does not exist", path, dir)
	case err != nil:
		return fmt.Errorf("output %s: directory %s: %w", path, dir, err)
	case !dst.IsDir():
		return fmt.Errorf("output %s: %s is not a directory", path, dir)
	}
	return nil
}

// describe says what a file that is not a regular one is.
func describe(path string, st fs.FileInfo) string {
	m := st.Mode()
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return fmt.Sprintf("a symlink (to %s)", target)
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

// Distinct refuses an output that is one of the command's inputs: the
// same file (os.SameFile, so also through symlinks and hardlinks), or a
// path inside an input directory (a blob of an OCI layout, a file of a
// dir: tree). Inputs that do not exist are skipped: opening them fails
// later, with the input's own error.
func Distinct(output string, inputs ...string) error {
	ost, oerr := os.Stat(output)
	for _, in := range inputs {
		if in == "" {
			continue
		}
		ist, err := os.Stat(in)
		if err != nil {
			continue
		}
		if !ist.IsDir() {
			if oerr == nil && os.SameFile(ist, ost) {
				return fmt.Errorf("output %s is the input %s: writing it would destroy the input", output, in)
			}
			continue
		}
		abs, err := filepath.Abs(filepath.Dir(output))
		if err != nil {
			return fmt.Errorf("output %s: %w", output, err)
		}
		for d := abs; ; d = filepath.Dir(d) {
			if dst, err := os.Stat(d); err == nil && os.SameFile(dst, ist) {
				return fmt.Errorf("output %s is inside the input directory %s: writing it would change the input", output, in)
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return nil
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
