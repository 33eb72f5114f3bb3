package ext4

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ocidisk/ocidisk/fstree"
)

// file copies a regular file's content into newly placed blocks, leaving
// blocks of zeros as holes, and maps them in in.
func (wr *writer) file(n *fstree.Node, in *inode, ino uint32) error {
	in.size = n.Size
	var ext extentList
	var blocks int64
	if n.Size > 0 {
		r, err := n.Content.Open()
		if err != nil {
			return fmt.Errorf("open content: %w", err)
		}
		defer r.Close()
		var lblk int64
		for left := n.Size; left > 0; {
			m := min(int64(len(wr.buf)), left)
			if _, err := io.ReadFull(r, wr.buf[:m]); err != nil {
				return fmt.Errorf("read content at %d of %d bytes: %w", n.Size-left, n.Size, err)
			}
			left -= m
			padded := roundUp(m, blockSize)
			clear(wr.buf[m:padded])
			chunk := wr.buf[:padded]
			nb := padded / blockSize
			for i := int64(0); i < nb; {
				if isZero(chunk[i*blockSize : (i+1)*blockSize]) {
					i++
					continue
				}
				j := i + 1
				for j < nb && !isZero(chunk[j*blockSize:(j+1)*blockSize]) {
					j++
				}
				for k := i; k < j; {
					s, got, err := wr.alloc(j - k)
					if err != nil {
						return err
					}
					ext.add(uint32(lblk+k), s, got)
					if err := wr.out.write(s, chunk[k*blockSize:(k+got)*blockSize]); err != nil {
						return err
					}
					k += got
				}
				blocks += j - i
				i = j
			}
			lblk += nb
			wr.done += m
			if wr.fs.opts.Progress != nil {
				wr.fs.opts.Progress(wr.done, wr.p.bytes)
			}
		}
		var one [1]byte
		if k, _ := r.Read(one[:]); k > 0 {
			return fmt.Errorf("content is longer than its size, %d bytes", n.Size)
		}
	}
	return wr.mapExtents(in, ino, ext, blocks)
}

var zeroBlock [blockSize]byte

// isZero reports whether p (at most a block) is all zero bytes;
// bytes.Equal compares with vector instructions.
func isZero(p []byte) bool { return bytes.Equal(p, zeroBlock[:len(p)]) }

// blockWriter gathers writes to consecutive blocks into one WriteAt:
// files are placed one after the other, so most writes join up. A full
// buffer is written by a goroutine while the writer fills another, so
// that the copy into the output (the kernel's, for a file) overlaps with
// reading the next content. Two writes may be in flight: into an image
// file the copy is the slower side (pages the kernel has not handed out
// before cost a fault each, in a VM), and once the layers are read the
// build has both cores for it. Every write goes to blocks the writer
// has just allocated, never to ones another write covers, so their order
// does not matter.
type blockWriter struct {
	w     io.WriterAt
	off   int64 // of block 0
	buf   []byte
	start int64 // block of buf[0]
	spare [][]byte
	// done returns each write's buffer and error; inflight counts the
	// writes not yet received from it.
	done     chan written
	inflight int
	err      error // the first write error
}

type written struct {
	buf []byte
	err error
}

const (
	writeBuffer   = 4 << 20
	writeInflight = 2
)

func newBlockWriter(w io.WriterAt, off int64) *blockWriter {
	b := &blockWriter{w: w, off: off, done: make(chan written, writeInflight)}
	for range writeInflight + 1 {
		b.spare = append(b.spare, make([]byte, 0, writeBuffer))
	}
	b.buf, b.spare = b.spare[0], b.spare[1:]
	return b
}

// write writes p (whole blocks) at block blk.
func (b *blockWriter) write(blk int64, p []byte) error {
	if len(b.buf) > 0 && blk*blockSize == b.start*blockSize+int64(len(b.buf)) && len(b.buf)+len(p) <= cap(b.buf) {
		b.buf = append(b.buf, p...)
		return nil
	}
	if err := b.flush(); err != nil {
		return err
	}
	if len(p) >= cap(b.buf) {
		if err := b.wait(); err != nil {
			return err
		}
		if _, err := b.w.WriteAt(p, b.off+blk*blockSize); err != nil {
			return fmt.Errorf("write block %d: %w", blk, err)
		}
		return nil
	}
	b.start = blk
	b.buf = append(b.buf, p...)
	return nil
}

// flush starts writing what the buffer holds, once a buffer is free,
// and goes on with that one.
func (b *blockWriter) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	if len(b.spare) == 0 {
		b.receive()
	}
	if b.err != nil {
		return b.err
	}
	buf, first := b.buf, b.start
	b.inflight++
	go func() {
		_, err := b.w.WriteAt(buf, b.off+first*blockSize)
		if err != nil {
			err = fmt.Errorf("write blocks %d-%d: %w", first, first+int64(len(buf))/blockSize-1, err)
		}
		b.done <- written{buf, err}
	}()
	b.buf, b.spare = b.spare[0][:0], b.spare[1:]
	return nil
}

// receive waits for one write in flight and takes its buffer back.
func (b *blockWriter) receive() {
	w := <-b.done
	b.inflight--
	b.spare = append(b.spare, w.buf)
	if b.err == nil {
		b.err = w.err
	}
}

// wait waits for the writes in flight and returns the first error.
func (b *blockWriter) wait() error {
	for b.inflight > 0 {
		b.receive()
	}
	return b.err
}

// sync writes everything out and returns once it is written: before a
// write that bypasses the buffer, and at the end.
func (b *blockWriter) sync() error {
	if err := b.flush(); err != nil {
		return err
	}
	return b.wait()
}
