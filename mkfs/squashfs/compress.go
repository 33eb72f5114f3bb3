package squashfs

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// Compressor ids as the superblock stores them.
const (
	compGzip = 1
	compXZ   = 4
	compLZ4  = 5
	compZstd = 6
)

// compressor compresses one data or metadata block. Each goroutine owns
// one: implementations keep scratch state between calls.
type compressor interface {
	// compress returns src compressed, in a buffer that stays valid until
	// the next call, or nil when compression does not make src smaller
	// (the block is then stored as it is).
	compress(src []byte) ([]byte, error)
}

// codec is a compression method: its id, the compressor options the
// superblock's options block carries (nil for none), and a maker of
// compressors.
type codec struct {
	name    string
	id      uint16
	options []byte
	new     func() compressor
}

// newCodec resolves Options.Compression and Options.Level for a block
// size. Every method's output stays within what Linux's decompressors
// for squashfs accept: zstd frames and xz dictionaries no bigger than
// the block size (their window is preallocated to it), xz with CRC32.
func newCodec(name string, level, blockSize int) (*codec, error) {
	window := max(blockSize, metaSize)
	switch name {
	case "", "zstd":
		if level == 0 {
			level = 15 // mksquashfs's default
		}
		if level < 1 || level > 22 {
			return nil, fmt.Errorf("zstd level %d: want 1 to 22", level)
		}
		opts := []zstd.EOption{
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithWindowSize(window),
			zstd.WithEncoderCRC(false),
			// One encoder per compressor: the writer runs one
			// compressor per goroutine.
			zstd.WithEncoderConcurrency(1),
		}
		if _, err := zstd.NewWriter(nil, opts...); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return &codec{name: "zstd", id: compZstd, new: func() compressor {
			e, _ := zstd.NewWriter(nil, opts...) // the options were checked above
			return &zstdComp{enc: e}
		}}, nil
	case "gzip":
		if level == 0 {
			level = 9 // mksquashfs's default
		}
		if level < 1 || level > 9 {
			return nil, fmt.Errorf("gzip level %d: want 1 to 9", level)
		}
		return &codec{name: "gzip", id: compGzip, new: func() compressor { return &zlibComp{level: level} }}, nil
	case "xz":
		if level != 0 {
			return nil, fmt.Errorf("xz level %d: xz takes no level", level)
		}
		cfg := xz.WriterConfig{DictCap: window, CheckSum: xz.CRC32}
		if err := cfg.Verify(); err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return &codec{name: "xz", id: compXZ, new: func() compressor { return &xzComp{cfg: cfg} }}, nil
	case "lz4":
		if level < 0 || level > 9 {
			return nil, fmt.Errorf("lz4 level %d: want 0 (fast) or 1 to 9 (high compression)", level)
		}
		// The kernel refuses lz4 without options: version 1 (the
		// "legacy" block format), and flag 1 for high compression.
		opts := binary.LittleEndian.AppendUint32(nil, 1)
		var flags uint32
		if level > 0 {
			flags = 1
		}
		opts = binary.LittleEndian.AppendUint32(opts, flags)
		return &codec{name: "lz4", id: compLZ4, options: opts, new: func() compressor { return &lz4Comp{level: level} }}, nil
	}
	return nil, fmt.Errorf("compression %q: want zstd, xz, gzip or lz4", name)
}

type zstdComp struct {
	enc *zstd.Encoder
	out []byte
}

func (c *zstdComp) compress(src []byte) ([]byte, error) {
	c.out = c.enc.EncodeAll(src, c.out[:0])
	if len(c.out) >= len(src) {
		return nil, nil
	}
	return c.out, nil
}

// zlibComp writes zlib streams, which is what squashfs calls gzip.
type zlibComp struct {
	level int
	w     *zlib.Writer
	out   bytes.Buffer
}

func (c *zlibComp) compress(src []byte) ([]byte, error) {
	c.out.Reset()
	if c.w == nil {
		w, err := zlib.NewWriterLevel(&c.out, c.level)
		if err != nil {
			return nil, err
		}
		c.w = w
	} else {
		c.w.Reset(&c.out)
	}
	if _, err := c.w.Write(src); err != nil {
		return nil, err
	}
	if err := c.w.Close(); err != nil {
		return nil, err
	}
	if c.out.Len() >= len(src) {
		return nil, nil
	}
	return c.out.Bytes(), nil
}

type xzComp struct {
	cfg xz.WriterConfig
	out bytes.Buffer
}

func (c *xzComp) compress(src []byte) ([]byte, error) {
	c.out.Reset()
	w, err := c.cfg.NewWriter(&c.out)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if c.out.Len() >= len(src) {
		return nil, nil
	}
	return c.out.Bytes(), nil
}

type lz4Comp struct {
	level int
	fast  lz4.Compressor
	hc    lz4.CompressorHC
	out   []byte
}

func (c *lz4Comp) compress(src []byte) ([]byte, error) {
	// A destination one byte short of the input makes lz4 give up (0)
	// on incompressible data instead of expanding it.
	if cap(c.out) < len(src) {
		c.out = make([]byte, len(src))
	}
	dst := c.out[:len(src)-1]
	var n int
	var err error
	if c.level == 0 {
		n, err = c.fast.CompressBlock(src, dst)
	} else {
		c.hc.Level = lz4.CompressionLevel(1 << (8 + c.level))
		n, err = c.hc.CompressBlock(src, dst)
	}
	if n == 0 || err != nil {
		// Does not fit in less than the input: store it as it is.
		return nil, nil
	}
	return dst[:n], nil
}
