// Package fat reads FAT12, FAT16 and FAT32 filesystems, with VFAT long
// names, as an io/fs.FS: what ocidisk inspect lists and reads on a boot
// partition. It never writes.
//
// Names are the long names when a valid one precedes the short entry, else
// the short name with the NT case flags applied, as Linux's vfat shows
// them. Times are taken as UTC. Modes are those Linux gives a vfat mount
// by default: directories 0755, files 0755 (0555 when read-only).
package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// FS is an open FAT filesystem.
type FS struct {
	r           io.ReaderAt // the filesystem, at offset 0
	size        int64
	bits        int // 12, 16 or 32
	sectorSize  int64
	clusterSize int64
	fatOff      int64
	rootOff     int64 // FAT12/16: the fixed root directory
	rootEntries int64
	dataOff     int64
	clusters    uint32 // data clusters, numbered 2..clusters+1
	rootCluster uint32 // FAT32
	fat         []byte // the first FAT
	serial      uint32
	label       string
	root        *node
}

// Open reads the FAT filesystem of size bytes at off of r.
func Open(r io.ReaderAt, off, size int64) (*FS, error) {
	f := &FS{r: io.NewSectionReader(r, off, size), size: size}
	bs := make([]byte, 512)
	if _, err := f.r.ReadAt(bs, 0); err != nil {
		return nil, fmt.Errorf("boot sector: %w", err)
	}
	le := binary.LittleEndian
	if bs[510] != 0x55 || bs[511] != 0xaa || (bs[0] != 0xeb && bs[0] != 0xe9) {
		return nil, errors.New("not a FAT filesystem: no boot sector signature")
	}
	f.sectorSize = int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	nfats := int64(bs[16])
	f.rootEntries = int64(le.Uint16(bs[17:]))
	total := int64(le.Uint16(bs[19:]))
	if total == 0 {
		total = int64(le.Uint32(bs[32:]))
	}
	fatSecs := int64(le.Uint16(bs[22:]))
	if fatSecs == 0 {
		fatSecs = int64(le.Uint32(bs[36:]))
	}
	switch {
	case f.sectorSize < 512 || f.sectorSize > 4096 || f.sectorSize&(f.sectorSize-1) != 0:
		return nil, fmt.Errorf("bad boot sector: %d bytes per sector", f.sectorSize)
	case spc == 0 || spc&(spc-1) != 0:
		return nil, fmt.Errorf("bad boot sector: %d sectors per cluster", spc)
	case reserved == 0 || nfats == 0 || fatSecs == 0:
		return nil, fmt.Errorf("bad boot sector: %d reserved sectors, %d FATs of %d sectors", reserved, nfats, fatSecs)
	case total*f.sectorSize > size:
		return nil, fmt.Errorf("filesystem of %d bytes does not fit its %d-byte partition: truncated image?", total*f.sectorSize, size)
	}
	f.clusterSize = spc * f.sectorSize
	f.fatOff = reserved * f.sectorSize
	f.rootOff = f.fatOff + nfats*fatSecs*f.sectorSize
	rootSecs := (f.rootEntries*32 + f.sectorSize - 1) / f.sectorSize
	f.dataOff = f.rootOff + rootSecs*f.sectorSize
	if f.dataOff >= total*f.sectorSize {
		return nil, errors.New("bad boot sector: no room for data")
	}
	f.clusters = uint32((total*f.sectorSize - f.dataOff) / f.clusterSize)
	switch {
	case f.clusters < 4085:
		f.bits = 12
	case f.clusters < 65525:
		f.bits = 16
	default:
		f.bits = 32
	}
	sig := 38
	if f.bits == 32 {
		if f.rootEntries != 0 {
			return nil, errors.New("bad boot sector: FAT32 with a fixed root directory")
		}
		f.rootCluster = le.Uint32(bs[44:])
		sig = 66
	}
	if bs[sig] == 0x29 {
		f.serial = le.Uint32(bs[sig+1:])
		f.label = strings.TrimRight(string(bs[sig+5:sig+16]), " ")
	}
	// The FAT holds clusters+2 entries; FATs past that are padding.
	fatBytes := min(fatSecs*f.sectorSize, (int64(f.clusters)+2)*int64(f.bits)/8+2)
	f.fat = make([]byte, fatBytes)
	if _, err := f.r.ReadAt(f.fat, f.fatOff); err != nil {
		return nil, fmt.Errorf("FAT: %w", err)
	}
	// The root directory's label entry is the label Linux reports.
	f.root = f.rootNode()
	if _, err := f.root.children(); err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}
	return f, nil
}

