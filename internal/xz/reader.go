// Package xz decodes the .xz format (LZMA2, with CRC32, CRC64, SHA-256 or
// no integrity check), independent blocks in parallel, and encodes it.
//
// Debian packages and kernels are compressed with multi-threaded xz, which
// cuts the data into blocks (24 MiB at the default level) and records each
// block's sizes in its header. Those blocks are read whole and decoded by
// several goroutines at once, each into a buffer of the block's size,
// while the output is handed out in order; a block without recorded sizes,
// or too large for the memory budget, is decoded as it streams, with a
// window of its dictionary size. Every block's check is verified, and the
// index and footer must agree with the blocks read.
//
// Writer encodes the same format as xz -T does at levels 5 to 9: LZMA2 with
// the optimal parser over a binary-tree match finder, in independent
// blocks of fixed size compressed in parallel, so that the bytes depend on
// the input and the options only.
package xz

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sync/semaphore"
)

// Options tunes NewReader. The zero value decodes with GOMAXPROCS
// goroutines and a 64 MiB budget.
type Options struct {
	// Workers is the number of blocks decoded at once.
	Workers int
	// MaxMemory bounds the compressed and decoded bytes of the blocks in
	// flight; a block needing more is decoded as it streams.
	MaxMemory int64
}

// Reader is a decoder of one .xz stream (or several concatenated).
type Reader struct {
	units  chan *unit
	cancel context.CancelFunc
	done   chan struct{}

	cur   *unit
	piece piece
	err   error
}

// unit is the output of one block, in pieces, in order.
type unit struct{ out chan piece }

type piece struct {
	b    []byte
	err  error
	free func()
}

type job struct {
	u    *unit
	bh   blockHeader
	data []byte // compressed data, padding and check
	need int64
	n    int // block number, for messages
}

// NewReader starts decoding r. It reads the stream header at once, so that
// input that is not xz fails here; everything else surfaces from Read.
// Close stops the goroutines when the stream is not read to its end.
func NewReader(r io.Reader, opts Options) (*Reader, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxMemory <= 0 {
		opts.MaxMemory = 64 << 20
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	p := &parser{r: br}
	flags, err := readStreamHeader(p)
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	checkID, err := streamFlags(flags)
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &Reader{units: make(chan *unit, opts.Workers), cancel: cancel, done: make(chan struct{})}
	d := &decoder{
		ctx:  ctx,
		p:    p,
		x:    x,
		opts: opts,
		sem:  semaphore.NewWeighted(opts.MaxMemory),
		jobs: make(chan job),
		bufs: make(chan []byte, opts.Workers+1),
	}
	for range opts.Workers {
		go d.worker()
	}
	go func() {
		defer close(x.done)
		defer close(d.jobs)
		err := d.run(flags, checkID)
		if err != nil {
			u := &unit{out: make(chan piece, 1)}
			u.out <- piece{err: fmt.Errorf("xz: %w", err)}
			close(u.out)
			select {
			case x.units <- u:
			case <-ctx.Done():
			}
		}
		close(x.units)
	}()
	return x, nil
}

// Read reads decoded bytes.
func (x *Reader) Read(b []byte) (int, error) {
	if len(x.piece.b) == 0 {
		if err := x.next(); err != nil {
			return 0, err
		}
	}
	n := copy(b, x.piece.b)
	x.piece.b = x.piece.b[n:]
	return n, nil
}

// WriteTo writes the decoded bytes to w, each block's as one piece:
// io.Copy then needs no buffer of its own.
func (x *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(x.piece.b) == 0 {
			if err := x.next(); err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
		}
		n, err := w.Write(x.piece.b)
		total += int64(n)
		x.piece.b = x.piece.b[n:]
		if err != nil {
			return total, err
		}
	}
}

