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

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/flash"
	"github.com/ocidisk/ocidisk/inspect"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

func flashCommand() command {
	return command{
		name:    "flash",
		args:    "[--yes] [--force] [--max-size S] [--bmap FILE | --no-bmap] [--allow-file] IMAGE[.zst|.xz|.gz] DEVICE",
		summary: "write an image to an SD card or USB disk: only its data, then read back and verified",
		run:     runFlash,
	}
}

func runFlash(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "flash")
	yes := fs.BoolP("yes", "y", false, "do not ask for confirmation (for scripts)")
	force := fs.Bool("force", false, "write a disk that is not removable or is larger than --max-size")
	maxSize := fs.String("max-size", "256GiB", "largest disk written without --force")
	bmap := fs.String("bmap", "", "block map to use (default: IMAGE.bmap beside the image, also without its .zst/.xz/.gz)")
	noBmap := fs.Bool("no-bmap", false, "ignore any .bmap: copy a raw image's data by its holes, a compressed one whole")
	allowFile := fs.Bool("allow-file", false, "let DEVICE be a regular file (created if missing)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("want IMAGE and DEVICE, got %d arguments", fs.NArg())
	}
	if *bmap != "" && *noBmap {
		return usagef("--bmap and --no-bmap exclude each other")
	}
	limit, err := parseDiskSize(*maxSize)
	if err != nil || limit <= 0 {
		return usagef("--max-size %q: want a size such as 64GiB", *maxSize)
	}
	image, device := fs.Arg(0), fs.Arg(1)

	im, err := flash.Open(image, flash.OpenOptions{Bmap: *bmap, NoBmap: *noBmap})
	if err != nil {
		return err
	}
	defer im.Close()
	if *allowFile {
		if err := createIfMissing(device); err != nil {
			return err
		}
	}
	if same(image, device) {
		return fmt.Errorf("refusing to write %s: it is the image itself", device)
	}
	tg, err := flash.Check(flash.Host{}, device, flash.Policy{
		MaxSize: limit, Force: *force, AllowFile: *allowFile, ImageSize: im.Map.ImageSize,
	})
	if err != nil {
		return err
	}
	if tg.Disk != nil && !*yes {
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
	var p *rateProgress
	if e.tty && !e.quiet {
		p = &rateProgress{w: e.stderr}
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
			image, device, humanBytes(res.Written), humanBytes(res.ImageSize), im.Map.Source,
			took.Seconds(), humanBytes(int64(float64(res.Written)/max(took.Seconds(), 1e-3))))
	}
	return nil
}

// parseDiskSize parses a size as board files write them, and also in TiB,
// which disks are measured in.
func parseDiskSize(s string) (int64, error) {
	for _, suf := range []string{"TiB", "T"} {
		if n, ok := strings.CutSuffix(s, suf); ok {
			g, err := boards.ParseSize(n + "GiB")
			return int64(g) * 1024, err
		}
	}
	n, err := boards.ParseSize(s)
	return int64(n), err
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
		size = fmt.Sprintf("%s, %s of data", humanBytes(im.Map.ImageSize), humanBytes(im.Map.Mapped()))
	}
	fmt.Fprintf(w, "Image:  %s (%s)\n", im.Path, size)
	fmt.Fprintf(w, "Target: %s: %s, %s, %s\n", tg.Path, model, humanBytes(d.Size), kind)
	// What is on the disk now, read with inspect's readers when they know
	// it, else the kernel's list of partitions.
	if cur, err := inspect.Open(tg.Path); err == nil {
		defer cur.Close()
		for _, p := range cur.Parts {
			label := ""
			if p.FS != nil && p.FS.Label() != "" {
				label = fmt.Sprintf("%q", p.FS.Label())
			}
			fmt.Fprintf(w, "        partition %d %10s  %-8s %s\n", p.Number, humanBytes(p.Size), p.Kind, label)
		}
		return
	}
	if len(d.Partitions) == 0 {
		fmt.Fprintln(w, "        no partitions")
	}
	for _, p := range d.Partitions {
		fmt.Fprintf(w, "        %-12s %10s\n", p.Name, humanBytes(p.Size))
	}
}

// rateProgress draws "write: 45% 120.0/266.3 MiB 21.3 MiB/s ETA 0:07" on a
// terminal, at most ten times a second.
type rateProgress struct {
	w           io.Writer
	stage       string
	start, last time.Time
	shown       bool
}

func (p *rateProgress) update(stage string, done, total int64) {
	now := time.Now()
	if stage != p.stage {
		p.stage, p.start = stage, now
	}
	if now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last, p.shown = now, true
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-3)
	if total <= 0 {
		fmt.Fprintf(p.w, "\r%s: %s %s/s\x1b[K", stage, mib(done), mib(int64(rate)))
		return
	}
	eta := time.Duration(float64(total-done) / max(rate, 1) * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(p.w, "\r%s: %3d%% %s/%s %s/s ETA %d:%02d\x1b[K", stage, done*100/total, mib(done), mib(total),
		mib(int64(rate)), int(eta.Minutes()), int(eta.Seconds())%60)
}

func (p *rateProgress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
