package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Files of the root, before switch_root, are reached as the root will see
// them: an absolute symlink in the root (/etc/ssh -> /data/ssh) leads to
// the root's /data, never to the initramfs's. openat2's RESOLVE_IN_ROOT
// (Linux 5.6) resolves every path below the root's mount that way.

// inRoot is the root filesystem mounted at dir.
type inRoot string

// open opens p, a path as the root sees it.
func (r inRoot) open(p string, flags int, mode uint32) (*os.File, error) {
	dir, err := unix.Open(string(r), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: string(r), Err: err}
	}
	defer unix.Close(dir)
	fd, err := openIn(dir, p, flags, mode)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// openIn opens p as a process chrooted at the directory dir would.
func openIn(dir int, p string, flags int, mode uint32) (int, error) {
	return unix.Openat2(dir, rel(p), &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
}

// read returns the content of p, at most limit bytes.
func (r inRoot) read(p string, limit int64) ([]byte, error) {
	f, err := r.open(p, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, limit)
	}
	return b, nil
}

// exists reports whether p names something in the root.
func (r inRoot) exists(p string) bool {
	f, err := r.open(p, unix.O_PATH, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// glob returns the paths matching pattern, whose last element alone may
// have wildcards (as sshd's Include is used), sorted.
func (r inRoot) glob(pattern string) ([]string, error) {
	dir, base := path.Split(pattern)
	if !strings.ContainsAny(base, "*?[") {
		if r.exists(pattern) {
			return []string{pattern}, nil
		}
		return nil, nil
	}
	f, err := r.open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if ok, _ := path.Match(base, n); ok {
			out = append(out, path.Join(dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}

// writeNew writes data to p with mode, owned by root, replacing what is
// there: to a temporary name in p's directory first, synced, then
// renamed, so that a power cut leaves the old file or the whole new one.
func (r inRoot) writeNew(p string, data []byte, mode uint32) error {
	dir, name := path.Split(p)
	d, err := r.open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	tmp := "." + name + ".ocidisk-new"
	_ = unix.Unlinkat(int(d.Fd()), tmp, 0) // left by an earlier power cut
	fd, err := unix.Openat(int(d.Fd()), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return &os.PathError{Op: "create", Path: path.Join(dir, tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), path.Join(dir, tmp))
	_, err = f.Write(data)
	if err == nil {
		err = unix.Fchmod(fd, mode) // the umask does not apply
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(int(d.Fd()), tmp, int(d.Fd()), name)
	}
	if err != nil {
		_ = unix.Unlinkat(int(d.Fd()), tmp, 0)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return d.Sync()
}