// Type is "FAT12", "FAT16" or "FAT32".
func (f *FS) Type() string { return fmt.Sprintf("FAT%d", f.bits) }

// Label is the volume label: the root directory's label entry, else the
// boot sector's; "" for none (NO NAME).
func (f *FS) Label() string {
	if f.label == "NO NAME" {
		return ""
	}
	return f.label
}

// UUID is the volume serial as Linux spells it: "1A2B-3C4D".
func (f *FS) UUID() string { return fmt.Sprintf("%04X-%04X", f.serial>>16, f.serial&0xffff) }

// Size is the size of the data area; Free the bytes of free clusters.
func (f *FS) Size() int64 { return int64(f.clusters) * f.clusterSize }

// Free counts the free clusters in the FAT.
func (f *FS) Free() int64 {
	var n int64
	for c := uint32(2); c < f.clusters+2; c++ {
		if f.entry(c) == 0 {
			n++
		}
	}
	return n * f.clusterSize
}

// entry returns FAT entry c.
func (f *FS) entry(c uint32) uint32 {
	le := binary.LittleEndian
	switch f.bits {
	case 12:
		i := int(c) * 3 / 2
		if i+1 >= len(f.fat) {
			return 0x0fffffff
		}
		v := uint32(le.Uint16(f.fat[i:]))
		if c&1 == 1 {
			return v >> 4
		}
		return v & 0xfff
	case 16:
		if int(c)*2+1 >= len(f.fat) {
			return 0x0fffffff
		}
		return uint32(le.Uint16(f.fat[c*2:]))
	}
	if int(c)*4+3 >= len(f.fat) {
		return 0x0fffffff
	}
	return le.Uint32(f.fat[c*4:]) & 0x0fffffff
}

func (f *FS) isEnd(v uint32) bool {
	switch f.bits {
	case 12:
		return v >= 0xff8
	case 16:
		return v >= 0xfff8
	}
	return v >= 0x0ffffff8
}

// chain returns the clusters of a file starting at c, checking that the
// chain stays in range and ends.
func (f *FS) chain(c uint32) ([]uint32, error) {
	var out []uint32
	for c != 0 && !f.isEnd(c) {
		if c < 2 || c >= f.clusters+2 {
			return nil, fmt.Errorf("cluster chain leaves the filesystem at cluster %d", c)
		}
		if len(out) > int(f.clusters) {
			return nil, errors.New("cluster chain loops")
		}
		out = append(out, c)
		c = f.entry(c)
	}
	return out, nil
}

// chainReader reads a cluster chain as one stream.
type chainReader struct {
	f        *FS
	clusters []uint32
}

func (cr chainReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 {
		i := off / cr.f.clusterSize
		if i >= int64(len(cr.clusters)) {
			return n, io.EOF
		}
		in := off % cr.f.clusterSize
		k := min(int64(len(p)), cr.f.clusterSize-in)
		at := cr.f.dataOff + int64(cr.clusters[i]-2)*cr.f.clusterSize + in
		if _, err := cr.f.r.ReadAt(p[:k], at); err != nil {
			return n, err
		}
		n += int(k)
		p = p[k:]
		off += k
	}
	return n, nil
}

func (f *FS) timeOf(date, tm uint16) time.Time {
	if date == 0 {
		return time.Time{}
	}
	return time.Date(1980+int(date>>9), time.Month(date>>5&15), int(date&31),
		int(tm>>11), int(tm>>5&63), int(tm&31)*2, 0, time.UTC)
}
