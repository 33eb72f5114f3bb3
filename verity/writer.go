package verity

import (
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ocidisk/ocidisk/verity/layout"
)

// Options are a tree's parameters beyond its data.
type Options struct {
	// Salt is hashed in front of every block (at most MaxSaltSize bytes;
	// may be empty). A build derives it from its inputs, so that the
	// same inputs give the same tree.
	Salt []byte
	// UUID is the superblock's; zero derives it from the root hash.
	UUID [16]byte
	// NoSuperblock writes the tree alone (veritysetup's --no-superblock).
	NoSuperblock bool
}

// States of a data block in a Writer.
const (
	// blockZero: never written, or declared zero whole while it was: it
	// reads as zeros and no digest of it is being computed.
	blockZero = iota
	// blockHashed: written whole once; its digest is computed, or being.
	blockHashed
	// blockReread: written in part, or more than once: Finish reads it
	// back.
	blockReread
	// blockExpected: not written yet, its digest given by Expect: taken
	// when the block is written whole, once.
	blockExpected
)

// maxJob is the most data one hashing goroutine takes: 1 MiB.
const maxJob = 1 << 20

// Writer is the io.WriterAt a filesystem writer writes through when its
// filesystem gets a hash tree. It passes every write on to its target
// and hashes, in the background on the other cores, the data blocks a
// write covers whole, keeping their digests (32 bytes a block, the tree's
// bottom level). A block written in part or more than once is remembered
// and read back by Finish: its content is only known in the end. Blocks
// never written are zeros: the target must read as zeros where nothing
// was written, as a fresh image file does.
//
// Writer has ZeroAt, as diskimage.ZeroWriterAt describes: it passes it to
// the target's own ZeroAt when the target has one, and writes zeros
// otherwise. WriteAt and ZeroAt may be called concurrently for ranges
// that do not overlap, as io.WriterAt allows.
type Writer struct {
	w          io.WriterAt
	z          func(off, n int64) error // the target's ZeroAt, nil to write zeros
	base, size int64
	opts       Options

	// Hashing runs in at most cap(sem) goroutines, each on a copy of the
	// data it hashes (a writer may reuse its buffer once WriteAt
	// returns), so that memory stays bounded: a write waits for a free
	// slot. Blocks are gathered into jobs of up to maxJob bytes, so that
	// the metadata blocks a filesystem writes one at a time between data
	// hashed ahead (Expect) do not each cost a goroutine.
	sem     chan struct{}
	running sync.WaitGroup
	bufs    sync.Pool // *[maxJob]byte
	hashers sync.Pool // *hasher
	jobMu   sync.Mutex
	job     *job // being gathered

	mu      sync.Mutex
	state   []byte // per block
	digests []byte // DigestSize per block, valid where state is blockHashed or blockExpected
	// expected counts the blocks whose digest Expect gave and a write
	// confirmed: hashed by the caller, not here.
	expected int64
}

// NewWriter returns a Writer over the data area of size bytes (a multiple
// of BlockSize) at off of w. Writes outside it are errors.
func NewWriter(w io.WriterAt, off, size int64, opts Options) (*Writer, error) {
	if size <= 0 || size%BlockSize != 0 {
		return nil, fmt.Errorf("verity: data area of %d bytes: want a positive multiple of %d", size, BlockSize)
	}
	if size/BlockSize > layout.MaxDataBlocks || off < 0 {
		return nil, fmt.Errorf("verity: data area of %d bytes at %d is out of range", size, off)
	}
	if len(opts.Salt) > MaxSaltSize {
		return nil, fmt.Errorf("verity: salt of %d bytes: at most %d", len(opts.Salt), MaxSaltSize)
	}
	n := size / BlockSize
	v := &Writer{w: w, base: off, size: size, opts: opts,
		sem:   make(chan struct{}, runtime.GOMAXPROCS(0)),
		state: make([]byte, n), digests: make([]byte, n*DigestSize)}
	if z, ok := w.(interface{ ZeroAt(off, n int64) error }); ok {
		v.z = z.ZeroAt
	}
	v.bufs.New = func() any { return new([maxJob]byte) }
	v.hashers.New = func() any { return newHasher(opts.Salt) }
	return v, nil
}

func (v *Writer) check(off, n int64) error {
	if off < v.base || n < 0 || off+n > v.base+v.size {
		return fmt.Errorf("verity: write at bytes %d-%d: outside the data area %d-%d", off, off+n-1, v.base, v.base+v.size-1)
	}
	return nil
}

// span returns the blocks [first, end) that bytes [off, off+n) touch and
// the blocks [whole, wholeEnd) among them they cover whole.
func (v *Writer) span(off, n int64) (first, end, whole, wholeEnd int64) {
	rel := off - v.base
	first, end = rel/BlockSize, (rel+n+BlockSize-1)/BlockSize
	whole, wholeEnd = (rel+BlockSize-1)/BlockSize, (rel+n)/BlockSize
	if wholeEnd < whole {
		wholeEnd = whole
	}
	return
}

