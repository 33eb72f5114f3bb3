package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"golang.org/x/sys/unix"
)

// openDir opens dir:DIR, a host directory taken as a ready tree: owners,
// modes, mtimes, xattrs, device numbers and hardlinks (by device and inode)
// come from lstat, symlinks are never followed below DIR, and file content
// stays on the host (fstree.HostFile) until a writer reads it.
//
// Access and change times are left out: they record when the build host
// touched the files, not anything about the image. So is the host's
// security.selinux label. The ID hashes every entry's path and metadata
// (not content), so it changes when the tree does, short of a rewrite that
// keeps a file's size and mtime.
func openDir(ctx context.Context, im *Image, dir string) error {
	name := "dir:" + dir
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("%s: %w", name, &os.PathError{Op: "stat", Path: dir, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s: not a directory", name)
	}
	w := &dirWalker{ctx: ctx, links: map[[2]uint64]*fstree.Node{}, h: sha256.New()}
	t := fstree.New()
	root, err := w.node(dir, "", &st)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	t.Root.Mode, t.Root.UID, t.Root.GID = root.Mode, root.UID, root.GID
	t.Root.Mtime, t.Root.Xattrs = root.Mtime, root.Xattrs
	if err := w.walk(dir, "", t.Root); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	im.Tree = t
	im.ID = "sha256:" + hex.EncodeToString(w.h.Sum(nil))
	return nil
}

type dirWalker struct {
	ctx   context.Context
	links map[[2]uint64]*fstree.Node // hardlinked inodes by device and inode
	h     hash.Hash                  // over every entry, for the ID
}

// walk adds the entries of host directory hostDir (tree path p) to dir.
func (w *dirWalker) walk(hostDir, p string, dir *fstree.Node) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(hostDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		hp := filepath.Join(hostDir, e.Name())
		cp := e.Name()
		if p != "" {
			cp = p + "/" + e.Name()
		}
		var st unix.Stat_t
		if err := unix.Lstat(hp, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: hp, Err: err}
		}
		key := [2]uint64{uint64(st.Dev), st.Ino}
		n := w.links[key]
		if n == nil {
			if n, err = w.node(hp, cp, &st); err != nil {
				return err
			}
			if n.Type != fstree.TypeDir && st.Nlink > 1 {
				w.links[key] = n
			}
		} else {
			fmt.Fprintf(w.h, "%q link\n", cp)
		}
		dir.SetChild(e.Name(), n)
		if n.Type == fstree.TypeDir {
			if err := w.walk(hp, cp, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// node makes the tree node for host path hp from its lstat.
func (w *dirWalker) node(hp, cp string, st *unix.Stat_t) (*fstree.Node, error) {
	mode := st.Mode & fstree.ModeMask
	major, minor := unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	var n *fstree.Node
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n = fstree.NewFile(mode, st.Size, fstree.HostFile(hp))
	case unix.S_IFDIR:
		n = fstree.NewDir(mode)
	case unix.S_IFLNK:
		target, err := os.Readlink(hp)
		if err != nil {
			return nil, err
		}
		n = fstree.NewSymlink(target)
	case unix.S_IFCHR:
		n = fstree.NewDevice(fstree.TypeCharDev, mode, major, minor)
	case unix.S_IFBLK:
		n = fstree.NewDevice(fstree.TypeBlockDev, mode, major, minor)
	case unix.S_IFIFO:
		n = fstree.NewDevice(fstree.TypeFIFO, mode, 0, 0)
	case unix.S_IFSOCK:
		n = fstree.NewDevice(fstree.TypeSocket, mode, 0, 0)
	default:
		return nil, fmt.Errorf("%s: unknown file type %o", hp, st.Mode&unix.S_IFMT)
	}
	n.UID, n.GID = st.Uid, st.Gid
	n.Mtime = time.Unix(st.Mtim.Unix())
	xattrs, err := listXattrs(hp)
	if err != nil {
		return nil, fmt.Errorf("%s: xattrs: %w", hp, err)
	}
	n.Xattrs = xattrs
	fmt.Fprintf(w.h, "%q %o %d:%d %d %d %q %d,%d %q\n", cp, n.UnixMode(), n.UID, n.GID, n.Size,
		n.Mtime.UnixNano(), n.Target, major, minor, fmt.Sprint(xattrs))
	return n, nil
}

// listXattrs reads the extended attributes of a path without following a
// symlink; a filesystem without xattrs has none.
func listXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) || sz == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	buf := make([]byte, sz)
	if sz, err = unix.Llistxattr(p, buf); err != nil {
		return nil, err
	}
	var out map[string]string
	for _, k := range strings.Split(string(buf[:sz]), "\x00") {
		if k == "" || k == "security.selinux" {
			continue
		}
		vsz, err := unix.Lgetxattr(p, k, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, vsz)
		if vsz, err = unix.Lgetxattr(p, k, v); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = string(v[:vsz])
	}
	return out, nil
}
