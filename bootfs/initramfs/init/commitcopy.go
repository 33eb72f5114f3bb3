package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Files a commit copies in (ocidisk commit --copy HOST:GUEST) sit on a
// read-only disk of their own, one directory per copy holding the host
// file or directory under its own name. They are copied into the merged
// root before the first step, so that they are part of the layer, the
// way a Dockerfile's COPY is: a file lands at GUEST, or inside it when
// GUEST is a directory or ends in "/"; a directory's entries are merged
// into GUEST. Missing parent directories are made (0755, root's). Owners,
// modes (setuid included) and mtimes are the copy disk's.
//
// Guest paths are resolved as a process chrooted in the merged root
// would resolve them: an absolute symlink such as /lib -> usr/lib leads
// inside the root, never out (openat2 with RESOLVE_IN_ROOT).

// rootDir holds a root directory open, for a series of paths resolved
// inside it (see inRoot, which opens its directory for each path).
type rootDir struct {
	fd   int
	path string
}

func openRoot(dir string) (*rootDir, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return &rootDir{fd: fd, path: dir}, nil
}

func (r *rootDir) close() { unix.Close(r.fd) }

// rel turns a guest path into one relative to the root ("." for it).
func rel(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// open opens guest path p with flags, following symlinks inside the root.
func (r *rootDir) open(p string, flags int) (int, error) {
	return openIn(r.fd, p, flags, 0)
}

// isDir reports whether guest path p is a directory, symlinks followed.
func (r *rootDir) isDir(p string) bool {
	fd, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// mkdirAll makes directory p and its missing parents with mode 0755,
// owned by root, and records the directories it made in created (parents
// first). It returns whether p itself was made.
func (r *rootDir) mkdirAll(p string, created *[]string) (bool, error) {
	parts := strings.Split(rel(p), "/")
	if parts[0] == "." {
		return false, nil
	}
	made := false
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := r.open(prefix, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			unix.Close(fd)
			made = false
			continue
		}
		if err != unix.ENOENT {
			return false, fmt.Errorf("/%s: %w", prefix, err)
		}
		parent, err := r.open(strings.Join(parts[:i], "/"), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return false, fmt.Errorf("/%s: %w", path.Dir("/"+prefix), err)
		}
		err = unix.Mkdirat(parent, parts[i], 0o755)
		unix.Close(parent)
		if err == unix.EEXIST {
			return false, fmt.Errorf("/%s: a dangling symlink is in the way", prefix)
		}
		if err != nil {
			return false, fmt.Errorf("mkdir /%s: %w", prefix, err)
		}
		if created != nil {
			*created = append(*created, "/"+prefix)
		}
		made = true
	}
	return made, nil
}

// parentOf opens the directory that holds guest path p and returns it
// with p's last name.
func (r *rootDir) parentOf(p string) (int, string, error) {
	p = rel(p)
	if p == "." {
		return -1, "", errors.New("the root has no parent")
	}
	fd, err := r.open(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, "", fmt.Errorf("/%s: %w", path.Dir(p), err)
	}
	return fd, path.Base(p), nil
}

// copyIn copies the one entry of host directory from into the root at
// guest path to, with the rules above.
func copyIn(r *rootDir, from, to string) error {
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	if len(ents) != 1 {
		return fmt.Errorf("%s: want one entry, found %d", from, len(ents))
	}
	src := filepath.Join(from, ents[0].Name())
	if ents[0].IsDir() {
		return copyEntry(r, src, to, true)
	}
	if strings.HasSuffix(to, "/") || r.isDir(to) {
		to = path.Join(to, ents[0].Name())
	}
	if _, err := r.mkdirAll(path.Dir(path.Clean("/"+to)), nil); err != nil {
		return err
	}
	return copyEntry(r, src, to, false)
}

// copyEntry copies host path src to guest path dst; top says dst is the
// destination directory of a copied directory, whose metadata is kept
// when it exists already.
func copyEntry(r *rootDir, src, dst string, top bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return copyDir(r, src, dst, &st, top)
	}
	dirfd, name, err := r.parentOf(dst)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	var old unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &old, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if old.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fmt.Errorf("%s: a directory is in the way", dst)
		}
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return fmt.Errorf("replace %s: %w", dst, err)
		}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		err = copyFile(dirfd, name, src, &st)
	case unix.S_IFLNK:
		var target string
		if target, err = os.Readlink(src); err == nil {
			err = unix.Symlinkat(target, dirfd, name)
		}
	default: // devices, FIFOs, sockets
		err = unix.Mknodat(dirfd, name, st.Mode, int(st.Rdev))
	}
	if err == nil {
		err = setMeta(dirfd, name, &st)
	}
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	return nil
}

func copyDir(r *rootDir, src, dst string, st *unix.Stat_t, top bool) error {
	fresh, err := r.mkdirAll(dst, nil)
	if err != nil {
		return err
	}
	if !fresh && !r.isDir(dst) {
		return fmt.Errorf("%s: not a directory", dst)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := copyEntry(r, filepath.Join(src, e.Name()), path.Join(dst, e.Name()), false); err != nil {
			return err
		}
	}
	if !fresh && top {
		return nil
	}
	if rel(dst) == "." {
		return nil // the root keeps its own metadata
	}
	dirfd, name, err := r.parentOf(dst)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	if err := setMeta(dirfd, name, st); err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	return nil
}

// copyFile writes the content of src to a new file name in dirfd.
func copyFile(dirfd int, name, src string, st *unix.Stat_t) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	out := os.NewFile(uintptr(fd), name)
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// setMeta gives name in dirfd the owner, mode and times of st. The mode
// comes after the owner: chown clears setuid and setgid.
func setMeta(dirfd int, name string, st *unix.Stat_t) error {
	if err := unix.Fchownat(dirfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(dirfd, name, st.Mode&0o7777, 0); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}
