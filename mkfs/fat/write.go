package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// zeroBlock is the granularity at which runs of zeros are recognised and
// left to ZeroAt instead of being written.
const zeroBlock = 4096

// chunk is the buffer size for FAT tables and file content.
const chunk = 1 << 20

// zeroer is implemented by writers over storage that reads as zeros where
// nothing was written (diskimage's recorder): ZeroAt records that a range
// must read as zeros without writing it.
type zeroer interface {
	ZeroAt(off, n int64) error
}

// emitter writes a planned filesystem in one ascending pass: boot region,
// both FATs, the FAT16 root directory, then the directories and files in
// cluster order.
type emitter struct {
	w     io.WriterAt
	z     zeroer
	off   int64
	g     geometry
	p     *plan
	opts  *Options
	ends  []uint32 // last cluster of each chain, ascending
	next  uint32   // first free cluster
	zeros []byte
	buf   []byte
}

func newEmitter(w io.WriterAt, off int64, g geometry, p *plan, opts *Options) *emitter {
	e := &emitter{w: w, off: off, g: g, p: p, opts: opts, zeros: make([]byte, zeroBlock)}
	e.z, _ = w.(zeroer)
	return e
}

// allocate gives every directory and file its contiguous run of clusters
// in layout order.
func (e *emitter) allocate() {
	cs := e.g.clusterSize()
	e.next = 2
	take := func(bytes int64) uint32 {
		n := uint32((bytes + cs - 1) / cs)
		if n == 0 {
			return 0
		}
		first := e.next
		e.next += n
		e.ends = append(e.ends, e.next-1)
		return first
	}
	root := e.p.root
	if e.g.bits == 32 {
		root.first = take(max(int64(root.slots)*32, 1))
	}
	// Directories take their clusters when reached in the walk, so that
	// each directory sits just before its files.
	var walk func(d *dir)
	walk = func(d *dir) {
		for _, de := range d.entries {
			if de.dir != nil {
				de.dir.first = take(max(int64(de.dir.slots)*32, 1))
				de.first = de.dir.first
				walk(de.dir)
				continue
			}
			de.first = take(de.node.Size)
		}
	}
	walk(root)
}

