package debian

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// The Debian root becomes numLayers layers. The original entries are spread
// over the lower four by a hash of their path (each layer repeats the
// directories above its entries, as image builders do); the upper two then
// delete, replace and retype entries, and the top one adds the init.
const (
	numLayers  = 5
	firstUpper = 3 // layers from here on carry changes
)

// Change is one deliberate difference between the original tree and the
// layered image, a case a flattener must get right.
type Change struct {
	Layer int    // 0 is the bottom layer
	Op    string // "whiteout", "opaque", "replace", "add", "retype", "chmod", "hardlink", "xattr"
	Path  string // cleaned, "" for the root
	Note  string
}

func (c Change) String() string {
	return fmt.Sprintf("layer %d: %s /%s %s", c.Layer, c.Op, c.Path, c.Note)
}

// origEntry is one entry of the original tar.
type origEntry struct {
	path   string
	hdr    *tar.Header
	off    int64  // offset of the content in the tar
	sum    string // hex SHA-256 of regular files
	linkTo string // hardlinks: the cleaned path they name
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readOriginal indexes a plain tar: headers, content offsets and hashes.
func readOriginal(f *os.File) ([]*origEntry, error) {
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	var out []*origEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		p, err := fstree.Clean(h.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		e := &origEntry{path: p, hdr: h, off: cr.n}
		switch h.Typeflag {
		case tar.TypeReg:
			hs := sha256.New()
			if _, err := io.Copy(hs, tr); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", f.Name(), h.Name, err)
			}
			e.sum = hex.EncodeToString(hs.Sum(nil))
		case tar.TypeLink:
			if e.linkTo, err = fstree.Clean(h.Linkname); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name(), err)
			}
		case tar.TypeDir, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		default:
			return nil, fmt.Errorf("%s: %s: unexpected tar type %q", f.Name(), h.Name, h.Typeflag)
		}
		out = append(out, e)
	}
}

// hashLayer spreads original entries over the lower layers.
func hashLayer(p string) int {
	h := sha256.Sum256([]byte("layer:" + p))
	return int(h[0]) % firstUpper
}

// splitter builds the layers and, in step, the model of the tree they
// flatten to.
type splitter struct {
	st      state
	layers  [numLayers]map[string]layerEntry // keyed by the cleaned name of the entry
	wh      [numLayers]map[string]bool       // paths whited out in each layer
	changes []Change
}

func newSplitter() *splitter {
	s := &splitter{st: state{m: map[string]*xrec{}}}
	for i := range s.layers {
		s.layers[i] = map[string]layerEntry{}
		s.wh[i] = map[string]bool{}
	}
	return s
}

func parentOf(p string) string { return p[:max(strings.LastIndexByte(p, '/'), 0)] }

// addOriginals places the original entries in the lower layers and loads
// them into the model. A hardlink group's tar target (its "primary") is the
// member in the lowest layer, first in walk order on a tie, so that every
// link sits in the primary's layer or above and after it in its layer.
func (s *splitter) addOriginals(src io.ReaderAt, orig []*origEntry) error {
	// Parents first: mmdebstrap writes /dev before the root.
	orig = slices.Clone(orig)
	slices.SortStableFunc(orig, func(a, b *origEntry) int { return walkCompare(a.path, b.path) })
	byPath := map[string]*origEntry{}
	for _, e := range orig {
		byPath[e.path] = e
	}
	members := map[string][]string{} // group (the tar target) -> names
	for _, e := range orig {
		if e.hdr.Typeflag == tar.TypeLink {
			t := byPath[e.linkTo]
			if t == nil || t.hdr.Typeflag != tar.TypeReg {
				return fmt.Errorf("hardlink %s: target %s is not a regular file before it", e.path, e.linkTo)
			}
			if len(members[t.path]) == 0 {
				members[t.path] = []string{t.path}
			}
			members[t.path] = append(members[t.path], e.path)
		}
	}
	primary := map[string]string{} // member -> primary
	for _, ms := range members {
		best := ms[0]
		for _, m := range ms[1:] {
			if l, bl := hashLayer(m), hashLayer(best); l < bl || l == bl && walkCompare(m, best) < 0 {
				best = m
			}
		}
		for _, m := range ms {
			primary[m] = best
		}
	}
	for _, e := range orig {
		data := e
		group := ""
		if e.hdr.Typeflag == tar.TypeLink {
			data, group = byPath[e.linkTo], e.linkTo
		} else if members[e.path] != nil {
			group = e.path
		}
		h := *data.hdr
		h.Name, h.Format, h.Uname, h.Gname = "./"+e.path, tar.FormatUnknown, "", ""
		rec := recordOf(e.path, &h, data.sum)
		body := fstree.Content(fstree.Section{R: src, Off: data.off, N: data.hdr.Size})
		if err := s.st.put(&xrec{rec: rec, group: group, body: body}); err != nil {
			return err
		}
		layer := hashLayer(e.path)
		switch {
		case e.path == "":
			layer = 0
		case group != "" && primary[e.path] != e.path:
			h = tar.Header{Typeflag: tar.TypeLink, Name: "./" + e.path, Linkname: "./" + primary[e.path],
				Mode: h.Mode, Uid: h.Uid, Gid: h.Gid, ModTime: h.ModTime}
			body = nil
		}
		if h.Typeflag == tar.TypeDir && e.path != "" {
			h.Name += "/"
		}
		if err := s.emit(layer, e.path, h, body); err != nil {
			return err
		}
	}
	return nil
}

