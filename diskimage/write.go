package diskimage

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ocidisk/ocidisk/internal/outfile"

	"github.com/ocidisk/ocidisk/internal/compression"
)

// WriteOptions control the outputs of Write.
type WriteOptions struct {
	// Bmap writes PATH.bmap, the block map of the raw image.
	Bmap bool
	// Compress writes PATH.gz, PATH.xz or PATH.zst: "gz", "xz" or "zstd"
	// ("" or "none" for none).
	Compress string
	// KeepRaw keeps the raw image at PATH when compressing; without
	// compression it is always the output.
	KeepRaw bool
	// Format is the format of the image at PATH: FormatRaw ("" too) or
	// FormatQcow2. A qcow2 image is written from a raw one made beside
	// PATH, which is removed: it is the same disk, and qemu-img convert
	// gives it back. Bmap and Compress are for raw images only.
	Format string
	// Progress, when set, is called as the image is written (stage
	// "write", done in bytes written, total 0 as it is not known ahead)
	// and as it is read back for the .bmap and compression (stage
	// "finish", total the image size).
	Progress func(stage string, done, total int64)
	// Log receives the layout at Info level; nil discards.
	Log *slog.Logger
}

// Result describes a written image.
type Result struct {
	Table Table
	// Size is the disk's size (a qcow2 file's virtual size).
	Size int64
	// Format is the image's format, FormatRaw or FormatQcow2.
	Format     string
	DiskID     string
	Partitions []PartitionInfo
	// Written counts the bytes the table, blobs and filesystems wrote,
	// Zeroed the bytes they declared zero without writing (ZeroAt), and
	// Mapped the bytes of the blocks they touched, which the .bmap maps.
	Written, Zeroed, Mapped int64
	// Output paths, "" for those not produced.
	Image, Bmap, Compressed string
}

// PartitionInfo is one partition as written.
type PartitionInfo struct {
	Number      int
	Name        string
	Start, Size int64
	// Type is the MBR type byte in hex ("0c") or the GPT type GUID.
	Type     string
	PartUUID string
	Bootable bool
}