func (e *emitter) run() error {
	e.allocate()
	if err := e.bootRegion(); err != nil {
		return err
	}
	if err := e.fats(); err != nil {
		return err
	}
	if e.g.bits == 16 {
		b, err := e.dirBytes(e.p.root, int64(e.g.rootEntries)*32)
		if err != nil {
			return err
		}
		if err := e.put(b, e.g.rootOff()); err != nil {
			return err
		}
	} else if err := e.dir(e.p.root); err != nil {
		return err
	}
	var walk func(d *dir) error
	walk = func(d *dir) error {
		for _, de := range d.entries {
			if de.dir != nil {
				if err := e.dir(de.dir); err != nil {
					return err
				}
				if err := walk(de.dir); err != nil {
					return err
				}
				continue
			}
			if err := e.file(de); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(e.p.root)
}

// put writes b at filesystem offset at, handing aligned runs of zero blocks
// to ZeroAt when the writer has it.
func (e *emitter) put(b []byte, at int64) error {
	abs := e.off + at
	if e.z == nil {
		if _, err := e.w.WriteAt(b, abs); err != nil {
			return fmt.Errorf("fat: write at %d: %w", abs, err)
		}
		return nil
	}
	for i := 0; i < len(b); {
		zero := false
		j := i
		for j < len(b) {
			end := min(len(b), j+zeroBlock-int((abs+int64(j))%zeroBlock))
			z := bytes.Equal(b[j:end], e.zeros[:end-j])
			if j == i {
				zero = z
			} else if z != zero {
				break
			}
			j = end
		}
		var err error
		if zero {
			err = e.z.ZeroAt(abs+int64(i), int64(j-i))
		} else {
			_, err = e.w.WriteAt(b[i:j], abs+int64(i))
		}
		if err != nil {
			return fmt.Errorf("fat: write at %d: %w", abs+int64(i), err)
		}
		i = j
	}
	return nil
}

func (e *emitter) bootRegion() error {
	p := e.p
	boot, err := e.bootSector(p.serial(e.opts))
	if err != nil {
		return err
	}
	if e.g.bits == 16 {
		return e.put(boot, 0)
	}
	info := e.fsInfo()
	for _, at := range []int64{0, 6 * sectorSize} { // primary and backup
		if err := e.put(boot, at); err != nil {
			return err
		}
		if err := e.put(info, at+sectorSize); err != nil {
			return err
		}
	}
	return nil
}

func (e *emitter) bootSector(serial uint32) ([]byte, error) {
	g := e.g
	label, err := labelBytes(e.opts.Label)
	if err != nil {
		return nil, err
	}
	if e.opts.Label == "" {
		copy(label[:], "NO NAME    ")
	}
	b := make([]byte, sectorSize)
	le := binary.LittleEndian
	copy(b[3:11], "MSWIN4.1") // the OEM name fatgen103 recommends for compatibility
	le.PutUint16(b[11:], sectorSize)
	b[13] = byte(g.clusterSecs)
	le.PutUint16(b[14:], uint16(g.reserved))
	b[16] = 2 // FATs
	le.PutUint16(b[17:], uint16(g.rootEntries))
	if g.bits == 16 && g.sectors < 0x10000 {
		le.PutUint16(b[19:], uint16(g.sectors))
	} else {
		le.PutUint32(b[32:], g.sectors)
	}
	b[21] = 0xf8              // fixed disk
	le.PutUint16(b[24:], 63)  // sectors per track, for BIOS geometry only
	le.PutUint16(b[26:], 255) // heads
	le.PutUint32(b[28:], uint32(e.off/sectorSize))
	ext := 36 // extended BPB: drive number, signature, serial, label, type
	fsType := "FAT16   "
	if g.bits == 16 {
		le.PutUint16(b[22:], uint16(g.fatSecs))
	} else {
		le.PutUint32(b[36:], g.fatSecs)
		le.PutUint32(b[44:], 2) // root directory cluster
		le.PutUint16(b[48:], 1) // FSInfo sector
		le.PutUint16(b[50:], 6) // backup boot sector
		ext = 64
		fsType = "FAT32   "
	}
	// A jump over the BPB to a one-instruction loop: not bootable, but
	// the jump is what readers check for.
	b[0], b[1], b[2] = 0xeb, byte(ext+26-2), 0x90
	b[ext+26], b[ext+27] = 0xeb, 0xfe
	b[ext] = 0x80
	b[ext+2] = 0x29
	le.PutUint32(b[ext+3:], serial)
	copy(b[ext+7:ext+18], label[:])
	copy(b[ext+18:ext+26], fsType)
	b[510], b[511] = 0x55, 0xaa
	return b, nil
}

// fsInfo is FAT32's free-space summary: free clusters and the first free
// one (0xFFFFFFFF when full).
func (e *emitter) fsInfo() []byte {
	b := make([]byte, sectorSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0x41615252)
	le.PutUint32(b[484:], 0x61417272)
	free := e.g.clusters + 2 - e.next
	le.PutUint32(b[488:], free)
	nextFree := e.next
	if free == 0 {
		nextFree = 0xffffffff
	}
	le.PutUint32(b[492:], nextFree)
	le.PutUint32(b[508:], 0xaa550000)
	return b
}

// fats writes both FAT copies, a chunk at a time.
func (e *emitter) fats() error {
	g := e.g
	width := int64(g.bits / 8)
	total := int64(g.fatSecs) * sectorSize
	buf := make([]byte, min(chunk, total))
	eoc := uint32(0x0fffffff)
	if g.bits == 16 {
		eoc = 0xffff
	}
	ends := e.ends
	for at := int64(0); at < total; at += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), total-at)]
		clear(b)
		first := uint32(at / width)
		for i := int64(0); i < int64(len(b))/width; i++ {
			c := first + uint32(i)
			var v uint32
			switch {
			case c == 0:
				v = eoc&^0xff | 0xf8 // media byte
			case c == 1:
				v = eoc // clean, no errors
			case c >= e.next:
				continue
			case len(ends) > 0 && ends[0] == c:
				v = eoc
				ends = ends[1:]
			default:
				v = c + 1
			}
			if g.bits == 16 {
				binary.LittleEndian.PutUint16(b[i*2:], uint16(v))
			} else {
				binary.LittleEndian.PutUint32(b[i*4:], v)
			}
		}
		for f := range 2 {
			if err := e.put(b, g.fatOff(f)+at); err != nil {
				return err
			}
		}
	}
	return nil
}

