package xz

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"runtime"
	"sync"
)

// WriterOptions tunes NewWriter. The zero value compresses as xz -6 does,
// in blocks of DefaultBlockSize, with GOMAXPROCS goroutines.
type WriterOptions struct {
	// Workers is the number of blocks compressed at once.
	Workers int
	// BlockSize is the input each block holds, at most MaxBlockSize.
	BlockSize int
	// Preset is xz's compression level, 5 to 9 (-5 to -9: the levels
	// that use the optimal parser and the binary-tree match finder); 0
	// means 6.
	Preset int
}

const (
	// DefaultBlockSize is the block size of xz -T at level 6: three
	// times the dictionary. Smaller blocks lose ratio; larger ones
	// leave cores idle on all but large inputs.
	DefaultBlockSize = 24 << 20
	// MaxBlockSize bounds BlockSize: positions in a block are 32-bit.
	MaxBlockSize = 1 << 30
)

// presetConfig returns the encoder settings of xz's level preset (liblzma's
// lzma_lzma_preset): lc=3 lp=0 pb=2, a binary-tree match finder of depth
// 16 + niceLen/2.
func presetConfig(preset int) (encoderConfig, error) {
	c := encoderConfig{lc: 3, lp: 0, pb: 2, niceLen: 64}
	switch preset {
	case 5:
		c.dictSize, c.niceLen = 8<<20, 32
	case 6:
		c.dictSize = 8 << 20
	case 7:
		c.dictSize = 16 << 20
	case 8:
		c.dictSize = 32 << 20
	case 9:
		c.dictSize = 64 << 20
	default:
		return c, fmt.Errorf("xz: preset %d: want 5 to 9", preset)
	}
	c.depth = 16 + c.niceLen/2
	return c, nil
}

// Writer compresses to .xz: a stream of independent blocks, each with
// both of its sizes in its header (as xz -T writes them, so that decoders
// can decode them in parallel), with a CRC64 check. Blocks are compressed
// in parallel and written in order; the output depends on the input and
// the options, never on the number of workers.
type Writer struct {
	w         io.Writer
	cfg       encoderConfig
	blockSize int

	buf   []byte
	queue chan *blockJob // in input order, to the output goroutine
	jobs  chan *blockJob // to the workers
	free  chan []byte    // input buffers to reuse
	done  chan struct{}  // the output goroutine has ended

	mu     sync.Mutex
	err    error // the first error writing out
	closed bool
}

type blockJob struct {
	in   []byte
	out  []byte // the block: header, data, padding, check
	rec  record
	done chan struct{}
}

// NewWriter returns a Writer compressing into w. Close writes the end of
// the stream; it does not close w. Memory is about Workers+2 times the
// block size for input and output, plus about 90 MiB per worker for the
// match finder at level 6.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	if opts.Preset == 0 {
		opts.Preset = 6
	}
	cfg, err := presetConfig(opts.Preset)
	if err != nil {
		return nil, err
	}
	if opts.BlockSize == 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.BlockSize < 0 || opts.BlockSize > MaxBlockSize {
		return nil, fmt.Errorf("xz: block size %d: want 1 to %d", opts.BlockSize, MaxBlockSize)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	x := &Writer{
		w:         w,
		cfg:       cfg,
		blockSize: opts.BlockSize,
		queue:     make(chan *blockJob, opts.Workers),
		jobs:      make(chan *blockJob),
		free:      make(chan []byte, opts.Workers+2),
		done:      make(chan struct{}),
	}
	for range opts.Workers {
		go x.worker()
	}
	go x.output()
	return x, nil
}

// Write compresses p.
func (x *Writer) Write(p []byte) (int, error) {
	if err := x.failed(); err != nil {
		return 0, err
	}
	if x.closed {
		return 0, errors.New("xz: write after Close")
	}
	n := len(p)
	for len(p) > 0 {
		if x.buf == nil {
			select {
			case b := <-x.free:
				x.buf = b[:0]
			default:
				x.buf = make([]byte, 0, x.blockSize)
				hugePages(x.buf[:cap(x.buf)])
			}
		}
		k := copy(x.buf[len(x.buf):cap(x.buf)], p)
		x.buf = x.buf[:len(x.buf)+k]
		p = p[k:]
		if len(x.buf) == cap(x.buf) {
			x.submit()
		}
	}
	return n, nil
}

func (x *Writer) failed() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

func (x *Writer) submit() {
	j := &blockJob{in: x.buf, done: make(chan struct{})}
	x.buf = nil
	x.queue <- j
	x.jobs <- j
}

// Close compresses what is left and writes the index and the stream
// footer.
func (x *Writer) Close() error {
	if x.closed {
		return x.failed()
	}
	x.closed = true
	if len(x.buf) > 0 {
		x.submit()
	}
	close(x.queue)
	close(x.jobs)
	<-x.done
	return x.failed()
}

func (x *Writer) worker() {
	var enc *lzmaEncoder
	for j := range x.jobs {
		if enc == nil || !enc.fits(x.cfg, len(j.in)) {
			enc = nil // the old one's memory can go first
			enc = newLZMAEncoder(x.cfg, len(j.in))
		}
		j.out, j.rec = enc.block(j.in, dictProp(x.cfg.dictSize))
		close(j.done)
	}
}

// output writes the stream header, the blocks in order as they are done,
// then the index and footer.
func (x *Writer) output() {
	defer close(x.done)
	var blocks []record
	write := func(b []byte) {
		if x.failed() != nil {
			return
		}
		if _, err := x.w.Write(b); err != nil {
			x.mu.Lock()
			x.err = fmt.Errorf("xz: %w", err)
			x.mu.Unlock()
		}
	}
	write(appendStreamHeader(nil, checkCRC64))
	for j := range x.queue {
		<-j.done
		write(j.out)
		blocks = append(blocks, j.rec)
		select {
		case x.free <- j.in:
		default:
		}
	}
	write(appendIndex(nil, blocks, checkCRC64))
}

// fits reports whether e is the encoder for blocks of n bytes.
func (e *lzmaEncoder) fits(c encoderConfig, n int) bool {
	return e.mf.cyc == uint32(min(c.dictSize, n)+1)
}

// block compresses one block and returns it whole, with its index record.
func (e *lzmaEncoder) block(in []byte, dictProp byte) ([]byte, record) {
	// The data goes after room for the header, which is written once
	// the compressed size is known, right before it.
	out := make([]byte, blockHeaderMax, blockHeaderMax+len(in)+len(in)/(1<<16)*3+64)
	out = e.encodeBlock(in, out)
	packed := len(out) - blockHeaderMax
	hdr := appendBlockHeader(nil, int64(packed), int64(len(in)), dictProp)
	start := blockHeaderMax - len(hdr)
	copy(out[start:], hdr)
	for (len(out)-start)%4 != 0 {
		out = append(out, 0)
	}
	out = binary.LittleEndian.AppendUint64(out, crc64.Checksum(in, crc64Table))
	return out[start:], record{unpadded: int64(len(hdr) + packed + 8), unpacked: int64(len(in))}
}
