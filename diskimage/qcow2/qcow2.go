// Package qcow2 writes disk images in QEMU's qcow2 format (version 3, 64 KiB
// clusters): an image of a disk from the ranges of it that hold data, read
// once and in order, and an overlay that holds no data and reads through
// to a backing file.
//
// The output is dense and deterministic: every cluster of the file is used
// exactly once, in the order header, L1 table, refcount table, then for
// each 512 MiB of the disk its data clusters followed by their L2 table,
// and last the refcount blocks. Only the header, L1 and refcount tables
// are written out of order (last, at the front, once their contents are
// known), so memory stays at a few clusters plus the L1 table (8 bytes per
// 512 MiB of disk) whatever the disk's size. That is why the output is an
// io.WriterAt: which clusters hold only zeros, and so where the L2 tables
// fall, is known only once the data has been read, and the data is read
// once.
package qcow2

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

const (
	clusterBits = 16
	// ClusterSize is the size of the image's clusters, qemu-img's default.
	ClusterSize = 1 << clusterBits

	headerLen = 104 // version 3 header without the optional fields
	// l2Entries is the number of clusters one L2 table maps, and l2Span
	// the bytes of disk it covers (512 MiB).
	l2Entries = ClusterSize / 8
	l2Span    = int64(ClusterSize) * l2Entries
	// refcountOrder 4 gives 16-bit refcounts, qemu's default.
	refcountOrder = 4
	refsPerBlock  = ClusterSize / 2

	// Flags of L1 and L2 entries. Copied says the cluster's refcount is
	// exactly 1 (qemu-img check insists on it); Zero (v3) that the
	// cluster reads as zeros, whatever a backing file holds there.
	flagCopied = 1 << 63
	flagZero   = 1

	extBackingFormat = 0xe2792aca

	// chunkClusters is how many clusters are read (and written) at once.
	chunkClusters = 16
)

// Range is Len bytes of the disk at Off.
type Range struct{ Off, Len int64 }

// Backing names the image an overlay reads through to: File, its path as
// QEMU opens it (relative paths are relative to the overlay), and Format,
// its format ("raw", "qcow2"...).
type Backing struct{ File, Format string }

// Write writes to w a qcow2 image of a size-byte disk whose data are the
// bytes of r in ranges; the rest of the disk reads as zeros and is not
// read. Ranges may be in any order and may overlap. Clusters the ranges
// touch that read as zeros are left unallocated. Every byte of the image
// is written, so w need not be a new file; Write returns the image's
// length.
//
// QEMU counts a disk in 512-byte sectors: a size that is not a multiple of
// 512 is rounded up, as qemu-img does.
func Write(ctx context.Context, w io.WriterAt, r io.ReaderAt, size int64, ranges []Range) (int64, error) {
	return write(ctx, w, r, size, ranges, Backing{})
}

// WriteOverlay writes to w a qcow2 image of a size-byte disk that holds no
// data: every read goes to the backing image, and reads past its end see
// zeros. QEMU opens the backing file read-only, so with a snapshot drive
// on top the backing image is never written. It returns the length of the
// image written.
func WriteOverlay(w io.WriterAt, size int64, b Backing) (int64, error) {
	if b.File == "" {
		return 0, errors.New("qcow2 overlay: no backing file")
	}
	return write(context.Background(), w, nil, size, nil, b)
}

// layout is where the fixed tables go, in clusters, and how big they are.
type layout struct {
	size                       int64 // virtual size, a multiple of 512
	l1Entries                  int64
	l1Clusters, rtClusters     int64
	dataStart                  int64 // first cluster after the fixed tables
	ranges                     []Range
	backing                    Backing
	header                     []byte // cluster 0
	touchedClusters, touchedL2 int64
}

func write(ctx context.Context, w io.WriterAt, r io.ReaderAt, size int64, ranges []Range, b Backing) (int64, error) {
	l, err := plan(size, ranges, b)
	if err != nil {
		return 0, err
	}
	s := &stream{ctx: ctx, w: w, r: r, l: l, next: l.dataStart * ClusterSize,
		l1: make([]uint64, l.l1Entries), zero: make([]byte, ClusterSize)}
	if err := s.data(); err != nil {
		return 0, err
	}
	if err := s.finish(); err != nil {
		return 0, err
	}
	return s.next, nil
}