// next releases the piece read out and waits for one with bytes in it.
func (x *Reader) next() error {
	if x.piece.free != nil {
		x.piece.free()
	}
	x.piece = piece{}
	for x.err == nil && len(x.piece.b) == 0 {
		if x.cur == nil {
			u, ok := <-x.units
			if !ok {
				x.err = io.EOF
				break
			}
			x.cur = u
		}
		pc, ok := <-x.cur.out
		switch {
		case !ok:
			x.cur = nil
		case pc.err != nil:
			x.err = pc.err
		case len(pc.b) == 0: // an empty block
			if pc.free != nil {
				pc.free()
			}
		default:
			x.piece = pc
		}
	}
	return x.err
}

// Close stops decoding. It does not close the underlying reader.
func (x *Reader) Close() error {
	x.cancel()
	// Drain, so that goroutines blocked on handing out output see the
	// cancellation and finish.
	if x.piece.free != nil {
		x.piece.free()
	}
	x.piece = piece{}
	if x.cur != nil {
		for pc := range x.cur.out {
			if pc.free != nil {
				pc.free()
			}
		}
		x.cur = nil
	}
	if x.err == nil {
		x.err = errors.New("xz: read after Close")
	}
	for u := range x.units {
		for pc := range u.out {
			if pc.free != nil {
				pc.free()
			}
		}
	}
	<-x.done
	return nil
}

// decoder is the goroutine that parses the container and dispatches
// blocks, and its workers.
type decoder struct {
	ctx  context.Context
	p    *parser
	x    *Reader
	opts Options
	sem  *semaphore.Weighted
	jobs chan job
	bufs chan []byte // decoded-block buffers for reuse
}

func (d *decoder) run(flags []byte, checkID byte) error {
	for stream := 1; ; stream++ {
		var blocks []record
		for n := 1; ; n++ {
			first, err := d.p.ReadByte()
			if err != nil {
				return noEOF(err)
			}
			if first == 0 {
				break // the index indicator
			}
			bh, err := readBlockHeader(d.p, first, checkID)
			if err != nil {
				return fmt.Errorf("block %d: %w", n, err)
			}
			rec, err := d.block(bh, n)
			if err != nil {
				return fmt.Errorf("block %d: %w", n, err)
			}
			blocks = append(blocks, rec)
		}
		if err := readIndex(d.p, blocks, flags); err != nil {
			return err
		}
		// Stream padding (zeros, a multiple of four bytes), then the end or
		// another stream.
		pad := 0
		for {
			b, err := d.p.r.Peek(1)
			if err == io.EOF && pad%4 == 0 {
				return nil
			}
			if err != nil {
				return noEOF(err)
			}
			if b[0] != 0 {
				break
			}
			d.p.ReadByte()
			pad++
		}
		if pad%4 != 0 {
			return errors.New("stream padding is not a multiple of four bytes")
		}
		var err error
		if flags, err = readStreamHeader(d.p); err != nil {
			return fmt.Errorf("stream %d: %w", stream+1, err)
		}
		if checkID, err = streamFlags(flags); err != nil {
			return fmt.Errorf("stream %d: %w", stream+1, err)
		}
	}
}

// block dispatches a block to the workers or, without recorded sizes or
// over the budget, decodes it here.
func (d *decoder) block(bh blockHeader, n int) (record, error) {
	u := &unit{out: make(chan piece, 1)}
	need := bh.packed + bh.unpacked
	if bh.packed < 0 || bh.unpacked < 0 || need > d.opts.MaxMemory {
		if err := d.send(u); err != nil {
			return record{}, err
		}
		return d.stream(bh, u)
	}
	if err := d.sem.Acquire(d.ctx, need); err != nil {
		return record{}, err
	}
	size := int(bh.packed) + bh.padding(bh.packed) + bh.checkLen
	data := make([]byte, size, size+slack)
	if _, err := io.ReadFull(d.p.r, data); err != nil {
		d.sem.Release(need)
		return record{}, noEOF(err)
	}
	d.p.n += int64(len(data))
	// The job first: from then on a worker closes u.out, whether or not
	// u reaches the reader.
	select {
	case d.jobs <- job{u: u, bh: bh, data: data, need: need, n: n}:
	case <-d.ctx.Done():
		d.sem.Release(need)
		return record{}, d.ctx.Err()
	}
	if err := d.send(u); err != nil {
		return record{}, err
	}
	return record{int64(bh.size) + bh.packed + int64(bh.checkLen), bh.unpacked}, nil
}

