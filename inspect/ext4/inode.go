package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/ocidisk/ocidisk/inspect/internal/rofs"
)

// Inode flags.
const (
	flagExtents    = 0x80000
	flagInlineData = 0x10000000
)

// node is an inode, under the name it was found by.
type node struct {
	f     *FS
	ino   uint32
	info  *rofs.Info
	flags uint32
	block [60]byte // i_block: extents, block map, inline data or a fast symlink
	raw   []byte   // the whole on-disk inode
	kids  []dirent // for directories, read on first use
	read  bool
}

func (n *node) Info() *rofs.Info { return n.info }

// node reads inode ino.
func (f *FS) node(ino uint32, name string) (*node, error) {
	if ino == 0 || ino > f.inodes {
		return nil, fmt.Errorf("inode %d out of range (1-%d)", ino, f.inodes)
	}
	g := int64(ino-1) / int64(f.ipg)
	table, err := f.inodeTable(g)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, f.inodeSize)
	if _, err := f.r.ReadAt(raw, table*f.blockSize+int64(ino-1)%int64(f.ipg)*f.inodeSize); err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	le := binary.LittleEndian
	n := &node{f: f, ino: ino, raw: raw, flags: le.Uint32(raw[32:])}
	copy(n.block[:], raw[40:100])
	mode := le.Uint16(raw[0:])
	extra := 0
	if f.inodeSize > 128 {
		extra = int(le.Uint16(raw[128:]))
	}
	// Times: seconds, and with a large inode the high epoch bits and
	// nanoseconds in the extra fields.
	tm := func(off, extraOff int) time.Time {
		sec := int64(int32(le.Uint32(raw[off:])))
		var nsec int64
		if extra >= extraOff-128+4 {
			x := le.Uint32(raw[extraOff:])
			sec += int64(x&3) << 32
			nsec = int64(x >> 2)
		}
		return time.Unix(sec, nsec).UTC()
	}
	st := &rofs.Stat{
		Ino:   uint64(ino),
		UID:   uint32(le.Uint16(raw[2:])) | uint32(le.Uint16(raw[0x78:]))<<16,
		GID:   uint32(le.Uint16(raw[24:])) | uint32(le.Uint16(raw[0x7a:]))<<16,
		Nlink: uint32(le.Uint16(raw[26:])),
		Atime: tm(8, 0x8c),
		Ctime: tm(12, 0x84),
	}
	size := int64(le.Uint32(raw[4:])) | int64(le.Uint32(raw[0x6c:]))<<32
	n.info = &rofs.Info{N: name, Sz: size, M: fileMode(mode), Mtime: tm(16, 0x88), St: st}
	switch n.info.M.Type() {
	case fs.ModeSymlink:
		target, err := n.readlink()
		if err != nil {
			return nil, err
		}
		st.Target = target
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		b0, b1 := le.Uint32(n.block[0:]), le.Uint32(n.block[4:])
		if b0 != 0 { // the old 8:8 encoding
			st.Major, st.Minor = b0>>8&0xff, b0&0xff
		} else {
			st.Major, st.Minor = (b1&0xfff00)>>8, b1&0xff|(b1>>12)&0xfff00
		}
	}
	if st.Xattrs, err = n.xattrs(extra); err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	return n, nil
}

func fileMode(m uint16) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	switch m & 0xf000 {
	case 0x4000:
		mode |= fs.ModeDir
	case 0xa000:
		mode |= fs.ModeSymlink
	case 0x2000:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0x6000:
		mode |= fs.ModeDevice
	case 0x1000:
		mode |= fs.ModeNamedPipe
	case 0xc000:
		mode |= fs.ModeSocket
	}
	return mode
}

// readlink returns a symlink's target: in i_block when it is shorter than
// 60 bytes (a fast symlink), else in its data blocks.
func (n *node) readlink() (string, error) {
	size := n.info.Sz
	if size > 4096 || size < 0 {
		return "", fmt.Errorf("inode %d: symlink of %d bytes", n.ino, size)
	}
	// A target under 60 bytes lives in i_block (a fast symlink), unless
	// i_block holds an extent tree with extents: old kernels made slow
	// symlinks of short targets too.
	slow := n.flags&flagExtents != 0 && binary.LittleEndian.Uint16(n.block[0:]) == 0xf30a && binary.LittleEndian.Uint16(n.block[2:]) > 0
	if size < 60 && !slow {
		return string(n.block[:size]), nil
	}
	r, err := n.content()
	if err != nil {
		return "", err
	}
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		return "", fmt.Errorf("inode %d: symlink: %w", n.ino, err)
	}
	return string(b), nil
}

