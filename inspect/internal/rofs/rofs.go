// Package rofs holds what the read-only filesystem readers of inspect share:
// the io/fs file, directory and FileInfo types, the stat details beyond
// io/fs that they report, and path resolution with symlinks.
package rofs

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Stat is what FileInfo.Sys returns: the details ls -l shows beyond io/fs.
type Stat struct {
	Ino          uint64
	UID, GID     uint32
	Nlink        uint32
	Major, Minor uint32 // device nodes
	Atime, Ctime time.Time
	// Target is a symlink's target.
	Target string
	// Xattrs are the extended attributes by full name ("user.x",
	// "security.capability").
	Xattrs map[string][]byte
}

// Info is a file's metadata; it implements fs.FileInfo.
type Info struct {
	N     string
	Sz    int64
	M     fs.FileMode
	Mtime time.Time
	St    *Stat
}

func (i *Info) Name() string       { return i.N }
func (i *Info) Size() int64        { return i.Sz }
func (i *Info) Mode() fs.FileMode  { return i.M }
func (i *Info) ModTime() time.Time { return i.Mtime }
func (i *Info) IsDir() bool        { return i.M.IsDir() }
func (i *Info) Sys() any           { return i.St }

// File is an open regular file (or a symlink's target content).
type File struct {
	*Info
	*io.SectionReader
}

// NewFile returns a File reading size bytes of r.
func NewFile(info *Info, r io.ReaderAt) *File {
	return &File{Info: info, SectionReader: io.NewSectionReader(r, 0, info.Sz)}
}

func (f *File) Stat() (fs.FileInfo, error) { return f.Info, nil }
func (f *File) Close() error               { return nil }

// Dir is an open directory.
type Dir struct {
	*Info
	Entries []fs.DirEntry
	pos     int
}

func (d *Dir) Stat() (fs.FileInfo, error) { return d.Info, nil }
func (d *Dir) Close() error               { return nil }
func (d *Dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.N, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *Dir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.Entries[d.pos:]
	if n <= 0 {
		d.pos = len(d.Entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.pos += len(rest)
	return rest, nil
}

// Node is what Resolve walks: a file's metadata, and for a directory a
// lookup of its entries.
type Node interface {
	Info() *Info
	// Lookup finds a name in a directory node; fs.ErrNotExist if absent.
	Lookup(name string) (Node, error)
}

// maxLinks bounds the symlinks followed in one resolution, as Linux's 40.
const maxLinks = 40

// Resolve walks name (an fs.ValidPath) from root, following symlinks in
// every component, and in the last one too when follow is set. Absolute
// targets resolve from root: the filesystem is seen as its own root, and
// ".." at the root stays there.
func Resolve(op string, root Node, name string, follow bool) (Node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	stack := []Node{root}
	queue := strings.Split(name, "/")
	links := 0
	for len(queue) > 0 {
		elem := queue[0]
		queue = queue[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := stack[len(stack)-1]
		if !cur.Info().IsDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: errors.New("not a directory")}
		}
		next, err := cur.Lookup(elem)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if next.Info().M&fs.ModeSymlink != 0 && (len(queue) > 0 || follow) {
			if links++; links > maxLinks {
				return nil, &fs.PathError{Op: op, Path: name, Err: errors.New("too many levels of symbolic links")}
			}
			target := next.Info().St.Target
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			queue = append(strings.Split(target, "/"), queue...)
			continue
		}
		stack = append(stack, next)
	}
	return stack[len(stack)-1], nil
}