func (d *decoder) send(u *unit) error {
	select {
	case d.x.units <- u:
		return nil
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
}

func (d *decoder) worker() {
	for j := range d.jobs {
		out, err := d.decodeWhole(j)
		if err != nil {
			d.putBuf(out)
			d.sem.Release(j.need)
			j.u.out <- piece{err: fmt.Errorf("xz: block %d: %w", j.n, err)}
		} else {
			j.u.out <- piece{b: out, free: func() { d.putBuf(out); d.sem.Release(j.need) }}
		}
		close(j.u.out)
	}
}

// decodeWhole decodes a block read whole into a buffer of its size.
func (d *decoder) decodeWhole(j job) ([]byte, error) {
	out := d.getBuf(int(j.bh.unpacked))
	dec := newLZMA2(j.bh.dictSize)
	dec.w.buf = out
	src := &memSource{b: j.data[:j.bh.packed]}
	for {
		more, err := dec.chunk(src)
		if err != nil {
			return out, err
		}
		if !more {
			break
		}
	}
	if src.off != len(src.b) || dec.w.pos != len(out) {
		return out, fmt.Errorf("%w: the block's sizes differ from its header's", errCorrupt)
	}
	tail := j.data[j.bh.packed:]
	pad := tail[:len(tail)-j.bh.checkLen]
	for _, b := range pad {
		if b != 0 {
			return out, errors.New("nonzero block padding")
		}
	}
	if !bytes.Equal(sumCheck(j.bh.checkID, out), tail[len(pad):]) {
		return out, errors.New("check mismatch: the data is corrupt")
	}
	return out, nil
}

func (d *decoder) getBuf(n int) []byte {
	select {
	case b := <-d.bufs:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n)
}

func (d *decoder) putBuf(b []byte) {
	select {
	case d.bufs <- b:
	default:
	}
}

// stream decodes a block as it is read, handing out its output a chunk at
// a time.
func (d *decoder) stream(bh blockHeader, u *unit) (rec record, err error) {
	// On failure the unit just ends: the error follows it (see NewReader).
	defer close(u.out)
	start := d.p.n
	var total int64
	check := newCheck(bh.checkID)
	dec := newLZMA2(bh.dictSize)
	dec.w.flush = func(b []byte) error {
		total += int64(len(b))
		if check != nil {
			check.Write(b)
		}
		// The window's bytes are overwritten by the next chunk: hand out a
		// copy.
		select {
		case u.out <- piece{b: bytes.Clone(b)}:
			return nil
		case <-d.ctx.Done():
			return d.ctx.Err()
		}
	}
	for {
		more, err := dec.chunk(d.p)
		if err != nil {
			return record{}, err
		}
		if !more {
			break
		}
	}
	if err := dec.w.reset(); err != nil { // flushes the rest
		return record{}, err
	}
	packed := d.p.n - start
	if bh.packed >= 0 && packed != bh.packed || bh.unpacked >= 0 && total != bh.unpacked {
		return record{}, fmt.Errorf("%w: the block's sizes differ from its header's", errCorrupt)
	}
	tail, err := d.p.next(bh.padding(packed) + bh.checkLen)
	if err != nil {
		return record{}, noEOF(err)
	}
	pad := tail[:len(tail)-bh.checkLen]
	for _, b := range pad {
		if b != 0 {
			return record{}, errors.New("nonzero block padding")
		}
	}
	if !bytes.Equal(stored(bh.checkID, check), tail[len(pad):]) {
		return record{}, errors.New("check mismatch: the data is corrupt")
	}
	return record{int64(bh.size) + packed + int64(bh.checkLen), total}, nil
}
