package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/internal/outfile"
	"github.com/ocidisk/ocidisk/mkfs/erofs"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/tar"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
)

// flattenArgs are ocidisk flatten's options, as parsed.
type flattenArgs struct {
	platform, format, out string
	// ext4's own: the size (0: auto) and the volume label.
	size  int64
	label string
}

func flattenCommand(e *env) *cobra.Command {
	var a flattenArgs
	formats := flattenFormats(&a)
	var names []string
	for _, f := range formats {
		names = append(names, f.name)
	}
	opts := []option{
		{flag: "platform", arg: "P", usage: "platform to pick from an image index (linux/arm64, linux/arm/v7, linux/arm/v6)", value: newString(&a.platform, source.DefaultPlatform, nil)},
		{flag: "format", arg: strings.Join(names, "|"), usage: "output format: " + strings.Join(names, ", "), value: newChoice(&a.format, "tar", names, nil)},
	}
	for _, f := range formats {
		opts = append(opts, f.options...)
	}
	opts = append(opts, option{flag: "output", short: "o", arg: "OUT", usage: "output file (required)", value: newString(&a.out, "", nil)})
	c := &cobra.Command{
		Use:   "flatten [flags] -o OUT SOURCE",
		Short: "flatten an image's layers into one tree and write it out as a tar or a bare ext4 or erofs filesystem",
		Args:  exactArgs(1, "one SOURCE"),
		RunE: func(c *cobra.Command, args []string) error {
			i := slices.IndexFunc(formats, func(f flattenFormat) bool { return f.name == a.format })
			return runFlatten(c.Context(), e, &a, formats[i], args[0])
		},
	}
	declare(c.Flags(), opts)
	return withSynopsis(c, opts, "SOURCE")
}

// flattenFormat is one --format of flatten: a writer of the flattened
// tree, and the options of its own (ext4: --size, --label).
type flattenFormat struct {
	name    string
	options []option
	write   func(o flattenOutput) error
	// stream is set for formats written in one pass, which -o - sends
	// to stdout; the others need a file to seek in.
	stream bool
}

// flattenOutput is what a format's writer gets.
type flattenOutput struct {
	W     io.Writer     // the output: File, or stdout for -o -
	File  io.WriterAt   // the output file, empty; committed after write returns; nil for -o -
	Image *rootfs.Image // the tree (times already clamped) and the input's ID
	Epoch time.Time     // SOURCE_DATE_EPOCH, zero when unset
}

func flattenFormats(a *flattenArgs) []flattenFormat {
	return []flattenFormat{
		{name: "tar", stream: true, write: func(o flattenOutput) error { return tar.Write(o.W, o.Image.Tree) }},
		{
			name: "ext4",
			options: []option{
				{flag: "size", arg: "S|auto", usage: "ext4, erofs: filesystem size, e.g. 2GiB, or auto: for ext4 the tree plus 20% and at least 64 MiB free, for erofs what the tree takes",
					value: newSize(&a.size, 0, "a size such as 512MiB or 2GiB", map[string]int64{"auto": 0})},
				{flag: "label", arg: "L", usage: "ext4, erofs: volume label (up to 16 bytes)", value: newString(&a.label, "", func(v string) error {
					if len(v) > 16 {
						return fmt.Errorf("labels hold at most 16 bytes")
					}
					return nil
				})},
			},
			write: func(o flattenOutput) error { return writeExt4(o, a.size, a.label) },
		},
		// erofs shares ext4's --size and --label.
		{name: "erofs", write: func(o flattenOutput) error { return writeErofs(o, a.size, a.label) }},
	}
}

// writeErofs writes the tree as a bare, uncompressed erofs image, its
// UUID derived from the input's ID. size 0 means what the tree takes. An
// xattr erofs cannot name fails the write: a bare image is meant to be
// the tree as it is.
func writeErofs(o flattenOutput, size int64, label string) error {
	id, err := o.Image.StoredID(o.Epoch)
	if err != nil {
		return err
	}
	return erofs.Write(o.File, 0, o.Image.Tree, erofs.Options{Size: size, Label: label, Seed: []byte(id), Time: o.Epoch})
}

// writeExt4 writes the tree as a bare ext4 filesystem image: sparse, with
// identifiers derived from the input as stored. size 0 means auto.
func writeExt4(o flattenOutput, size int64, label string) error {
	id, err := o.Image.StoredID(o.Epoch)
	if err != nil {
		return err
	}
	opts := ext4.Options{Size: size, Label: label, Seed: []byte(id), Time: o.Epoch}
	if opts.Size == 0 {
		n, err := ext4.MinSize(o.Image.Tree, opts)
		if err != nil {
			return err
		}
		opts.Size = n
	}
	// A new file reads as zeros, which the writer counts on to leave zero
	// blocks unwritten; it extends the file to the full size itself.
	return ext4.Write(o.File, 0, o.Image.Tree, opts)
}

func runFlatten(ctx context.Context, e *env, a *flattenArgs, format flattenFormat, spec string) error {
	if a.out == "" {
		return usagef("-o OUT is required")
	}
	limit, err := sourceDateEpoch()
	if err != nil {
		return usagef("%v", err)
	}
	// Outputs are checked before any work: -o - streams formats that
	// allow it; a file must be writable and no input.
	if a.out == "-" {
		if !format.stream {
			return usagef("-o -: --format %s needs a file it can seek in; give a path", format.name)
		}
	} else {
		if err := outfile.Check(a.out); err != nil {
			return err
		}
		if err := outfile.Distinct(a.out, source.LocalPath(spec)); err != nil {
			return err
		}
	}
	opts := source.Options{Platform: a.platform, Log: e.log}
	p := e.progress()
	if p != nil {
		opts.Progress = func(done, total int64) { p.update("reading layers", done, total) }
	}
	img, err := rootfs.Load(ctx, spec, opts)
	if p != nil {
		p.done()
	}
	if err != nil {
		if errors.Is(err, source.ErrUsage) {
			return usageError{err}
		}
		return err
	}
	defer img.Close()
	if !limit.IsZero() {
		img.Tree.ClampTimes(limit)
	}
	if a.out == "-" {
		if err := format.write(flattenOutput{W: ctxWriter{ctx, e.stdout}, Image: img, Epoch: limit}); err != nil {
			return fmt.Errorf("stdout: %w", err)
		}
		return nil
	}
	f, err := outfile.Create(a.out)
	if err != nil {
		return err
	}
	defer f.Abort()
	w := ctxFile{ctx, f}
	if err := format.write(flattenOutput{W: w, File: w, Image: img, Epoch: limit}); err != nil {
		return fmt.Errorf("%s: %w", a.out, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	e.log.Info("wrote", "output", a.out, "format", format.name, "id", img.ID)
	return nil
}

// ctxWriter stops a writer when ctx ends (a signal), so that an output
// being written is abandoned at once.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ctxFile is an output file that stops taking writes when ctx ends, so
// that its temporary is removed at once; the rest (Stat, Truncate, for
// writers that extend their output) is the file's.
type ctxFile struct {
	ctx context.Context
	*outfile.File
}

func (c ctxFile) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.File.Write(p)
}

func (c ctxFile) WriteAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.File.WriteAt(p, off)
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH: the latest time an output may
// carry, for reproducible builds; zero when unset.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", s)
	}
	return time.Unix(n, 0), nil
}
