package fstree

import (
	"errors"
	"fmt"
	"path"
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
	if rel == "" {
		return "", nil
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

// Split returns the elements of a cleaned path; nil for the root.
func Split(cp string) []string {
	if cp == "" {
		return nil
	}
	return strings.Split(cp, "/")
}