// dir writes a directory's clusters.
func (e *emitter) dir(d *dir) error {
	cs := e.g.clusterSize()
	b, err := e.dirBytes(d, roundUp(max(int64(d.slots)*32, 1), cs))
	if err != nil {
		return err
	}
	return e.put(b, e.g.clusterOff(d.first))
}

// dirBytes encodes a directory into size bytes: "." and ".." or the volume
// label, then for each entry its long-name entries and its short entry.
// The rest stays zero, which marks the end of the directory.
func (e *emitter) dirBytes(d *dir, size int64) ([]byte, error) {
	b := make([]byte, 0, size)
	if d.parent == nil {
		if e.opts.Label != "" {
			label, _ := labelBytes(e.opts.Label)
			b = appendShort(b, label, attrVolumeID, 0, 0, 0, d.time)
		}
	} else {
		parent := d.parent.first
		if d.parent.parent == nil {
			parent = 0 // ".." of a top-level directory names the root as 0, even on FAT32
		}
		b = appendShort(b, [11]byte{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, attrDir, 0, d.first, 0, d.time)
		b = appendShort(b, [11]byte{'.', '.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, attrDir, 0, parent, 0, d.time)
	}
	for _, de := range d.entries {
		if de.short.long {
			b = appendLong(b, de.name, checksum(de.short.name))
		}
		var size uint32
		if de.dir == nil {
			size = uint32(de.node.Size)
		}
		b = appendShort(b, de.short.name, de.attr, de.short.lcase, de.first, size, de.time)
	}
	if int64(len(b)) > size {
		return nil, fmt.Errorf("fat: /%s: %d directory entries do not fit the %d-entry root directory", d.path, len(b)/32, size/32)
	}
	return b[:size], nil
}

func appendShort(b []byte, name [11]byte, attr, lcase byte, first, size uint32, t0 time.Time) []byte {
	var s [32]byte
	le := binary.LittleEndian
	copy(s[:11], name[:])
	s[11] = attr
	s[12] = lcase
	t := encodeTime(t0)
	if attr != attrVolumeID {
		s[13] = t.tenth
		le.PutUint16(s[14:], t.time)
		le.PutUint16(s[16:], t.date)
		le.PutUint16(s[18:], t.date)
	}
	le.PutUint16(s[20:], uint16(first>>16))
	le.PutUint16(s[22:], t.time)
	le.PutUint16(s[24:], t.date)
	le.PutUint16(s[26:], uint16(first))
	le.PutUint32(s[28:], size)
	return append(b, s[:]...)
}

// file copies a file's content into its clusters, checking that the content
// has exactly the size the tree gives.
func (e *emitter) file(de *dirent) error {
	n := de.node
	if n.Size == 0 {
		return nil
	}
	if n.Content == nil {
		return fmt.Errorf("fat: /%s: %d bytes but no content", de.path, n.Size)
	}
	r, err := n.Content.Open()
	if err != nil {
		return fmt.Errorf("fat: /%s: %w", de.path, err)
	}
	defer r.Close()
	if e.buf == nil {
		e.buf = make([]byte, chunk)
	}
	at := e.g.clusterOff(de.first)
	for done := int64(0); done < n.Size; {
		b := e.buf[:min(int64(len(e.buf)), n.Size-done)]
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("fat: /%s: content ends before its %d bytes", de.path, n.Size)
			}
			return fmt.Errorf("fat: /%s: %w", de.path, err)
		}
		if err := e.put(b, at+done); err != nil {
			return err
		}
		done += int64(len(b))
	}
	if k, _ := r.Read(e.buf[:1]); k > 0 {
		return fmt.Errorf("fat: /%s: content is longer than its %d bytes", de.path, n.Size)
	}
	return nil
}
