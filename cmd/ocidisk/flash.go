package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/flash"
	"github.com/ocidisk/ocidisk/inspect"
	"github.com/ocidisk/ocidisk/internal/bytesize"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// flashArgs are ocidisk flash's options, as parsed.
type flashArgs struct {
	yes, force, noBmap, allowFile bool
	maxSize                       int64
	bmap                          string
}

func flashCommand(e *env) *cobra.Command {
	var a flashArgs
	opts := []option{
		{flag: "yes", short: "y", usage: "do not ask for confirmation (for scripts)", value: newBool(&a.yes, false)},
		{flag: "force", usage: "write a disk that is not removable or is larger than --max-size", value: newBool(&a.force, false)},
		{flag: "max-size", arg: "S", usage: "largest disk written without --force", value: newSize(&a.maxSize, 256<<30, "a size such as 64GiB", nil)},
		{flag: "bmap", arg: "FILE", usage: "block map to use (default: IMAGE.bmap beside the image, also without its .zst/.xz/.gz)", value: newString(&a.bmap, "", nil)},
		{flag: "no-bmap", usage: "ignore any .bmap: write every byte of the image", value: newBool(&a.noBmap, false)},
		{flag: "allow-file", usage: "let DEVICE be a regular file (created if missing)", value: newBool(&a.allowFile, false)},
	}
	c := &cobra.Command{
		Use:   "flash [flags] IMAGE[.zst|.xz|.gz] DEVICE",
		Short: "write an image to an SD card or USB disk: only its data, then read back and verified",
		Args:  exactArgs(2, "IMAGE and DEVICE"),
		RunE:  func(c *cobra.Command, args []string) error { return runFlash(c.Context(), e, &a, args[0], args[1]) },
	}
	declare(c.Flags(), opts)
	return withSynopsis(c, opts, "IMAGE[.zst|.xz|.gz] DEVICE")
}

func runFlash(ctx context.Context, e *env, a *flashArgs, image, device string) error {
	if a.bmap != "" && a.noBmap {
		return usagef("--bmap and --no-bmap exclude each other")
	}
	oo := flash.OpenOptions{Bmap: a.bmap, NoBmap: a.noBmap}
	p := e.progress()
	if p != nil {
		oo.Progress = func(done, total int64) { p.update("decompressing to measure", done, total) }
	}
	im, err := flash.Open(ctx, image, oo)
	if p != nil {
		p.done()
	}
	if err != nil {
		return err
	}
	defer im.Close()
	if a.allowFile {
		if err := createIfMissing(device); err != nil {
			return err
		}
	}
	if same(image, device) {
		return fmt.Errorf("refusing to write %s: it is the image itself", device)
	}
	tg, err := flash.Check(flash.Host{}, device, flash.Policy{
		MaxSize: a.maxSize, Force: a.force, AllowFile: a.allowFile, ImageSize: im.Map.ImageSize,
	})
	if err != nil {
		return err
	}
	if tg.Disk != nil && !a.yes {
		if err := confirm(e, im, tg); err != nil {
			return err
		}
	}
	dev, err := openTarget(tg, im.Map.ImageSize)
	if err != nil {
		return err
	}
	defer dev.Close()

	opts := flash.WriteOptions{Log: e.log}
	if p != nil {
		opts.Progress = p.update
	}
	start := time.Now()
	res, err := flash.Write(ctx, im, dev, opts)
	if p != nil {
		p.done()
	}
	if err != nil {
		return fmt.Errorf("%s to %s: %w", image, device, err)
	}
	if err := dev.Close(); err != nil {
		return fmt.Errorf("%s: %w", device, err)
	}
	if !e.quiet {
		took := time.Since(start)
		fmt.Fprintf(e.stdout, "%s -> %s: wrote %s of %s (map: %s) in %.1fs, %s/s, read back and verified\n",
			image, device, bytesize.Human(res.Written), bytesize.Human(res.ImageSize), im.Map.Source,
			took.Seconds(), bytesize.Human(int64(float64(res.Written)/max(took.Seconds(), 1e-3))))
	}
	return nil
}

// createIfMissing creates an empty target file for --allow-file.
func createIfMissing(path string) error {
	if abs, err := filepath.Abs(path); err == nil && strings.HasPrefix(abs, "/dev/") {
		return nil // a mistyped device name must not become a file in /dev
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("target %s: %w", path, err)
	}
	return f.Close()
}

func same(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// openTarget opens the checked target for writing. A block device is
// opened exclusively: the kernel then refuses it if anything mounted or
// claimed it since the check. A file is extended to the image's size.
func openTarget(tg *flash.Target, size int64) (*os.File, error) {
	flags := os.O_RDWR
	if !tg.File {
		flags |= unix.O_EXCL
	}
	f, err := os.OpenFile(tg.Path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s for writing: %w", tg.Path, err)
	}
	if tg.File && size > 0 {
		if st, err := f.Stat(); err == nil && st.Size() < size {
			if err := f.Truncate(size); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", tg.Path, err)
			}
		}
	}
	return f, nil
}

// confirm shows the disk about to be overwritten and asks on the terminal.
// Without a terminal it refuses: a script must say --yes.
func confirm(e *env, im *flash.Image, tg *flash.Target) error {
	in, ok := e.stdin.(*os.File)
	if !ok || !e.tty || !term.IsTerminal(int(in.Fd())) {
		return fmt.Errorf("refusing to write %s without confirmation: not on a terminal (give --yes)", tg.Path)
	}
	return ask(e.stderr, e.stdin, im, tg)
}

func ask(w io.Writer, r io.Reader, im *flash.Image, tg *flash.Target) error {
	describeTarget(w, im, tg)
	fmt.Fprintf(w, "Everything on %s will be lost. Write it? [y/N] ", tg.Path)
	line, _ := bufio.NewReader(r).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("%s: not confirmed, nothing written", tg.Path)
}

func describeTarget(w io.Writer, im *flash.Image, tg *flash.Target) {
	d := tg.Disk
	model := d.Model
	if model == "" {
		model = "unknown model"
	}
	kind := "fixed disk"
	if d.Removable {
		kind = "removable"
	}
	size := "size known after decompressing"
	if im.Map.ImageSize >= 0 {
		size = fmt.Sprintf("%s, %s of data", bytesize.Human(im.Map.ImageSize), bytesize.Human(im.Map.Mapped()))
	}
	fmt.Fprintf(w, "Image:  %s (%s)\n", im.Path, size)
	fmt.Fprintf(w, "Target: %s: %s, %s, %s\n", tg.Path, model, bytesize.Human(d.Size), kind)
	// What is on the disk now, read with inspect's readers when they know
	// it, else the kernel's list of partitions.
	if cur, err := inspect.Open(tg.Path); err == nil {
		defer cur.Close()
		for _, p := range cur.Parts {
			label := ""
			if p.FS != nil && p.FS.Label() != "" {
				label = fmt.Sprintf("%q", p.FS.Label())
			}
			fmt.Fprintf(w, "        partition %d %10s  %-8s %s\n", p.Number, bytesize.Human(p.Size), p.Kind, label)
		}
		return
	}
	if len(d.Partitions) == 0 {
		fmt.Fprintln(w, "        no partitions")
	}
	for _, p := range d.Partitions {
		fmt.Fprintf(w, "        %-12s %10s\n", p.Name, bytesize.Human(p.Size))
	}
}