// content returns a reader of the inode's data, holes reading as zeros.
func (n *node) content() (io.ReaderAt, error) {
	switch {
	case n.flags&flagInlineData != 0:
		data := append([]byte(nil), n.block[:]...)
		data = append(data, n.info.St.Xattrs["system.data"]...)
		return bytes.NewReader(data[:min(int64(len(data)), n.info.Sz)]), nil
	case n.flags&flagExtents != 0:
		m, err := n.f.extents(n.block[:], 0)
		if err != nil {
			return nil, fmt.Errorf("inode %d: %w", n.ino, err)
		}
		return &blockReader{f: n.f, m: m, size: n.info.Sz}, nil
	}
	m, err := n.f.blockMap(n.block[:], n.info.Sz)
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", n.ino, err)
	}
	return &blockReader{f: n.f, m: m, size: n.info.Sz}, nil
}

// extent maps logical blocks [logical, logical+count) to physical ones;
// an uninitialized extent reads as zeros.
type extent struct {
	logical, physical, count int64
	zero                     bool
}

func (f *FS) extents(b []byte, depth int) ([]extent, error) {
	le := binary.LittleEndian
	if le.Uint16(b[0:]) != 0xf30a {
		return nil, errors.New("bad extent header")
	}
	entries := int(le.Uint16(b[2:]))
	level := int(le.Uint16(b[6:]))
	if depth > 5 || 12+12*entries > len(b) {
		return nil, fmt.Errorf("bad extent node: %d entries, depth %d", entries, level)
	}
	var out []extent
	for i := range entries {
		e := b[12+12*i:]
		if level == 0 {
			n := int64(le.Uint16(e[4:]))
			x := extent{logical: int64(le.Uint32(e[0:])), physical: int64(le.Uint16(e[6:]))<<32 | int64(le.Uint32(e[8:])), count: n}
			if n > 32768 {
				x.count, x.zero = n-32768, true
			}
			if x.physical+x.count > f.blocks {
				return nil, fmt.Errorf("extent at block %d runs past the filesystem", x.physical)
			}
			out = append(out, x)
			continue
		}
		leaf := int64(le.Uint32(e[4:])) | int64(le.Uint16(e[8:]))<<32
		if leaf >= f.blocks {
			return nil, fmt.Errorf("extent index points at block %d, outside the filesystem", leaf)
		}
		child := make([]byte, f.blockSize)
		if _, err := f.r.ReadAt(child, leaf*f.blockSize); err != nil {
			return nil, err
		}
		sub, err := f.extents(child, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

// blockMap reads the ext2/ext3 block map: 12 direct blocks, then single,
// double and triple indirect blocks.
func (f *FS) blockMap(b []byte, size int64) ([]extent, error) {
	le := binary.LittleEndian
	nblocks := (size + f.blockSize - 1) / f.blockSize
	var out []extent
	var logical int64
	add := func(p int64) {
		if k := len(out); k > 0 && out[k-1].logical+out[k-1].count == logical && out[k-1].physical+out[k-1].count == p {
			out[k-1].count++
		} else if p != 0 {
			out = append(out, extent{logical: logical, physical: p, count: 1})
		}
		logical++
	}
	per := f.blockSize / 4
	var walk func(blk int64, level int) error
	walk = func(blk int64, level int) error {
		span := int64(1)
		for range level {
			span *= per
		}
		if blk == 0 {
			logical += span
			return nil
		}
		if blk >= f.blocks {
			return fmt.Errorf("block map points at block %d, outside the filesystem", blk)
		}
		if level == 0 {
			add(blk)
			return nil
		}
		ind := make([]byte, f.blockSize)
		if _, err := f.r.ReadAt(ind, blk*f.blockSize); err != nil {
			return err
		}
		for i := int64(0); i < per && logical < nblocks; i++ {
			if err := walk(int64(le.Uint32(ind[4*i:])), level-1); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 0; i < 15 && logical < nblocks; i++ {
		level := max(0, i-11)
		if err := walk(int64(le.Uint32(b[4*i:])), level); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// blockReader reads a file through its extent list.
type blockReader struct {
	f    *FS
	m    []extent
	size int64
}

func (br *blockReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= br.size {
		return 0, io.EOF
	}
	var eof error
	if off+int64(len(p)) > br.size {
		p, eof = p[:br.size-off], io.EOF
	}
	n := 0
	bs := br.f.blockSize
	for len(p) > 0 {
		lb, in := off/bs, off%bs
		k := min(int64(len(p)), bs-in)
		var x *extent
		for i := range br.m { // extent lists are short; a search is not worth it
			if e := &br.m[i]; lb >= e.logical && lb < e.logical+e.count {
				x = e
				break
			}
		}
		if x == nil || x.zero {
			clear(p[:k])
		} else {
			k = min(int64(len(p)), (x.logical+x.count-lb)*bs-in)
			if _, err := br.f.r.ReadAt(p[:k], (x.physical+lb-x.logical)*bs+in); err != nil {
				return n, err
			}
		}
		n += int(k)
		p = p[k:]
		off += k
	}
	return n, eof
}
