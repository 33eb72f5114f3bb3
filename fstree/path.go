package fstree

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// ErrUnsafePath is returned (wrapped) for a path that leaves the root.
var ErrUnsafePath = errors.New("path escapes the root")

// Clean turns an archive-style path ("./usr/bin/", "/etc//passwd") into the
// tree's form: slash-separated, relative to the root, no "." or ".."
// elements, no trailing slash; "" is the root. A path whose ".." elements
// would climb above the root is an error wrapping ErrUnsafePath, never
// silently clamped: an archive that tries it is broken or hostile.
func Clean(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%q: NUL byte in path", p)
	}
	rel := strings.TrimLeft(p, "/")
	for strings.HasPrefix(rel, "./") {
		rel = strings.TrimLeft(rel[2:], "/")
	}
	if len(rel) > 1 && rel[len(rel)-1] == '/' && rel[len(rel)-2] != '/' {
		rel = rel[:len(rel)-1]
	}
	if rel == "" {
		return "", nil
	}
	if isClean(rel) {
		// The usual archive path ("./usr/bin/" and its like): the slice
		// of it that path.Clean would return, without its allocation,
		// which a million-entry layer would pay a million times.
		return rel, nil
	}
	c := path.Clean(rel)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q: %w", p, ErrUnsafePath)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// isClean reports whether relative path p is in path.Clean's form: no
// empty, "." or ".." element, no leading or trailing slash.
func isClean(p string) bool {
	for len(p) > 0 {
		i := strings.IndexByte(p, '/')
		elem := p
		if i >= 0 {
			elem, p = p[:i], p[i+1:]
			if p == "" {
				return false // a trailing slash
			}
		} else {
			p = ""
		}
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

// Split returns the elements of a cleaned path; nil for the root.
func Split(cp string) []string {
	if cp == "" {
		return nil
	}
	return strings.Split(cp, "/")
}

// CheckName reports whether name can be a directory entry on a Linux
// filesystem: not empty, "." or "..", at most 255 bytes, without '/' or
// NUL. The tree itself accepts any name a map key can be; writers check.
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("invalid entry name %q", name)
	case len(name) > 255:
		return fmt.Errorf("entry name %.40q...: longer than 255 bytes", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("entry name %q: contains '/' or NUL", name)
	}
	return nil
}

// EntryPath is a path built up as a recursive walk goes down, one link per
// directory level, and turned into a string only when an error needs it.
// The nil *EntryPath is the root.
type EntryPath struct {
	dir  *EntryPath
	name string
}

// Child returns the path of entry name below p.
func (p *EntryPath) Child(name string) *EntryPath { return &EntryPath{p, name} }

// Name is the last element of p; "" for the root.
func (p *EntryPath) Name() string {
	if p == nil {
		return ""
	}
	return p.name
}

func (p *EntryPath) String() string {
	if p == nil {
		return "/"
	}
	var names []string
	for q := p; q != nil; q = q.dir {
		names = append(names, q.name)
	}
	slices.Reverse(names)
	return "/" + strings.Join(names, "/")
}
