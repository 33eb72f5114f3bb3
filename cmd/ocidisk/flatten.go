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

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/outfile"
	"github.com/ocidisk/ocidisk/mkfs/erofs"
	"github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/mkfs/tar"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/spf13/pflag"
)

func flattenCommand() command {
	return command{
		name:    "flatten",
		args:    "[--platform P] [--format tar|ext4|erofs] [--size S|auto] [--label L] -o OUT SOURCE",
		summary: "flatten an image's layers into one tree and write it out as a tar or a bare ext4 or erofs filesystem",
		run:     runFlatten,
	}
}

// flattenFormat is one --format of flatten: a writer of the flattened
// tree. A format with flags of its own (ext4: --size, --label) registers
// them in flags, which runs before parsing, into variables that its write,
// which runs after, reads: declare them in flattenFormats.
type flattenFormat struct {
	name  string
	flags func(fs *pflag.FlagSet)
	write func(o flattenOutput) error
}

// flattenOutput is what a format's writer gets.
type flattenOutput struct {
	File  *outfile.File // the output, empty; committed after write returns
	Image *rootfs.Image // the tree (times already clamped) and the input's ID
	Epoch time.Time     // SOURCE_DATE_EPOCH, zero when unset
}

func flattenFormats() []flattenFormat {
	var size sizeFlag
	var label labelFlag
	return []flattenFormat{
		{name: "tar", write: func(o flattenOutput) error { return tar.Write(o.File, o.Image.Tree) }},
		{
			name: "ext4",
			flags: func(fs *pflag.FlagSet) {
				fs.Var(&size, "size", "ext4, erofs: filesystem size, e.g. 2GiB, or auto: for ext4 the tree plus 20% and at least 64 MiB free, for erofs what the tree takes")
				fs.Var(&label, "label", "ext4, erofs: volume label (up to 16 bytes)")
			},
			write: func(o flattenOutput) error { return writeExt4(o, int64(size), string(label)) },
		},
		// erofs shares ext4's --size and --label.
		{name: "erofs", write: func(o flattenOutput) error { return writeErofs(o, int64(size), string(label)) }},
	}
}

// writeErofs writes the tree as a bare, uncompressed erofs image, its
// UUID derived from the input's ID. size 0 means what the tree takes. An
// xattr erofs cannot name fails the write: a bare image is meant to be
// the tree as it is.
func writeErofs(o flattenOutput, size int64, label string) error {
	return erofs.Write(o.File, 0, o.Image.Tree, erofs.Options{Size: size, Label: label, Seed: []byte(o.Image.ID), Time: o.Epoch})
}

// writeExt4 writes the tree as a bare ext4 filesystem image: sparse, with
// identifiers derived from the input's ID. size 0 means auto.
func writeExt4(o flattenOutput, size int64, label string) error {
	opts := ext4.Options{Size: size, Label: label, Seed: []byte(o.Image.ID), Time: o.Epoch}
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

// sizeFlag is a size flag: "512MiB", "2GiB", or "auto" (0).
type sizeFlag int64

func (s *sizeFlag) Set(v string) error {
	if strings.EqualFold(v, "auto") {
		*s = 0
		return nil
	}
	n, err := boards.ParseSize(v)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a size such as 512MiB or 2GiB, or auto")
	}
	*s = sizeFlag(n)
	return nil
}

func (s *sizeFlag) String() string {
	if *s == 0 {
		return "auto"
	}
	return strconv.FormatInt(int64(*s), 10)
}

func (s *sizeFlag) Type() string { return "size" }

// labelFlag is an ext4 or erofs volume label, checked for length when
// parsed.
type labelFlag string

func (l *labelFlag) Set(v string) error {
	if len(v) > 16 {
		return fmt.Errorf("labels hold at most 16 bytes")
	}
	*l = labelFlag(v)
	return nil
}

func (l *labelFlag) String() string { return string(*l) }
func (l *labelFlag) Type() string   { return "label" }

func runFlatten(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "flatten")
	formats := flattenFormats()
	var names []string
	for _, f := range formats {
		names = append(names, f.name)
	}
	platform := fs.String("platform", source.DefaultPlatform, "platform to pick from an image index (linux/arm64, linux/arm/v7, linux/arm/v6)")
	format := fs.String("format", "tar", "output format: "+strings.Join(names, ", "))
	out := fs.StringP("output", "o", "", "output file (required)")
	for _, f := range formats {
		if f.flags != nil {
			f.flags(fs)
		}
	}
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	i := slices.IndexFunc(formats, func(f flattenFormat) bool { return f.name == *format })
	switch {
	case fs.NArg() != 1:
		return usagef("want one SOURCE, got %d arguments", fs.NArg())
	case *out == "":
		return usagef("-o OUT is required")
	case i < 0:
		return usagef("--format %q: want one of %s", *format, strings.Join(names, ", "))
	}
	limit, err := sourceDateEpoch()
	if err != nil {
		return usagef("%v", err)
	}
	spec := fs.Arg(0)
	opts := source.Options{Platform: *platform, Log: e.log}
	p := &progressLine{w: e.stderr, what: "reading layers"}
	if e.tty && !e.quiet {
		opts.Progress = p.update
	}
	img, err := rootfs.Load(ctx, spec, opts)
	p.done()
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
	f, err := outfile.Create(*out)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := formats[i].write(flattenOutput{File: f, Image: img, Epoch: limit}); err != nil {
		return fmt.Errorf("%s: %w", *out, err)
	}
	if err := f.Commit(); err != nil {
		return err
	}
	e.log.Info("wrote", "output", *out, "format", *format, "id", img.ID)
	return nil
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

// progressLine draws "what: 12.3/45.6 MiB" on a terminal, redrawing only
// when the text changes.
type progressLine struct {
	w     io.Writer
	what  string
	shown string
}

func (p *progressLine) update(done, total int64) {
	unit, div := "MiB", float64(1<<20)
	if total < 10<<20 {
		unit, div = "KiB", 1<<10
	}
	s := fmt.Sprintf("%s: %.1f/%.1f %s", p.what, float64(done)/div, float64(total)/div, unit)
	if s != p.shown {
		p.shown = s
		fmt.Fprintf(p.w, "\r%s\x1b[K", s)
	}
}

// done clears the line, if one was drawn.
func (p *progressLine) done() {
	if p.shown != "" {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = ""
	}
}
