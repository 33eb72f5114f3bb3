package fat

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/ocidisk/ocidisk/inspect/internal/rofs"
)

// node is a file or directory of the filesystem.
type node struct {
	f       *FS
	info    *rofs.Info
	cluster uint32
	root    bool
	kids    []*node // read on first use
	read    bool
}

func (f *FS) rootNode() *node {
	return &node{f: f, root: true, cluster: f.rootCluster,
		info: &rofs.Info{N: ".", M: fs.ModeDir | 0o755, St: &rofs.Stat{Nlink: 1}}}
}

func (n *node) Info() *rofs.Info { return n.info }

func (n *node) Lookup(name string) (rofs.Node, error) {
	kids, err := n.children()
	if err != nil {
		return nil, err
	}
	// An exact match first: a FAT written outside Windows may hold names
	// that differ only in case.
	for _, k := range kids {
		if k.info.N == name {
			return k, nil
		}
	}
	for _, k := range kids {
		if strings.EqualFold(k.info.N, name) {
			return k, nil
		}
	}
	return nil, fs.ErrNotExist
}

func (n *node) children() ([]*node, error) {
	if !n.read {
		kids, err := n.f.readDir(n, n.root)
		if err != nil {
			return nil, err
		}
		n.kids, n.read = kids, true
	}
	return n.kids, nil
}

// dirReader returns the bytes of a directory.
func (f *FS) dirReader(n *node) (io.ReaderAt, int64, error) {
	if n.root && f.bits != 32 {
		return io.NewSectionReader(f.r, f.rootOff, f.rootEntries*32), f.rootEntries * 32, nil
	}
	cs, err := f.chain(n.cluster)
	if err != nil {
		return nil, 0, fmt.Errorf("directory %s: %w", n.info.N, err)
	}
	return chainReader{f, cs}, int64(len(cs)) * f.clusterSize, nil
}

// readDir parses a directory's entries, joining VFAT long names to their
// short entries; in the root it also picks up the volume label.
func (f *FS) readDir(n *node, isRoot bool) ([]*node, error) {
	r, size, err := f.dirReader(n)
	if err != nil {
		return nil, err
	}
	n.info.Sz = size
	buf := make([]byte, size)
	if _, err := r.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("directory %s: %w", n.info.N, err)
	}
	le := binary.LittleEndian
	var kids []*node
	var lfn [][]uint16
	var lfnSum byte
	for off := 0; off+32 <= len(buf); off += 32 {
		e := buf[off : off+32]
		if e[0] == 0 {
			break
		}
		attr := e[11]
		switch {
		case e[0] == 0xe5:
			lfn = nil
			continue
		case attr&0x3f == 0x0f:
			ord := int(e[0] & 0x1f)
			if e[0]&0x40 != 0 {
				lfn, lfnSum = make([][]uint16, ord), e[13]
			}
			if ord >= 1 && ord <= len(lfn) && e[13] == lfnSum {
				var part []uint16
				for _, at := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
					part = append(part, le.Uint16(e[at:]))
				}
				lfn[ord-1] = part
			} else {
				lfn = nil
			}
			continue
		case attr&0x08 != 0:
			if isRoot {
				f.label = strings.TrimRight(string(e[:11]), " ")
			}
			lfn = nil
			continue
		}
		name := longName(lfn, lfnSum, e)
		lfn = nil
		if name == "." || name == ".." {
			continue
		}
		k := &node{f: f, cluster: uint32(le.Uint16(e[26:]))}
		if f.bits == 32 {
			k.cluster |= uint32(le.Uint16(e[20:])) << 16
		}
		mode := fs.FileMode(0o755)
		if attr&0x01 != 0 {
			mode = 0o555
		}
		if attr&0x10 != 0 {
			mode |= fs.ModeDir
		}
		k.info = &rofs.Info{N: name, Sz: int64(le.Uint32(e[28:])), M: mode,
			Mtime: f.timeOf(le.Uint16(e[24:]), le.Uint16(e[22:])),
			St: &rofs.Stat{Nlink: 1, Atime: f.timeOf(le.Uint16(e[18:]), 0),
				Ctime: f.timeOf(le.Uint16(e[16:]), le.Uint16(e[14:]))}}
		if mode.IsDir() {
			cs, err := f.chain(k.cluster)
			if err != nil {
				return nil, fmt.Errorf("directory %s: %w", name, err)
			}
			k.info.Sz = int64(len(cs)) * f.clusterSize
		}
		kids = append(kids, k)
	}
	slices.SortFunc(kids, func(a, b *node) int { return strings.Compare(a.info.N, b.info.N) })
	return kids, nil
}

// longName returns the long name collected for short entry e when it is
// complete and its checksum matches the short name, else the short name.
func longName(lfn [][]uint16, sum byte, e []byte) string {
	var s byte
	for _, c := range e[:11] {
		s = (s>>1 | s<<7) + c
	}
	if len(lfn) > 0 && s == sum && !slices.ContainsFunc(lfn, func(p []uint16) bool { return p == nil }) {
		var u []uint16
		for _, p := range lfn {
			u = append(u, p...)
		}
		if i := slices.Index(u, 0); i >= 0 {
			u = u[:i]
		}
		return string(utf16.Decode(u))
	}
	base := []byte(strings.TrimRight(string(e[:8]), " "))
	if len(base) > 0 && base[0] == 0x05 {
		base[0] = 0xe5
	}
	ext := strings.TrimRight(string(e[8:11]), " ")
	b := latin1(base)
	if e[12]&0x08 != 0 {
		b = strings.ToLower(b)
	}
	if e[12]&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext != "" {
		return b + "." + latin1([]byte(ext))
	}
	return b
}

// latin1 decodes an 8.3 name's bytes. Code pages differ above 0x7f; the
// writers here use only ASCII in short names.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// Open implements fs.FS.
func (f *FS) Open(name string) (fs.File, error) {
	nd, err := rofs.Resolve("open", f.root, name, true)
	if err != nil {
		return nil, err
	}
	n := nd.(*node)
	if n.info.IsDir() {
		kids, err := n.children()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &rofs.Dir{Info: n.info, Entries: entries(kids)}, nil
	}
	cs, err := f.chain(n.cluster)
	if err == nil && int64(len(cs))*f.clusterSize < n.info.Sz {
		err = fmt.Errorf("%d bytes, but its cluster chain holds %d", n.info.Sz, int64(len(cs))*f.clusterSize)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return rofs.NewFile(n.info, chainReader{f, cs}), nil
}

// ReadDir implements fs.ReadDirFS.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	nd, err := rofs.Resolve("readdir", f.root, name, true)
	if err != nil {
		return nil, err
	}
	n := nd.(*node)
	if !n.info.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fmt.Errorf("not a directory")}
	}
	kids, err := n.children()
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return entries(kids), nil
}

// Stat implements fs.StatFS.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	nd, err := rofs.Resolve("stat", f.root, name, true)
	if err != nil {
		return nil, err
	}
	return nd.Info(), nil
}

func entries(kids []*node) []fs.DirEntry {
	out := make([]fs.DirEntry, len(kids))
	for i, k := range kids {
		out[i] = fs.FileInfoToDirEntry(k.info)
	}
	return out
}
