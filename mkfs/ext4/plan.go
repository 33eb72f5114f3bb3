package ext4

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// plan is what the writer learns from the tree before choosing a size:
// inode numbers, an upper bound on the blocks the tree's content and
// metadata take, and the hash of its metadata for default identifiers.
type plan struct {
	// inos numbers the inodes that entryInos cannot number by counting:
	// the directories (with the range their subtrees take) and the nodes
	// with more than one name. The others, most of a tree, are numbered
	// from their place in the walk, so the plan costs nothing per file.
	inos       map[*fstree.Node]inoRange
	inodes     int64 // highest inode number in use
	dirs       int64
	dataBlocks int64 // upper bound: file, directory, symlink, xattr and extent tree blocks
	root       *fstree.Node
	lostFound  *fstree.Node
	synthLF    bool // lost+found is not in the tree; the writer adds it
	metaHash   [32]byte
	newest     time.Time // newest mtime in the tree
	bytes      int64     // file content to copy
}

// inoRange is where a node's inode number and, for a directory, the
// numbers of the nodes first named below it fall: [first, end).
type inoRange struct{ ino, first, end uint32 }

// entryInos returns the inode numbers of the entries es of directory n, in
// es's order: inodes are numbered in walk order, at a node's first name,
// so an entry not in p.inos takes the next number after its preceding
// siblings' subtrees.
func (p *plan) entryInos(n *fstree.Node, es []fstree.Entry, out []uint32) []uint32 {
	out = out[:0]
	next := p.inos[n].first
	for _, e := range es {
		r, ok := p.inos[e.Node]
		switch {
		case !ok:
			out = append(out, next)
			next++
		case e.Node.Type == fstree.TypeDir:
			out = append(out, r.ino)
			next = r.end
		default: // a hardlink: its first name takes the next number
			out = append(out, r.ino)
			if r.ino == next {
				next++
			}
		}
	}
	return out
}

// used is the upper bound of blocks a filesystem of geometry g uses.
func (p *plan) used(g *geometry) int64 {
	n := g.metaBlocks + p.dataBlocks + 3*g.metaRanges // a run split by metadata may grow a file's extent tree
	if g.journal > 0 {
		n += g.journal + extentTreeBlocks(g.journal/maxExtentLen+1+g.metaRanges)
	}
	return n
}

func newPlan(t *fstree.Tree, opts Options) (*plan, error) {
	p := &plan{inos: map[*fstree.Node]inoRange{}}
	if t.Root == nil || t.Root.Type != fstree.TypeDir {
		return nil, fmt.Errorf("the tree's root is not a directory")
	}
	if lf := t.Root.Child("lost+found"); lf != nil {
		if lf.Type != fstree.TypeDir {
			return nil, fmt.Errorf("/lost+found: is a %s, e2fsck needs a directory", lf.Type)
		}
		p.lostFound = lf
	} else {
		p.lostFound, p.synthLF = fstree.NewDir(0o700), true
	}
	p.root = t.Root
	if opts.Label != "" && len(opts.Label) > 16 {
		return nil, fmt.Errorf("label %q: longer than 16 bytes", opts.Label)
	}
	p.inos[t.Root] = inoRange{ino: rootIno}
	p.inos[p.lostFound] = inoRange{ino: firstIno}
	next := uint32(firstIno + 1)
	h := sha256.New()
	hm := metaHasher{h: h}
	// visit plans n, called name in directory dir. Paths are made for
	// directories and errors only: one per entry would be garbage the size
	// of the tree.
	var visit func(dir *fstree.EntryPath, name string, n *fstree.Node) error
	visit = func(dir *fstree.EntryPath, name string, n *fstree.Node) error {
		hm.node(name, n)
		r, numbered := p.inos[n]
		switch {
		case n == t.Root || n == p.lostFound:
			if r.first != 0 {
				return nil // lost+found's second name, an error below
			}
		case numbered:
			return nil // a hardlink, counted at its first name
		default:
			if next == 0 {
				return fmt.Errorf("more than 2^32 inodes")
			}
			r.ino = next
			next++
			if n.Type == fstree.TypeDir || n.Links() > 1 {
				p.inos[n] = r
			}
		}
		if err := p.node(n); err != nil {
			return fmt.Errorf("%s: %w", dir.Child(name), err)
		}
		if n.Type != fstree.TypeDir {
			return nil
		}
		path := dir
		if n != t.Root {
			path = dir.Child(name)
		}
		r.first = next
		p.inos[n] = r // before the entries: a name below must see it numbered
		es := p.children(n)
		if err := p.dir(n, es); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, e := range es {
			if err := fstree.CheckName(e.Name); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if e.Node.Type == fstree.TypeDir && e.Node.Links() > 1 {
				return fmt.Errorf("%s: a directory with %d names", path.Child(e.Name), e.Node.Links())
			}
			if err := visit(path, e.Name, e.Node); err != nil {
				return err
			}
		}
		r.end = next
		p.inos[n] = r
		hm.end()
		return nil
	}
	if err := visit(nil, "", t.Root); err != nil {
		return nil, err
	}
	p.inodes = int64(next - 1)
	copy(p.metaHash[:], h.Sum(nil))
	return p, nil
}

