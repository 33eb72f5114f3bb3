package debian

import (
	"archive/tar"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// state is the tree as the layers so far make it, kept as a plain map from
// path to record: the independent model that the expected listing comes
// from. Deleting a directory deletes every path under it; putting a
// directory over a directory changes only its metadata; putting anything
// else replaces the path and, if it was a directory, its subtree.
type state struct {
	m map[string]*xrec
}

// xrec is one path of the model: its record (HardlinkTo left empty), the
// hardlink group it belongs to ("" for none) and where its content is.
type xrec struct {
	rec   fstree.Record
	group string
	body  fstree.Content
}

func (s *state) get(p string) *xrec { return s.m[p] }

func under(p, dir string) bool {
	return dir == "" || strings.HasPrefix(p, dir+"/")
}

// del removes p and everything under it.
func (s *state) del(p string) {
	delete(s.m, p)
	for q := range s.m {
		if under(q, p) && q != "" {
			delete(s.m, q)
		}
	}
}

// clear removes everything under directory p, keeping p.
func (s *state) clear(p string) {
	for q := range s.m {
		if q != p && under(q, p) {
			delete(s.m, q)
		}
	}
}

func (s *state) put(x *xrec) error {
	p := x.rec.Path
	if p != "" {
		parent := p[:max(strings.LastIndexByte(p, '/'), 0)]
		if pr := s.m[parent]; pr == nil || pr.rec.Type != fstree.TypeDir {
			return fmt.Errorf("expected tree: %s has no parent directory", p)
		}
	}
	if old := s.m[p]; old != nil && !(old.rec.Type == fstree.TypeDir && x.rec.Type == fstree.TypeDir) {
		s.del(p)
	}
	s.m[p] = x
	return nil
}

// paths returns every path in walk order.
func (s *state) paths() []string {
	ps := slices.Collect(maps.Keys(s.m))
	slices.SortFunc(ps, walkCompare)
	return ps
}

// records lists the model in walk order, each hardlink group's later names
// pointing at its first, as fstree.Manifest does.
func (s *state) records() []fstree.Record {
	first := map[string]string{}
	var out []fstree.Record
	for _, p := range s.paths() {
		x := s.m[p]
		r := x.rec
		if x.group != "" {
			if f, ok := first[x.group]; ok {
				r.HardlinkTo = f
			} else {
				first[x.group] = p
			}
		}
		out = append(out, r)
	}
	return out
}

// recordOf turns a tar header into a record at cleaned path p.
func recordOf(p string, h *tar.Header, sum string) fstree.Record {
	r := fstree.Record{Path: p, Mode: uint32(h.Mode) & fstree.ModeMask, UID: uint32(h.Uid), GID: uint32(h.Gid),
		Mtime: h.ModTime.UTC()}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeLink:
		r.Type, r.Size, r.SHA256 = fstree.TypeRegular, h.Size, sum
	case tar.TypeDir:
		r.Type = fstree.TypeDir
	case tar.TypeSymlink:
		r.Type, r.Target = fstree.TypeSymlink, h.Linkname
	case tar.TypeChar:
		r.Type, r.Major, r.Minor = fstree.TypeCharDev, uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeBlock:
		r.Type, r.Major, r.Minor = fstree.TypeBlockDev, uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeFifo:
		r.Type = fstree.TypeFIFO
	}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if r.Xattrs == nil {
				r.Xattrs = map[string]string{}
			}
			r.Xattrs[name] = v
		}
	}
	return r
}

// headerOf is recordOf's inverse for writing, named as in mmdebstrap's tar
// ("./usr/bin/", "./usr/bin/perl").
func headerOf(r fstree.Record) tar.Header {
	h := tar.Header{Name: "./" + r.Path, Mode: int64(r.Mode), Uid: int(r.UID), Gid: int(r.GID), ModTime: r.Mtime}
	switch r.Type {
	case fstree.TypeRegular:
		h.Typeflag, h.Size = tar.TypeReg, r.Size
	case fstree.TypeDir:
		h.Typeflag = tar.TypeDir
		if r.Path != "" {
			h.Name += "/"
		}
	case fstree.TypeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, r.Target
	case fstree.TypeCharDev:
		h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(r.Major), int64(r.Minor)
	case fstree.TypeBlockDev:
		h.Typeflag, h.Devmajor, h.Devminor = tar.TypeBlock, int64(r.Major), int64(r.Minor)
	case fstree.TypeFIFO:
		h.Typeflag = tar.TypeFifo
	}
	if len(r.Xattrs) > 0 {
		h.PAXRecords = map[string]string{}
		for k, v := range r.Xattrs {
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	return h
}
