package ext4

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// dir writes directory n (inode ino, in parent) with entries es, whose
// inode numbers are inos.
func (wr *writer) dir(path *fstree.EntryPath, n *fstree.Node, ino, parent uint32, es []fstree.Entry, inos []uint32) error {
	ents := make([]dirent, len(es))
	subdirs := 0
	for i, e := range es {
		ents[i] = dirent{name: e.Name, ino: inos[i], ftype: fileType(uint16(e.Node.UnixMode()))}
		if e.Node.Type == fstree.TypeDir {
			subdirs++
		}
	}
	if ino == rootIno { // lost+found was moved first for numbering
		slices.SortFunc(ents, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	}
	minBlocks := 1
	if ino == firstIno {
		minBlocks = minLostFound
	}
	l, err := layoutDir(ents, wr.hashSeed, minBlocks)
	if err != nil {
		return err
	}
	in := wr.base(n)
	in.links = uint16(2 + subdirs)
	if 2+subdirs >= 65000 { // dir_nlink: too many to count
		in.links = 1
	}
	if err := wr.xattrs(n, in); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	nblocks := l.blocks()
	var ext extentList
	if err := wr.allocRun(&ext, 0, nblocks); err != nil {
		return err
	}
	phys := make([]int64, 0, nblocks)
	for _, e := range ext {
		for i := int64(0); i < int64(e.n); i++ {
			phys = append(phys, e.pblk+i)
		}
	}
	seed := inodeSeed(wr.csumSeed, ino)
	dots := []dirent{{name: ".", ino: ino, ftype: 2}, {name: "..", ino: parent, ftype: 2}}
	if !l.htree {
		for i, leaf := range l.leaves {
			var d []dirent
			if i == 0 {
				d = dots
			}
			leafBlock(wr.blk, d, leaf, seed)
			if err := wr.out.write(phys[i], wr.blk); err != nil {
				return err
			}
		}
	} else {
		in.flags |= flagIndex
		leafBase := 1 + l.nodes
		leafBlocks := make([]uint32, len(l.leaves))
		for i := range leafBlocks {
			leafBlocks[i] = uint32(leafBase + i)
		}
		if l.nodes == 0 {
			dxBlock(wr.blk, true, ino, parent, 0, l.hashes, leafBlocks, seed)
			if err := wr.out.write(phys[0], wr.blk); err != nil {
				return err
			}
		} else {
			var rootHashes, rootBlocks []uint32
			for j := 0; j < l.nodes; j++ {
				rootHashes = append(rootHashes, l.hashes[j*dxNodeLimit])
				rootBlocks = append(rootBlocks, uint32(1+j))
			}
			dxBlock(wr.blk, true, ino, parent, 1, rootHashes, rootBlocks, seed)
			if err := wr.out.write(phys[0], wr.blk); err != nil {
				return err
			}
			for j := 0; j < l.nodes; j++ {
				lo, hi := j*dxNodeLimit, min((j+1)*dxNodeLimit, len(l.leaves))
				dxBlock(wr.blk, false, 0, 0, 0, l.hashes[lo:hi], leafBlocks[lo:hi], seed)
				if err := wr.out.write(phys[1+j], wr.blk); err != nil {
					return err
				}
			}
		}
		for i, leaf := range l.leaves {
			leafBlock(wr.blk, nil, leaf, seed)
			if err := wr.out.write(phys[leafBase+i], wr.blk); err != nil {
				return err
			}
		}
	}
	in.size = nblocks * blockSize
	if err := wr.mapExtents(in, ino, ext, nblocks); err != nil {
		return err
	}
	return wr.putInode(ino, in, true)
}