// WriteAt writes p at off of the target and has the blocks it covers
// whole for the first time hashed.
func (v *Writer) WriteAt(p []byte, off int64) (int, error) {
	if err := v.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	k, err := v.w.WriteAt(p, off)
	if len(p) == 0 {
		return k, err
	}
	first, end, whole, wholeEnd := v.span(off, int64(len(p)))
	if err != nil {
		// What the target holds now is unknown: read it back, should the
		// caller go on.
		v.mark(first, end, -1, -1, false)
		return k, err
	}
	fresh := v.mark(first, end, whole, wholeEnd, false)
	// Hash the runs of blocks written whole for the first time.
	skip := whole*BlockSize - (off - v.base)
	for i := 0; i < len(fresh); {
		j := i + 1
		for j < len(fresh) && fresh[j] == fresh[j-1]+1 {
			j++
		}
		b := fresh[i]
		from := skip + (b-whole)*BlockSize
		v.hash(b, p[from:from+int64(j-i)*BlockSize])
		i = j
	}
	return k, nil
}

// Expect gives the digests (DigestSize bytes each, as a Hasher computes
// them with the Writer's salt) of the whole blocks from off on, before
// they are written: when such a block is then written whole, once, its
// digest is taken from here and the block is not hashed again. A writer
// that knows its data ahead (a file's content, hashed while the build
// waited on something else) so moves the hashing off the write. A block
// written already, written in part or never written is hashed from what
// the target holds, as without Expect; a digest that is not that of the
// bytes written makes a wrong tree, which is why only the writer that
// writes those bytes may give it.
func (v *Writer) Expect(off int64, digests []byte) error {
	n := int64(len(digests)) / DigestSize
	if int64(len(digests)) != n*DigestSize || (off-v.base)%BlockSize != 0 {
		return fmt.Errorf("verity: %d bytes of digests at %d: want whole digests of whole blocks", len(digests), off)
	}
	if err := v.check(off, n*BlockSize); err != nil {
		return err
	}
	first := (off - v.base) / BlockSize
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := range n {
		if b := first + i; v.state[b] == blockZero {
			v.state[b] = blockExpected
			copy(v.digests[b*DigestSize:(b+1)*DigestSize], digests[i*DigestSize:])
		}
	}
	return nil
}

// job is data blocks to hash: blocks[i] is in buf[i*BlockSize:].
type job struct {
	buf    *[maxJob]byte
	blocks []int64
}

// hash copies data, whole blocks from block first on, into the job being
// gathered, and has each job that fills hashed.
func (v *Writer) hash(first int64, data []byte) {
	v.jobMu.Lock()
	defer v.jobMu.Unlock()
	for i := int64(0); i < int64(len(data))/BlockSize; i++ {
		if v.job == nil {
			v.job = &job{buf: v.bufs.Get().(*[maxJob]byte), blocks: make([]int64, 0, maxJob/BlockSize)}
		}
		j := v.job
		copy(j.buf[len(j.blocks)*BlockSize:], data[i*BlockSize:(i+1)*BlockSize])
		j.blocks = append(j.blocks, first+i)
		if len(j.blocks) == cap(j.blocks) {
			v.dispatch()
		}
	}
}

// dispatch hashes the job gathered, if any, in a goroutine of its own
// once a slot is free. v.jobMu is held.
func (v *Writer) dispatch() {
	j := v.job
	if j == nil {
		return
	}
	v.job = nil
	v.sem <- struct{}{}
	v.running.Add(1)
	go func() {
		s := v.hashers.Get().(*hasher)
		sums := s.sums(make([]byte, 0, len(j.blocks)*DigestSize), j.buf[:len(j.blocks)*BlockSize])
		for i, b := range j.blocks {
			copy(v.digests[b*DigestSize:(b+1)*DigestSize], sums[i*DigestSize:])
		}
		v.hashers.Put(s)
		v.bufs.Put(j.buf)
		<-v.sem
		v.running.Done()
	}()
}

