package debian

import (
	"archive/tar"
	"strings"
)

// Header constructors for generated entries: root-owned, at Epoch, no user
// or group names, so the bytes depend on nothing but the arguments.

func dirHdr(name string, mode int64) tar.Header {
	return tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimSuffix(name, "/") + "/", Mode: mode, ModTime: Epoch()}
}

func fileHdr(name string, mode, size int64) tar.Header {
	return tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size, ModTime: Epoch()}
}

func symlinkHdr(name, target string) tar.Header {
	return tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: Epoch()}
}

func devHdr(name string, typ byte, mode, major, minor int64) tar.Header {
	return tar.Header{Typeflag: typ, Name: name, Mode: mode, Devmajor: major, Devminor: minor, ModTime: Epoch()}
}

// walkCompare orders cleaned paths the way fstree.Tree.Walk visits them:
// element by element, so "a/b" comes before "a-c" although '-' < '/'.
func walkCompare(a, b string) int {
	for {
		ea, ra, moreA := strings.Cut(a, "/")
		eb, rb, moreB := strings.Cut(b, "/")
		if c := strings.Compare(ea, eb); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1 // a is b's ancestor
		case !moreB:
			return 1
		}
		a, b = ra, rb
	}
}