// children returns a directory's entries in the order inodes are numbered
// and written: by name, except that the root's lost+found (inode 11, added
// when the tree has none) comes first.
func (p *plan) children(n *fstree.Node) []fstree.Entry {
	es := n.Entries()
	if n != p.root {
		return es
	}
	out := make([]fstree.Entry, 0, len(es)+1)
	out = append(out, fstree.Entry{Name: "lost+found", Node: p.lostFound})
	for _, e := range es {
		if e.Node != p.lostFound {
			out = append(out, e)
		}
	}
	return out
}

// node checks one inode and adds its blocks to the bound.
func (p *plan) node(n *fstree.Node) error {
	if n.Mtime.After(p.newest) {
		p.newest = n.Mtime
	}
	if n.Type != fstree.TypeDir && n.Links() > 65000 {
		return fmt.Errorf("%d hardlinks; ext4 holds at most 65000", n.Links())
	}
	xs, err := toXattrs(n.Xattrs)
	if err != nil {
		return err
	}
	if _, block := splitXattrs(xs); len(block) > 0 {
		if !blockXattrsFit(block) {
			return fmt.Errorf("xattrs need more than one %d-byte block", blockSize)
		}
		p.dataBlocks++
	}
	switch n.Type {
	case fstree.TypeRegular:
		if n.Size < 0 || n.Size > (1<<32-1)*blockSize {
			return fmt.Errorf("file size %d out of range", n.Size)
		}
		if n.Size > 0 && n.Content == nil {
			return fmt.Errorf("file of %d bytes has no content", n.Size)
		}
		b := (n.Size + blockSize - 1) / blockSize
		p.dataBlocks += b + extentTreeBlocks(maxExtents(b))
		p.bytes += n.Size
	case fstree.TypeDir:
		p.dirs++ // its blocks are counted by dir
	case fstree.TypeSymlink:
		switch {
		case n.Target == "":
			return fmt.Errorf("symlink with an empty target")
		case len(n.Target) >= blockSize:
			return fmt.Errorf("symlink target of %d bytes: longer than %d", len(n.Target), blockSize-1)
		case strings.IndexByte(n.Target, 0) >= 0:
			return fmt.Errorf("symlink target contains NUL")
		case len(n.Target) >= 60:
			p.dataBlocks++
		}
	case fstree.TypeCharDev, fstree.TypeBlockDev:
		if n.Major >= 1<<12 || n.Minor >= 1<<20 {
			return fmt.Errorf("device %d,%d: Linux device numbers hold 12-bit majors and 20-bit minors", n.Major, n.Minor)
		}
	case fstree.TypeFIFO, fstree.TypeSocket:
	default:
		return fmt.Errorf("unknown node type %s", n.Type)
	}
	return nil
}

// dir adds the blocks of directory n with entries es to the bound.
func (p *plan) dir(n *fstree.Node, es []fstree.Entry) error {
	b := dirBlocksBound(es)
	if n == p.lostFound {
		b = max(b, minLostFound)
	}
	p.dataBlocks += b + extentTreeBlocks(b)
	return nil
}

// dirBlocksBound bounds a directory's blocks without its hash order: a
// greedily packed leaf wastes less than the longest record.
func dirBlocksBound(es []fstree.Entry) int64 {
	total := int64(recLen(1) + recLen(2))
	longest := int64(0)
	for _, e := range es {
		r := int64(recLen(len(e.Name)))
		total += r
		longest = max(longest, r)
	}
	if total <= leafRoom {
		return 1
	}
	leaves := total/(leafRoom-longest+4) + 1
	nodes := int64(0)
	if leaves > dxRootLimit {
		nodes = (leaves + dxNodeLimit - 1) / dxNodeLimit
	}
	return 1 + nodes + leaves
}

// metaHasher feeds everything about the tree but file content into a
// hash, the default identity of the filesystem: each entry's name and
// metadata in walk order, and a marker where a directory ends.
type metaHasher struct {
	h   hash.Hash
	buf []byte
}

func (m *metaHasher) node(name string, n *fstree.Node) {
	b := m.buf[:0]
	b = append(b, name...)
	b = append(b, 0, byte(n.Type))
	for _, v := range []uint64{uint64(n.Mode), uint64(n.UID), uint64(n.GID), uint64(n.Size),
		uint64(n.Mtime.UnixNano()), uint64(n.Major), uint64(n.Minor)} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	b = append(b, n.Target...)
	if len(n.Xattrs) > 0 {
		keys := make([]string, 0, len(n.Xattrs))
		for k := range n.Xattrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = append(b, k...)
			b = append(b, 0)
			b = binary.LittleEndian.AppendUint64(b, uint64(len(n.Xattrs[k])))
			b = append(b, n.Xattrs[k]...)
		}
	}
	m.h.Write(b)
	m.buf = b
}

func (m *metaHasher) end() { m.h.Write([]byte{0xff, 0}) }