// plan checks the inputs and sizes the tables that precede the data.
func plan(size int64, ranges []Range, b Backing) (*layout, error) {
	if size < 0 {
		return nil, fmt.Errorf("qcow2: negative disk size %d", size)
	}
	l := &layout{size: (size + 511) &^ 511, backing: b}
	var err error
	if l.ranges, err = normalize(ranges, size); err != nil {
		return nil, err
	}
	if l.header, err = header(b); err != nil {
		return nil, err
	}
	l.l1Entries = (l.size + l2Span - 1) / l2Span
	if l.l1Entries > 1<<25 { // QEMU's limit on L1 tables, 256 MiB of them
		return nil, fmt.Errorf("qcow2: a %d-byte disk is too large", size)
	}
	l.l1Clusters = clustersFor(l.l1Entries * 8)

	// The refcount table is sized for the largest image the ranges can
	// give, every touched cluster allocated.
	lastC, lastS := int64(-1), int64(-1)
	for _, rg := range l.ranges {
		first, end := rg.Off>>clusterBits, (rg.Off+rg.Len-1)>>clusterBits+1
		first = max(first, lastC+1)
		if end > first {
			l.touchedClusters += end - first
			lastC = end - 1
		}
		fs, es := max(rg.Off/l2Span, lastS+1), (rg.Off+rg.Len-1)/l2Span+1
		if es > fs {
			l.touchedL2 += es - fs
			lastS = es - 1
		}
	}
	before := 1 + l.l1Clusters + l.touchedClusters + l.touchedL2
	l.rtClusters = 1
	for {
		need := clustersFor(refBlocks(before+l.rtClusters) * 8)
		if need <= l.rtClusters {
			break
		}
		l.rtClusters = need
	}
	l.dataStart = 1 + l.l1Clusters + l.rtClusters
	return l, nil
}

// normalize checks ranges against the disk and returns them sorted, with
// empty ones dropped and overlapping or adjacent ones merged.
func normalize(ranges []Range, size int64) ([]Range, error) {
	out := make([]Range, 0, len(ranges))
	for _, rg := range ranges {
		if rg.Off < 0 || rg.Len < 0 || rg.Off > size || rg.Len > size-rg.Off {
			return nil, fmt.Errorf("qcow2: range of %d bytes at %d is outside the %d-byte disk", rg.Len, rg.Off, size)
		}
		if rg.Len > 0 {
			out = append(out, rg)
		}
	}
	slices.SortFunc(out, func(a, b Range) int { return cmp.Compare(a.Off, b.Off) })
	merged := out[:0]
	for _, rg := range out {
		if k := len(merged) - 1; k >= 0 && rg.Off <= merged[k].Off+merged[k].Len {
			merged[k].Len = max(merged[k].Len, rg.Off+rg.Len-merged[k].Off)
			continue
		}
		merged = append(merged, rg)
	}
	return merged, nil
}

// header returns cluster 0 without the fields that depend on the layout:
// magic, version, backing file and the header extensions.
func header(b Backing) ([]byte, error) {
	h := make([]byte, ClusterSize)
	be := binary.BigEndian
	copy(h, "QFI\xfb")
	be.PutUint32(h[4:], 3)
	be.PutUint32(h[20:], clusterBits)
	be.PutUint32(h[96:], refcountOrder)
	be.PutUint32(h[100:], headerLen)
	ext := h[headerLen:headerLen]
	if b.Format != "" {
		ext = extension(ext, extBackingFormat, []byte(b.Format))
	}
	ext = extension(ext, 0, nil) // end of the extensions
	nameOff := headerLen + len(ext)
	if b.File != "" {
		// QEMU reads at most 1023 bytes of backing file name.
		if len(b.File) > 1023 || nameOff+len(b.File) > ClusterSize {
			return nil, fmt.Errorf("qcow2: backing file name of %d bytes is too long", len(b.File))
		}
		be.PutUint64(h[8:], uint64(nameOff))
		be.PutUint32(h[16:], uint32(len(b.File)))
		copy(h[nameOff:], b.File)
	}
	return h, nil
}

// extension appends a header extension: type, length, data padded to 8
// bytes.
func extension(b []byte, typ uint32, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	return append(b, make([]byte, (8-len(data)%8)%8)...)
}

func clustersFor(n int64) int64 { return (n + ClusterSize - 1) / ClusterSize }

// refBlocks is the number of refcount blocks an image of n clusters needs
// when the blocks themselves come after those n.
func refBlocks(n int64) int64 {
	rb := int64(0)
	for {
		need := (n + rb + refsPerBlock - 1) / refsPerBlock
		if need <= rb {
			return rb
		}
		rb = need
	}
}

// stream writes the data clusters and L2 tables in order.
type stream struct {
	ctx  context.Context
	w    io.WriterAt
	r    io.ReaderAt
	l    *layout
	next int64 // the file offset of the next cluster to allocate

	l1   []uint64
	l2   []byte // the L2 table being filled, nil between spans
	span int64  // the span l2 maps
	zero []byte // a cluster of zeros

	out    []byte // clusters waiting to be written at outOff
	outOff int64
}

// data reads the clusters the ranges touch, chunk by chunk, and allocates
// those that are not all zero.
func (s *stream) data() error {
	buf := make([]byte, chunkClusters*ClusterSize)
	s.out = make([]byte, 0, len(buf))
	ranges := s.l.ranges
	for i := 0; i < len(ranges); {
		// A run of touched clusters: ranges that share or abut clusters.
		first := ranges[i].Off >> clusterBits
		end := (ranges[i].Off+ranges[i].Len-1)>>clusterBits + 1
		j := i + 1
		for j < len(ranges) && ranges[j].Off>>clusterBits < end {
			end = (ranges[j].Off+ranges[j].Len-1)>>clusterBits + 1
			j++
		}
		for c := first; c < end; {
			// A chunk stays within one L2 table's span.
			n := min(end-c, chunkClusters, (c/l2Entries+1)*l2Entries-c)
			chunk := buf[:n*ClusterSize]
			// Skip the ranges that end before the chunk.
			for i < j-1 && ranges[i].Off+ranges[i].Len <= c*ClusterSize {
				i++
			}
			if err := s.read(chunk, c*ClusterSize, ranges[i:j]); err != nil {
				return err
			}
			for k := range n {
				if err := s.cluster(c+k, chunk[k*ClusterSize:(k+1)*ClusterSize]); err != nil {
					return err
				}
			}
			c += n
			if err := s.ctx.Err(); err != nil {
				return err
			}
		}
		i = j
	}
	return s.endSpan()
}

