package fstree

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// maxSymlinks bounds symlink resolution as the kernel's MAXSYMLINKS does.
const maxSymlinks = 40

// Realpath resolves every symlink in p, as the kernel would inside a root
// that is this tree (absolute targets start at the tree's root, ".." stops
// there), and returns the cleaned path of what p names. Components after
// the last existing one are kept as they are, so the result is also where
// a missing file would be created: with /lib -> usr/lib,
// Realpath("/lib/modules/6.1") is "usr/lib/modules/6.1" whether or not it
// exists. A component that is neither a directory nor a symlink yields an
// error wrapping ErrNotDir.
func (t *Tree) Realpath(p string) (string, error) {
	cp, err := Clean(p)
	if err != nil {
		return "", err
	}
	todo := Split(cp)
	var done []string
	n := t.Root
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		if name == ".." {
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			if n, err = t.Lookup(path.Join(done...)); err != nil {
				return "", err
			}
			continue
		}
		if n == nil {
			done = append(done, name)
			continue
		}
		if n.Type != TypeDir {
			return "", &fs.PathError{Op: "realpath", Path: path.Join(done...), Err: ErrNotDir}
		}
		c := n.entries[name]
		if c == nil || c.Type != TypeSymlink {
			done = append(done, name)
			n = c
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("realpath %s: %w", p, errors.New("too many levels of symbolic links"))
		}
		// An absolute target starts again at the root; its elements,
		// like a relative one's, are resolved in turn (lib -> usr/lib
		// under /lib/systemd/systemd), ".." included.
		target := path.Clean(c.Target)
		if path.IsAbs(target) {
			done, n = nil, t.Root
			target = strings.TrimLeft(target, "/")
		}
		if target != "" && target != "." {
			todo = append(strings.Split(target, "/"), todo...)
		}
	}
	return path.Join(done...), nil
}
