package squashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ocidisk/ocidisk/fstree"
)

// Bit 24 of a data block's or fragment's size says it is stored as it is.
const blockRaw = 1 << 24

// fileData is where a regular file's content went: its blocks and its
// tail in a fragment.
type fileData struct {
	ino     uint32
	start   uint64   // position of the first block in the filesystem
	sizes   []uint32 // per full block: its size on disk, 0 for a hole
	frag    uint32   // fragment holding the tail, or noIndex
	fragOff uint32
	sparse  uint64 // bytes of holes
}

type fragEntry struct {
	start uint64
	size  uint32
}

// block is one unit of work for the compressors: a file's full data
// block, or a fragment block of packed tails.
type block struct {
	in   []byte // the data, len(in) bytes of a buffer of the block size
	out  []byte // its compressed form, when smaller
	raw  bool
	hole bool
	err  error
	done chan struct{}

	file *fileData // a data block of file at index idx; nil for a fragment
	idx  int
}

// pipeline compresses blocks on several goroutines and writes them in the
// order they were submitted, so that each file's blocks stay together and
// the output is the same however the work is scheduled.
type pipeline struct {
	wr    *writer
	free  chan *block
	work  chan *block
	order chan *block
	wg    sync.WaitGroup // the compressors
	wdone chan struct{}  // closed when the writer has finished
	fail  atomic.Bool
	err   error // the writer's first error; read after wdone
	zero  []byte
}

func (wr *writer) newPipeline() *pipeline {
	workers := wr.f.opts.Workers
	if workers <= 0 {
		workers = wr.cpus
	}
	// Enough blocks in flight to keep every compressor busy while the
	// writer waits for the oldest one.
	inflight := 4*workers + 2
	pl := &pipeline{
		wr:    wr,
		free:  make(chan *block, inflight),
		work:  make(chan *block, inflight),
		order: make(chan *block, inflight),
		wdone: make(chan struct{}),
		zero:  make([]byte, wr.bs),
	}
	for range inflight {
		pl.free <- &block{in: make([]byte, 0, wr.bs), out: make([]byte, 0, wr.bs)}
	}
	for i := range workers {
		c := wr.codec.new()
		if i == 0 {
			wr.mc = c // for the metadata, after the data
		}
		pl.wg.Add(1)
		go pl.compress(c)
	}
	go pl.write()
	return pl
}

func (pl *pipeline) compress(c compressor) {
	defer pl.wg.Done()
	for b := range pl.work {
		b.raw, b.hole, b.out = false, false, b.out[:0]
		switch {
		case b.file != nil && bytes.Equal(b.in, pl.zero[:len(b.in)]):
			b.hole = true
		default:
			out, err := c.compress(b.in)
			switch {
			case err != nil:
				b.err = err
			case out == nil:
				b.raw = true
			default:
				b.out = append(b.out, out...)
			}
		}
		close(b.done)
	}
}

// write puts blocks into the filesystem in submission order and records
// where they went.
func (pl *pipeline) write() {
	defer close(pl.wdone)
	out := pl.wr.out
	for b := range pl.order {
		<-b.done
		if pl.err == nil {
			pl.err = pl.place(out, b)
			if pl.err != nil {
				pl.fail.Store(true)
			}
		}
		b.file, b.in = nil, b.in[:0]
		pl.free <- b
	}
}

func (pl *pipeline) place(out *sink, b *block) error {
	if b.err != nil {
		return fmt.Errorf("compress: %w", b.err)
	}
	pos := uint64(out.pos)
	data, size := b.out, uint32(len(b.out))
	switch {
	case b.hole:
		data, size = nil, 0
	case b.raw:
		data, size = b.in, uint32(len(b.in))|blockRaw
	}
	if b.file != nil {
		if b.idx == 0 {
			b.file.start = pos
		}
		b.file.sizes[b.idx] = size
		if b.hole {
			b.file.sparse += uint64(len(b.in))
		}
	} else {
		pl.wr.frags = append(pl.wr.frags, fragEntry{start: pos, size: size})
	}
	return out.write(data)
}

func (pl *pipeline) submit(b *block) error {
	if pl.fail.Load() {
		return errStopped
	}
	b.done, b.err = make(chan struct{}), nil
	pl.work <- b
	pl.order <- b
	return nil
}

var errStopped = errors.New("stopped")

// finish waits for every submitted block to be written.
func (pl *pipeline) finish() error {
	close(pl.work)
	close(pl.order)
	pl.wg.Wait()
	<-pl.wdone
	return pl.err
}

// data compresses every regular file's content, in inode order, into data
// blocks and fragments.
func (wr *writer) data() error {
	pl := wr.newPipeline()
	err := wr.feed(pl)
	if ferr := pl.finish(); ferr != nil {
		return ferr
	}
	return err
}

func (wr *writer) feed(pl *pipeline) error {
	var frag *block // the fragment block being filled
	nfrags := uint32(0)
	var done int64
	for i := range wr.p.files {
		fd := &wr.p.files[i]
		n := wr.p.inodes[fd.ino-1].n
		if n.Size == 0 {
			continue
		}
		tail := int(n.Size % int64(wr.bs))
		nblocks := n.Size / int64(wr.bs)
		fd.sizes = make([]uint32, nblocks)
		r, err := n.Content.Open()
		if err != nil {
			return fmt.Errorf("%s: open content: %w", wr.path(fd.ino), err)
		}
		for k := range nblocks {
			b := <-pl.free
			b.in = b.in[:wr.bs]
			if _, err := io.ReadFull(r, b.in); err != nil {
				pl.free <- b
				r.Close()
				return fmt.Errorf("%s: read content at %d of %d bytes: %w", wr.path(fd.ino), k*int64(wr.bs), n.Size, err)
			}
			b.file, b.idx = fd, int(k)
			if err := pl.submit(b); err != nil {
				r.Close()
				return err
			}
			done += int64(wr.bs)
			wr.progress(done)
		}
		if tail > 0 {
			if frag != nil && len(frag.in)+tail > wr.bs {
				if err := pl.submit(frag); err != nil {
					r.Close()
					return err
				}
				frag = nil
				nfrags++
			}
			if frag == nil {
				frag = <-pl.free
			}
			fd.frag, fd.fragOff = nfrags, uint32(len(frag.in))
			at := len(frag.in)
			frag.in = frag.in[:at+tail]
			if _, err := io.ReadFull(r, frag.in[at:]); err != nil {
				r.Close()
				return fmt.Errorf("%s: read content at %d of %d bytes: %w", wr.path(fd.ino), nblocks*int64(wr.bs), n.Size, err)
			}
			done += int64(tail)
			wr.progress(done)
		}
		var one [1]byte
		k, _ := r.Read(one[:])
		r.Close()
		if k > 0 {
			return fmt.Errorf("%s: content is longer than its size, %d bytes", wr.path(fd.ino), n.Size)
		}
	}
	if frag != nil {
		return pl.submit(frag)
	}
	return nil
}

func (wr *writer) progress(done int64) {
	if wr.f.opts.Progress != nil {
		wr.f.opts.Progress(done, wr.p.bytes)
	}
}

// path names inode ino for an error: its first name, found by a walk,
// since errors are rare and the writer keeps no paths.
func (wr *writer) path(ino uint32) string {
	target := wr.p.inodes[ino-1].n
	found := "?"
	_ = wr.f.tree.Walk(func(p string, n *fstree.Node) error {
		if n == target {
			found = "/" + p
			return errFound
		}
		return nil
	})
	return found
}

var errFound = errors.New("found")