// read fills chunk, the disk's bytes at off, from the parts of ranges in
// it, and zeros elsewhere.
func (s *stream) read(chunk []byte, off int64, ranges []Range) error {
	clear(chunk)
	end := off + int64(len(chunk))
	for _, rg := range ranges {
		a, b := max(rg.Off, off), min(rg.Off+rg.Len, end)
		if a >= end {
			break
		}
		if a >= b {
			continue
		}
		p := chunk[a-off : b-off]
		// ReadAt may report io.EOF along with the last bytes.
		if k, err := s.r.ReadAt(p, a); k < len(p) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("qcow2: read disk at %d: %w", a+int64(k), err)
		}
	}
	return nil
}

// cluster maps disk cluster c, whose bytes are p.
func (s *stream) cluster(c int64, p []byte) error {
	if span := c / l2Entries; s.l2 == nil || span != s.span {
		if err := s.endSpan(); err != nil {
			return err
		}
		s.l2, s.span = make([]byte, ClusterSize), span
	}
	var entry uint64
	switch {
	case !bytes.Equal(p, s.zero):
		off, err := s.append(p)
		if err != nil {
			return err
		}
		entry = uint64(off) | flagCopied
	case s.l.backing.File != "":
		// Zeros that must hide what the backing file holds there.
		entry = flagZero
	default:
		return nil // unallocated reads as zeros
	}
	binary.BigEndian.PutUint64(s.l2[(c%l2Entries)*8:], entry)
	return nil
}

// endSpan writes the L2 table of the span just done, unless it maps
// nothing.
func (s *stream) endSpan() error {
	if s.l2 == nil {
		return nil
	}
	l2 := s.l2
	s.l2 = nil
	if bytes.Equal(l2, s.zero) {
		return nil
	}
	off, err := s.append(l2)
	if err != nil {
		return err
	}
	s.l1[s.span] = uint64(off) | flagCopied
	return nil
}

// append allocates the next cluster for p and returns its offset. Clusters
// are batched into one write.
func (s *stream) append(p []byte) (int64, error) {
	if len(s.out) == cap(s.out) {
		if err := s.flush(); err != nil {
			return 0, err
		}
	}
	if len(s.out) == 0 {
		s.outOff = s.next
	}
	s.out = append(s.out, p...)
	off := s.next
	s.next += ClusterSize
	return off, nil
}

func (s *stream) flush() error {
	if len(s.out) == 0 {
		return nil
	}
	if _, err := s.w.WriteAt(s.out, s.outOff); err != nil {
		return fmt.Errorf("qcow2: write at %d: %w", s.outOff, err)
	}
	s.out = s.out[:0]
	return nil
}

// finish writes the refcount blocks after everything else, then the
// header, L1 table and refcount table at the front.
func (s *stream) finish() error {
	l := s.l
	used := s.next / ClusterSize
	blocks := refBlocks(used)
	total := used + blocks
	if blocks*8 > l.rtClusters*ClusterSize {
		return fmt.Errorf("qcow2: internal error: %d refcount blocks overflow a %d-cluster table", blocks, l.rtClusters)
	}
	rt := make([]byte, l.rtClusters*ClusterSize)
	block := make([]byte, ClusterSize)
	for i := range blocks {
		clear(block)
		for j := range min(total-i*refsPerBlock, refsPerBlock) {
			binary.BigEndian.PutUint16(block[j*2:], 1)
		}
		off, err := s.append(block)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint64(rt[i*8:], uint64(off))
	}
	if err := s.flush(); err != nil {
		return err
	}

	be := binary.BigEndian
	h := l.header
	be.PutUint64(h[24:], uint64(l.size))
	be.PutUint32(h[36:], uint32(l.l1Entries))
	if l.l1Entries > 0 {
		be.PutUint64(h[40:], ClusterSize)
	}
	be.PutUint64(h[48:], uint64((1+l.l1Clusters)*ClusterSize))
	be.PutUint32(h[56:], uint32(l.rtClusters))
	l1 := make([]byte, l.l1Clusters*ClusterSize)
	for i, e := range s.l1 {
		be.PutUint64(l1[i*8:], e)
	}
	front := slices.Concat(h, l1, rt)
	if _, err := s.w.WriteAt(front, 0); err != nil {
		return fmt.Errorf("qcow2: write the header: %w", err)
	}
	return nil
}
