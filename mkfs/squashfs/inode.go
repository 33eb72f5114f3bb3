package squashfs

import (
	"encoding/binary"
	"fmt"

	"github.com/ocidisk/ocidisk/fstree"
)

// Inode types. Each has a basic form and an extended one (basic + 7) that
// adds an xattr index, and for files and directories wider fields.
const (
	typeDir = iota + 1
	typeFile
	typeSymlink
	typeBlockDev
	typeCharDev
	typeFIFO
	typeSocket
	extended = 7
)

func basicType(t fstree.Type) uint16 {
	switch t {
	case fstree.TypeDir:
		return typeDir
	case fstree.TypeRegular:
		return typeFile
	case fstree.TypeSymlink:
		return typeSymlink
	case fstree.TypeBlockDev:
		return typeBlockDev
	case fstree.TypeCharDev:
		return typeCharDev
	case fstree.TypeFIFO:
		return typeFIFO
	}
	return typeSocket
}

// putInode appends inode ino to the inode table; l is a directory's
// listing.
func (wr *writer) putInode(ino uint32, in *inode, l *listing) error {
	n := in.n
	ref, err := wr.inodes.ref()
	if err != nil {
		return err
	}
	in.ref = ref
	typ := basicType(n.Type)
	hasX := in.xattr != noIndex
	ext := hasX
	var fd *fileData
	switch n.Type {
	case fstree.TypeRegular:
		fd = &wr.p.files[in.file]
		ext = ext || in.nlink > 1 || fd.start >= 1<<32 || n.Size >= 1<<32 || fd.sparse > 0
	case fstree.TypeDir:
		ext = ext || len(l.index) > 0 || l.size+3 > 0xffff
	}
	if ext {
		typ += extended
	}
	le := binary.LittleEndian
	b := le.AppendUint16(wr.scratch[:0], typ)
	b = le.AppendUint16(b, uint16(n.Mode&fstree.ModeMask))
	b = le.AppendUint16(b, in.uid)
	b = le.AppendUint16(b, in.gid)
	b = le.AppendUint32(b, wr.mtime(n))
	b = le.AppendUint32(b, ino)
	switch n.Type {
	case fstree.TypeDir:
		if !ext {
			b = le.AppendUint32(b, l.block)
			b = le.AppendUint32(b, in.nlink)
			b = le.AppendUint16(b, uint16(l.size+3))
			b = le.AppendUint16(b, l.off)
			b = le.AppendUint32(b, in.parent)
			break
		}
		if len(l.index) > 0xffff {
			return fmt.Errorf("%s: a directory listing of %d bytes needs more than 65535 index entries", wr.path(ino), l.size)
		}
		b = le.AppendUint32(b, in.nlink)
		b = le.AppendUint32(b, l.size+3)
		b = le.AppendUint32(b, l.block)
		b = le.AppendUint32(b, in.parent)
		b = le.AppendUint16(b, uint16(len(l.index)))
		b = le.AppendUint16(b, l.off)
		b = le.AppendUint32(b, in.xattr)
		for _, x := range l.index {
			b = le.AppendUint32(b, x.index)
			b = le.AppendUint32(b, x.block)
			b = le.AppendUint32(b, uint32(len(x.name)-1))
			b = append(b, x.name...)
		}
	case fstree.TypeRegular:
		if !ext {
			b = le.AppendUint32(b, uint32(fd.start))
			b = le.AppendUint32(b, fd.frag)
			b = le.AppendUint32(b, fd.fragOff)
			b = le.AppendUint32(b, uint32(n.Size))
		} else {
			b = le.AppendUint64(b, fd.start)
			b = le.AppendUint64(b, uint64(n.Size))
			b = le.AppendUint64(b, fd.sparse)
			b = le.AppendUint32(b, in.nlink)
			b = le.AppendUint32(b, fd.frag)
			b = le.AppendUint32(b, fd.fragOff)
			b = le.AppendUint32(b, in.xattr)
		}
		for _, s := range fd.sizes {
			b = le.AppendUint32(b, s)
		}
	case fstree.TypeSymlink:
		b = le.AppendUint32(b, in.nlink)
		b = le.AppendUint32(b, uint32(len(n.Target)))
		b = append(b, n.Target...)
		if ext {
			b = le.AppendUint32(b, in.xattr)
		}
	case fstree.TypeBlockDev, fstree.TypeCharDev:
		b = le.AppendUint32(b, in.nlink)
		// Linux's new_encode_dev: the low 8 bits of the minor, the
		// 12-bit major, then the rest of the minor.
		b = le.AppendUint32(b, n.Minor&0xff|n.Major<<8|(n.Minor&^0xff)<<12)
		if ext {
			b = le.AppendUint32(b, in.xattr)
		}
	default: // FIFO, socket
		b = le.AppendUint32(b, in.nlink)
		if ext {
			b = le.AppendUint32(b, in.xattr)
		}
	}
	wr.scratch = b
	return wr.inodes.write(b)
}

// mtime is n's mtime in whole seconds, clamped to what squashfs's
// unsigned 32-bit field holds.
func (wr *writer) mtime(n *fstree.Node) uint32 {
	t := n.Mtime
	if t.IsZero() {
		t = wr.now
	}
	return clampTime(t.Unix())
}

func clampTime(s int64) uint32 {
	return uint32(min(max(s, 0), 1<<32-1))
}
