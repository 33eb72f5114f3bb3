package ext4

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/inspect/internal/rofs"
)

// dirent is one name in a directory.
type dirent struct {
	name string
	ino  uint32
}

// entries reads a directory's names linearly, block by block, skipping
// unused entries, the checksum tail and htree index blocks (which present
// themselves as unused entries).
func (n *node) entries() ([]dirent, error) {
	if n.read {
		return n.kids, nil
	}
	n.f.mu.Lock()
	cached, ok := n.f.dirs[n.ino]
	n.f.mu.Unlock()
	if ok {
		n.kids, n.read = cached, true
		return cached, nil
	}
	r, err := n.content()
	if err != nil {
		return nil, err
	}
	var out []dirent
	if n.flags&flagInlineData != 0 {
		// Inline directories start with the parent's inode number and
		// have no "." or ".." entries.
		b := make([]byte, n.info.Sz)
		if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
			return nil, err
		}
		if len(b) < 4 {
			return nil, fmt.Errorf("inline directory %d too short", n.ino)
		}
		if out, err = parseDirBlock(b[4:]); err != nil {
			return nil, fmt.Errorf("directory inode %d: %w", n.ino, err)
		}
	} else {
		bs := n.f.blockSize
		b := make([]byte, bs)
		for off := int64(0); off < n.info.Sz; off += bs {
			if _, err := r.ReadAt(b, off); err != nil && err != io.EOF {
				return nil, fmt.Errorf("directory inode %d: %w", n.ino, err)
			}
			ents, err := parseDirBlock(b)
			if err != nil {
				return nil, fmt.Errorf("directory inode %d, block %d: %w", n.ino, off/bs, err)
			}
			out = append(out, ents...)
		}
	}
	slices.SortFunc(out, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	n.kids, n.read = out, true
	n.f.mu.Lock()
	n.f.dirs[n.ino] = out
	n.f.mu.Unlock()
	return out, nil
}

func parseDirBlock(b []byte) ([]dirent, error) {
	le := binary.LittleEndian
	var out []dirent
	for off := 0; off+8 <= len(b); {
		ino := le.Uint32(b[off:])
		recLen := int(le.Uint16(b[off+4:]))
		nameLen := int(b[off+6])
		if recLen < 8 || off+recLen > len(b) || 8+nameLen > recLen {
			return nil, fmt.Errorf("bad entry at offset %d (length %d, name %d bytes)", off, recLen, nameLen)
		}
		if name := string(b[off+8 : off+8+nameLen]); ino != 0 && name != "." && name != ".." {
			out = append(out, dirent{name: name, ino: ino})
		}
		off += recLen
	}
	return out, nil
}

func (n *node) Lookup(name string) (rofs.Node, error) {
	ents, err := n.entries()
	if err != nil {
		return nil, err
	}
	i, ok := slices.BinarySearchFunc(ents, name, func(e dirent, s string) int { return strings.Compare(e.name, s) })
	if !ok {
		return nil, fs.ErrNotExist
	}
	return n.f.node(ents[i].ino, name)
}

func (f *FS) resolve(op, name string, follow bool) (*node, error) {
	n, err := rofs.Resolve(op, f.root, name, follow)
	if err != nil {
		return nil, err
	}
	return n.(*node), nil
}

// Open implements fs.FS; symlinks are followed.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	if n.info.IsDir() {
		ents, err := f.dirEntries(n)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &rofs.Dir{Info: n.info, Entries: ents}, nil
	}
	if !n.info.Mode().IsRegular() {
		return rofs.NewFile(n.info, emptyReader{}), nil
	}
	r, err := n.content()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return rofs.NewFile(n.info, r), nil
}

type emptyReader struct{}

func (emptyReader) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }

// ReadDir implements fs.ReadDirFS: entries sorted by name, symlinks not
// followed.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.info.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fmt.Errorf("not a directory")}
	}
	ents, err := f.dirEntries(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return ents, nil
}

func (f *FS) dirEntries(n *node) ([]fs.DirEntry, error) {
	ents, err := n.entries()
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(ents))
	for _, e := range ents {
		k, err := f.node(e.ino, e.name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		out = append(out, fs.FileInfoToDirEntry(k.info))
	}
	return out, nil
}

// Stat implements fs.StatFS, following symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return n.info, nil
}

// Lstat implements fs.ReadLinkFS: a symlink itself.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return n.info, nil
}

// ReadLink implements fs.ReadLinkFS.
func (f *FS) ReadLink(name string) (string, error) {
	n, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.info.M&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.info.St.Target, nil
}