// Write writes the image described by l to path, a new sparse file, and the
// outputs opts asks for beside it. Nothing appears at any output path
// unless everything succeeded.
func Write(ctx context.Context, path string, l *Layout, opts WriteOptions) (*Result, error) {
	pl, err := l.place()
	if err != nil {
		return nil, err
	}
	format, err := writeFormat(opts.Compress)
	if err != nil {
		return nil, err
	}
	imgFormat, err := checkFormat(opts, format)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pl.log(log)

	var f *os.File
	var raw *outfile.File
	if format != compression.None && !opts.KeepRaw || imgFormat == FormatQcow2 {
		// The raw image is only a step towards the compressed or qcow2
		// one.
		if f, err = outfile.NewTemp(filepath.Dir(path), "."+filepath.Base(path)); err != nil {
			return nil, fmt.Errorf("output %s: %w", path, err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
	} else {
		if raw, err = outfile.Create(path); err != nil {
			return nil, err
		}
		defer raw.Abort()
		f = raw.File
	}
	if err := f.Truncate(pl.size); err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	var progress func(int64)
	if opts.Progress != nil {
		progress = func(done int64) { opts.Progress("write", done, 0) }
	}
	rec, err := pl.write(ctx, freshFile{f}, progress)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	res := pl.result(rec)
	res.Format = imgFormat
	if imgFormat == FormatQcow2 {
		q, err := outfile.Create(path)
		if err != nil {
			return nil, err
		}
		defer q.Abort()
		if _, err := writeQcow2(ctx, q.File, f, pl.size, rec); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := q.Commit(); err != nil {
			return nil, err
		}
		res.Image = path
		return res, nil
	}

	var bmapOut, compOut *outfile.File
	if opts.Bmap {
		if bmapOut, err = outfile.Create(path + ".bmap"); err != nil {
			return nil, err
		}
		defer bmapOut.Abort()
	}
	if format != compression.None {
		if compOut, err = outfile.Create(path + format.Ext()); err != nil {
			return nil, err
		}
		defer compOut.Abort()
	}
	if bmapOut != nil || compOut != nil {
		var bw, cw io.Writer // not typed nils
		if bmapOut != nil {
			bw = bmapOut
		}
		if compOut != nil {
			cw = compOut
		}
		if err := finish(ctx, f, pl.size, rec, bw, cw, format, opts.Progress); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, o := range []*outfile.File{compOut, bmapOut, raw} {
		if o != nil {
			if err := o.Commit(); err != nil {
				return nil, err
			}
		}
	}
	if raw != nil {
		res.Image = path
	}
	if bmapOut != nil {
		res.Bmap = bmapOut.Path()
	}
	if compOut != nil {
		res.Compressed = compOut.Path()
	}
	return res, nil
}

// WriteTo writes the image described by l into w, which must read as
// zeros where nothing is written (a new file or buffer) unless it has a
// ZeroAt method that makes ranges read as zeros.
func WriteTo(ctx context.Context, w io.WriterAt, l *Layout) (*Result, error) {
	pl, err := l.place()
	if err != nil {
		return nil, err
	}
	rec, err := pl.write(ctx, w, nil)
	if err != nil {
		return nil, err
	}
	return pl.result(rec), nil
}

// freshFile is a new, truncated image file: it reads as zeros wherever
// nothing was written, so ZeroAt has nothing to do.
type freshFile struct{ *os.File }

func (freshFile) ZeroAt(off, n int64) error { return nil }

func (pl *placement) write(ctx context.Context, w io.WriterAt, progress func(int64)) (*recorder, error) {
	rec := newRecorder(ctx, w, pl.size, progress)
	for _, s := range pl.tableWrites() {
		if _, err := rec.WriteAt(s.b, s.off); err != nil {
			return nil, fmt.Errorf("partition table: %w", err)
		}
	}
	for i, b := range pl.l.Blobs {
		if err := copySparse(rec, b.Offset, b.Data, b.Size); err != nil {
			return nil, fmt.Errorf("blob %d (%s): %w", i+1, b.Name, err)
		}
	}
	for _, i := range pl.order {
		pp := pl.parts[i]
		if pp.p.FS == nil {
			continue
		}
		if err := pp.p.FS.WriteAt(rec, pp.start, pp.size); err != nil {
			return nil, fmt.Errorf("%s: %w", pp.name, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

func (pl *placement) result(rec *recorder) *Result {
	res := &Result{Table: pl.l.Table, Size: pl.size, DiskID: pl.l.DiskID()}
	for i, pp := range pl.parts {
		typ := fmt.Sprintf("%02x", pp.mbrType)
		if pl.l.Table == GPT {
			typ = formatGUID(pp.gptType)
		}
		res.Partitions = append(res.Partitions, PartitionInfo{Number: pp.num, Name: pp.p.Name, Start: pp.start, Size: pp.size,
			Type: typ, PartUUID: pl.l.PartUUID(i), Bootable: pp.p.Bootable})
	}
	rec.mu.Lock()
	res.Written, res.Zeroed = rec.written, rec.zeroed
	rec.mu.Unlock()
	_, res.Mapped = rec.mapped()
	return res
}

func (pl *placement) log(log *slog.Logger) {
	log.Info("disk image", "table", pl.l.Table, "size", pl.size, "id", pl.l.DiskID())
	for i, pp := range pl.parts {
		log.Info("partition", "number", pp.num, "name", pp.p.Name, "start", pp.start, "size", pp.size, "partuuid", pl.l.PartUUID(i))
	}
}

// finish reads the image back once, in order: the recorded ranges from
// the file, the holes as zeros without reading them. It hashes each range
// for the .bmap and feeds everything to the compressor.
func finish(ctx context.Context, r io.ReaderAt, size int64, rec *recorder, bmapOut, compOut io.Writer, format compression.Format, progress func(string, int64, int64)) error {
	ranges, _ := rec.mapped()
	var bw *bufio.Writer
	var comp io.WriteCloser
	if compOut != nil {
		bw = bufio.NewWriterSize(compOut, 1<<20)
		var err error
		if comp, err = newCompressor(format, bw, size); err != nil {
			return err
		}
	}
	buf := make([]byte, 1<<20)
	var zeros []byte
	pos := int64(0)
	report := func() {
		if progress != nil {
			progress("finish", pos, size)
		}
	}
	hole := func(end int64) error {
		if comp == nil {
			pos = end
			return nil
		}
		if zeros == nil {
			zeros = make([]byte, len(buf))
		}
		for pos < end {
			k := min(int64(len(zeros)), end-pos)
			if _, err := comp.Write(zeros[:k]); err != nil {
				return fmt.Errorf("compress: %w", err)
			}
			pos += k
			report()
		}
		return ctx.Err()
	}
	bm := make([]bmapRange, 0, len(ranges))
	for _, br := range ranges {
		if err := hole(br.first * BlockSize); err != nil {
			return err
		}
		end := min(br.end*BlockSize, size)
		h := sha256.New()
		for pos < end {
			b := buf[:min(int64(len(buf)), end-pos)]
			if _, err := r.ReadAt(b, pos); err != nil {
				return fmt.Errorf("read back at %d: %w", pos, err)
			}
			h.Write(b)
			if comp != nil {
				if _, err := comp.Write(b); err != nil {
					return fmt.Errorf("compress: %w", err)
				}
			}
			pos += int64(len(b))
			report()
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		bm = append(bm, bmapRange{br, hex.EncodeToString(h.Sum(nil))})
	}
	if err := hole(size); err != nil {
		return err
	}
	if comp != nil {
		if err := comp.Close(); err != nil {
			return fmt.Errorf("compress: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	if bmapOut != nil {
		return writeBmap(bmapOut, size, bm)
	}
	return nil
}