// ZeroAt makes bytes [off, off+n) read as zeros: through the target's
// ZeroAt when it has one, else by writing zeros.
func (v *Writer) ZeroAt(off, n int64) error {
	if err := v.check(off, n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	first, end, whole, wholeEnd := v.span(off, n)
	var err error
	if v.z != nil {
		err = v.z(off, n)
	} else {
		zeros := make([]byte, min(n, 1<<20))
		for done := int64(0); done < n && err == nil; {
			k := min(int64(len(zeros)), n-done)
			_, err = v.w.WriteAt(zeros[:k], off+done)
			done += k
		}
	}
	if err != nil {
		v.mark(first, end, -1, -1, true)
		return err
	}
	v.mark(first, end, whole, wholeEnd, true)
	return nil
}

// mark records a write (or a ZeroAt) of blocks [first, end), covering
// [whole, wholeEnd) whole, and returns the blocks written whole for the
// first time: those to hash. A block written before, or in part, is read
// back in the end; a block never written and zeroed whole stays a zero
// block; a block Expect gave the digest of keeps it when written whole
// (and is not returned). No block is hashed twice, so that no stale digest can land
// after a newer one.
func (v *Writer) mark(first, end, whole, wholeEnd int64, zero bool) (fresh []int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for b := first; b < end; b++ {
		part := b < whole || b >= wholeEnd
		switch {
		case v.state[b] == blockExpected && !part:
			if zero {
				v.state[b] = blockZero
			} else {
				v.state[b] = blockHashed
				v.expected++
			}
		case part || v.state[b] != blockZero:
			v.state[b] = blockReread
		case !zero:
			v.state[b] = blockHashed
			fresh = append(fresh, b)
		}
	}
	return fresh
}

// Finish completes the tree: it reads back from r (the target, read in
// the same offsets) the blocks written in part, takes the digest of a zero
// block for blocks never written, computes the levels above and writes the
// superblock and tree at off of w. The returned Tree has HashOffset off:
// when w is an image holding the hash device as a partition, the offset
// on the device is off minus the partition's start. The Writer must not
// be written to after Finish.
func (v *Writer) Finish(r io.ReaderAt, w io.WriterAt, off int64) (*Tree, error) {
	t := &Tree{DataBlocks: uint64(len(v.state)), Salt: v.opts.Salt, UUID: v.opts.UUID, HashOffset: off, NoSuperblock: v.opts.NoSuperblock}
	if err := t.Check(); err != nil {
		return nil, err
	}
	v.jobMu.Lock()
	v.dispatch()
	v.jobMu.Unlock()
	v.running.Wait()
	v.mu.Lock()
	defer v.mu.Unlock()
	var zero []byte
	var reread []run
	for b, st := range v.state {
		switch st {
		case blockZero:
			if zero == nil {
				zero = newHasher(v.opts.Salt).sum(nil, make([]byte, BlockSize))
			}
			copy(v.digests[b*DigestSize:], zero)
		case blockReread, blockExpected: // expected but never written: what is there counts
			reread = addRun(reread, int64(b))
		}
	}
	if len(reread) > 0 {
		if r == nil {
			return nil, fmt.Errorf("verity: blocks from %d on were written in part, and there is nothing to read them back from", reread[0].first)
		}
		if err := v.hashFrom(r, reread); err != nil {
			return nil, err
		}
	}
	levels, root := tree(t, v.digests)
	t.RootHash = root
	if t.UUID == ([16]byte{}) {
		t.UUID = uuidFrom(root)
	}
	if err := write(t, w, levels); err != nil {
		return nil, err
	}
	return t, nil
}

// run is data blocks [first, first+n).
type run struct{ first, n int64 }

// maxRun is the most blocks hashFrom reads at once: 1 MiB.
const maxRun = 256

// addRun adds block b, higher than any in runs, to runs of at most
// maxRun blocks.
func addRun(runs []run, b int64) []run {
	if k := len(runs) - 1; k >= 0 && runs[k].first+runs[k].n == b && runs[k].n < maxRun {
		runs[k].n++
		return runs
	}
	return append(runs, run{b, 1})
}

// allRuns covers blocks [0, n) in runs of maxRun.
func allRuns(n int64) []run {
	runs := make([]run, 0, (n+maxRun-1)/maxRun)
	for b := int64(0); b < n; b += maxRun {
		runs = append(runs, run{b, min(maxRun, n-b)})
	}
	return runs
}

// hashFrom reads the runs of blocks from r and puts their digests in
// v.digests, on all cores.
func (v *Writer) hashFrom(r io.ReaderAt, runs []run) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for range min(runtime.GOMAXPROCS(0), len(runs)) {
		wg.Go(func() {
			s := newHasher(v.opts.Salt)
			buf := make([]byte, maxRun*BlockSize)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(runs) {
					return
				}
				ru := runs[i]
				b := buf[:ru.n*BlockSize]
				off := v.base + ru.first*BlockSize
				if k, err := r.ReadAt(b, off); k < len(b) {
					if err == nil || err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					errs[i] = fmt.Errorf("verity: read data blocks %d-%d at %d: %w", ru.first, ru.first+ru.n-1, off, err)
					continue
				}
				d := ru.first * DigestSize
				s.sums(v.digests[d:d], b)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Build makes the tree of the data area of size bytes (a multiple of
// BlockSize) at off of r, which already holds the data, and writes it at
// hashOff of w, as `veritysetup format` does.
func Build(r io.ReaderAt, off, size int64, w io.WriterAt, hashOff int64, opts Options) (*Tree, error) {
	v, err := NewWriter(nil, off, size, opts)
	if err != nil {
		return nil, err
	}
	if err := v.hashFrom(r, allRuns(size/BlockSize)); err != nil {
		return nil, err
	}
	for i := range v.state {
		v.state[i] = blockHashed
	}
	return v.Finish(nil, w, hashOff)
}