// emit adds an entry named p to layer l, with every directory above it
// (with the model's current metadata) unless the layer has it already.
func (s *splitter) emit(l int, p string, h tar.Header, body fstree.Content) error {
	for q := p; q != ""; q = parentOf(q) {
		if s.wh[l][q] {
			return fmt.Errorf("layer %d: %s is under %s, whited out in the same layer", l, p, q)
		}
	}
	// Only the upper layers, where changes are made by hand, need the
	// check (and the lower ones are too big for it).
	if l >= firstUpper && h.Typeflag != tar.TypeDir {
		for k := range s.layers[l] {
			if under(k, p) && p != "" {
				return fmt.Errorf("layer %d: %s replaced by a non-directory but the layer has %s under it", l, p, k)
			}
		}
	}
	for q := parentOf(p); q != ""; q = parentOf(q) {
		if _, ok := s.layers[l][q]; ok {
			continue
		}
		d := s.st.get(q)
		if d == nil || d.rec.Type != fstree.TypeDir {
			return fmt.Errorf("layer %d: %s: parent %s is not a directory in the tree", l, p, q)
		}
		s.layers[l][q] = layerEntry{Hdr: headerOf(d.rec)}
	}
	s.layers[l][p] = layerEntry{Hdr: h, Body: body}
	return nil
}

// put adds x at layer l and records the change.
func (s *splitter) put(l int, x *xrec, op, note string) error {
	h := headerOf(x.rec)
	if err := s.emit(l, x.rec.Path, h, x.body); err != nil {
		return err
	}
	s.changes = append(s.changes, Change{l, op, x.rec.Path, note})
	return s.st.put(x)
}

// link adds a hardlink at p to the file at target, in layer l.
func (s *splitter) link(l int, p, target, note string) error {
	t := s.st.get(target)
	if t == nil || t.rec.Type != fstree.TypeRegular {
		return fmt.Errorf("layer %d: hardlink %s: %s is not a regular file", l, p, target)
	}
	if t.group == "" {
		t.group = "new:" + target
	}
	h := tar.Header{Typeflag: tar.TypeLink, Name: "./" + p, Linkname: "./" + target,
		Mode: int64(t.rec.Mode), Uid: int(t.rec.UID), Gid: int(t.rec.GID), ModTime: t.rec.Mtime}
	if err := s.emit(l, p, h, nil); err != nil {
		return err
	}
	s.changes = append(s.changes, Change{l, "hardlink", p, "to /" + target + note})
	r := t.rec
	r.Path = p
	return s.st.put(&xrec{rec: r, group: t.group, body: t.body})
}

// whiteout deletes p (and its subtree) in layer l.
func (s *splitter) whiteout(l int, p, note string) error {
	if s.st.get(p) == nil {
		return fmt.Errorf("layer %d: whiteout of %s, which is not there", l, p)
	}
	if _, ok := s.layers[l][p]; ok {
		return fmt.Errorf("layer %d: whiteout of %s, which the same layer adds", l, p)
	}
	wp := path.Join(parentOf(p), ".wh."+path.Base(p))
	h := tar.Header{Typeflag: tar.TypeReg, Name: "./" + wp, Mode: 0o644, ModTime: Epoch()}
	if err := s.emit(l, wp, h, nil); err != nil {
		return err
	}
	s.wh[l][p] = true
	s.changes = append(s.changes, Change{l, "whiteout", p, note})
	s.st.del(p)
	return nil
}

// opaque hides everything lower layers put in directory p.
func (s *splitter) opaque(l int, p, note string) error {
	d := s.st.get(p)
	if d == nil || d.rec.Type != fstree.TypeDir {
		return fmt.Errorf("layer %d: opaque %s: not a directory", l, p)
	}
	for k := range s.layers[l] {
		if under(k, p) && k != p {
			return fmt.Errorf("layer %d: opaque %s after the layer added %s", l, p, k)
		}
	}
	if err := s.emit(l, p, headerOf(d.rec), nil); err != nil {
		return err
	}
	op := path.Join(p, ".wh..wh..opq")
	h := tar.Header{Typeflag: tar.TypeReg, Name: "./" + op, Mode: 0o644, ModTime: Epoch()}
	if err := s.emit(l, op, h, nil); err != nil {
		return err
	}
	s.changes = append(s.changes, Change{l, "opaque", p, note})
	s.st.clear(p)
	return nil
}
