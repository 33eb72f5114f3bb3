package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/pipeline"
	"github.com/ocidisk/ocidisk/source"
)

func buildCommand() command {
	return command{
		name: "build",
		args: "[--board B] [--platform P] [--kernel SRC] [--firmware SRC] [--overlay DIR]... [--boot-overlay DIR]...\n" +
			"                [--table mbr|gpt] [--boot-size S] [--root-size S|auto] [--root-fs ext4|squashfs|erofs]\n" +
			"                [--cmdline-append STR] [--config-txt-append TEXT|@FILE] [--dtoverlay NAME[,params]]...\n" +
			"                [--ab] [--data SIZE|grow] [--data-overlay DIR] [--slot-image OUT.root]\n" +
			"                [-o OUT.img] [--bmap] [--compress none|gz|xz|zstd] [-f ocidisk.yaml] [SOURCE]",
		summary: "build a bootable disk image for a board from an OCI image",
		run:     runBuild,
	}
}

func runBuild(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "build")
	board := fs.String("board", defaultBoard, "board name (see ocidisk boards) or board file")
	platform := fs.String("platform", "", "platform to pick from an image index (default: the board's, linux/arm64 or linux/arm/v7)")
	kernelSrc := fs.String("kernel", "", "kernel source (deb:linux-image-...deb, an OCI image, dir:DIR); default: the root image's /boot")
	firmware := fs.String("firmware", "", "boot firmware source for boards that need it; default: the root image's")
	overlays := fs.StringArray("overlay", nil, "directory merged over the root filesystem, files owned by root (repeatable)")
	bootOverlays := fs.StringArray("boot-overlay", nil, "directory merged over the boot partition (repeatable)")
	table := fs.String("table", "", "partition table: mbr or gpt (default: the board's)")
	bootSize := fs.String("boot-size", "", "boot partition size, e.g. 256MiB, or auto (default: the board's)")
	rootSize := fs.String("root-size", "", "root partition size, e.g. 2GiB, or auto (default: the board's)")
	rootFS := fs.String("root-fs", "", "root filesystem: ext4, squashfs for a compressed read-only root, or erofs for an uncompressed read-only one (default: the board's)")
	cmdline := fs.StringArray("cmdline-append", nil, "kernel arguments appended to the board's command line (repeatable)")
	out := fs.StringP("output", "o", "", "output image (default: BOARD.img)")
	bmap := fs.Bool("bmap", false, "also write OUT.bmap, the block map bmaptool and ocidisk flash use")
	compress := fs.String("compress", "none", "also compress the image: none, gz, xz or zstd (writes OUT.gz|.xz|.zst beside OUT)")
	keepRaw := fs.Bool("keep-raw", true, "with --compress, keep the uncompressed OUT too; --keep-raw=false writes only the compressed file")
	// Raspberry Pi boards: additions to the generated config.txt.
	configTxt := fs.StringArray("config-txt-append", nil, "lines added to config.txt under [all]: TEXT, or @FILE to read them from FILE (repeatable)")
	dtoverlays := fs.StringArray("dtoverlay", nil, "add dtoverlay=NAME[,params] to config.txt; overlays/NAME.dtbo must be on the boot partition (repeatable)")
	// Firmware-style layouts: slots, a data partition, update payloads.
	ab := fs.Bool("ab", false, "two root slots of equal size (A/B), mounted read-only with /etc and /var overlaid; the board's firmware picks one")
	data := fs.String("data", "", "an ext4 data partition, last on the disk, mounted on /data: SIZE, or grow to fill the card on first boot (none: no data partition)")
	dataOverlay := fs.String("data-overlay", "", "directory copied onto the data partition, files owned by root")
	slotImage := fs.String("slot-image", "", "write the root filesystem alone to OUT.root (and its SHA-256 to OUT.root.sha256), an update for the other slot; no disk image unless -o is given")
	file := fs.StringP("file", "f", "", "build file (default: ocidisk.yaml in the current directory, if there is one); flags override it")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	src, err := applyBuildFile(e, fs, *file)
	if err != nil {
		return err
	}
	if fs.NArg() == 1 {
		src = fs.Arg(0)
	}
	if fs.NArg() > 1 || src == "" {
		return usagef("want one SOURCE, got %d arguments", fs.NArg())
	}
	b, err := boards.Load(*board)
	if err != nil {
		return err
	}
	cfg := pipeline.Config{
		Board:         b,
		Source:        src,
		Kernel:        *kernelSrc,
		Firmware:      *firmware,
		Overlays:      *overlays,
		BootOverlays:  *bootOverlays,
		Table:         *table,
		RootFS:        *rootFS,
		AB:            *ab,
		Data:          *data,
		DataOverlay:   *dataOverlay,
		SlotImage:     *slotImage,
		CmdlineAppend: *cmdline,
		Output:        *out,
		Bmap:          *bmap,
		Compress:      *compress,
		KeepRaw:       *keepRaw,
		Log:           e.log,
	}
	if cfg.Output == "" && cfg.SlotImage == "" {
		cfg.Output = b.Name + ".img"
	}
	if d := cfg.Data; d != "" && d != boards.DataGrow && d != boards.DataNone {
		if n, err := boards.ParseSize(d); err != nil || n <= 0 {
			return usagef("--data %q: want a size such as 256MiB, grow or none", cfg.Data)
		}
	}
	switch cfg.Table {
	case "", "mbr", "gpt":
	default:
		return usagef("--table %q: want mbr or gpt", cfg.Table)
	}
	switch cfg.RootFS {
	case "", "ext4", "squashfs", "erofs":
	default:
		return usagef("--root-fs %q: want ext4, squashfs or erofs", cfg.RootFS)
	}
	switch cfg.Compress {
	case "none", "", "gz", "xz", "zstd":
	default:
		return usagef("--compress %q: want none, gz, xz or zstd", cfg.Compress)
	}
	if cfg.BootSize, err = partSize("--boot-size", *bootSize); err != nil {
		return err
	}
	if cfg.RootSize, err = partSize("--root-size", *rootSize); err != nil {
		return err
	}
	if cfg.ConfigTxtAppend, err = readConfigTxtAppend(*configTxt); err != nil {
		return err
	}
	cfg.DTOverlays = *dtoverlays
	if cfg.Epoch, err = sourceDateEpoch(); err != nil {
		return usagef("%v", err)
	}
	cfg.Sources = source.Options{Platform: *platform, Log: e.log}
	if cfg.Sources.Platform == "" {
		cfg.Sources.Platform = pipeline.Platform(b)
	}
	if e.tty && !e.quiet {
		p := &stageProgress{w: e.stderr}
		cfg.Sources.Progress = func(done, total int64) { p.update("reading layers", done, total) }
		cfg.Progress = p.update
		defer p.done()
	}
	res, err := pipeline.Build(ctx, cfg)
	if err != nil {
		if errors.Is(err, source.ErrUsage) {
			return usageError{err}
		}
		return err
	}
	if !e.quiet {
		printBuildResult(e, res)
	}
	return nil
}

// readConfigTxtAppend joins --config-txt-append values, reading those
// that start with @ from a file.
func readConfigTxtAppend(vals []string) (string, error) {
	var b strings.Builder
	for _, v := range vals {
		if name, ok := strings.CutPrefix(v, "@"); ok {
			data, err := os.ReadFile(name)
			if err != nil {
				return "", fmt.Errorf("--config-txt-append: %w", err)
			}
			v = string(data)
		}
		b.WriteString(v)
		if v != "" && !strings.HasSuffix(v, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}

// partSize parses a partition size flag: "" keeps the board's, "auto"
// sizes to the content.
func partSize(flag, s string) (int64, error) {
	switch strings.ToLower(s) {
	case "":
		return 0, nil
	case "auto":
		return pipeline.Auto, nil
	}
	n, err := boards.ParseSize(s)
	if err != nil || n <= 0 {
		return 0, usagef("%s %q: want a size such as 512MiB or 2GiB, or auto", flag, s)
	}
	return int64(n), nil
}

func printBuildResult(e *env, res *pipeline.Result) {
	if s := res.SlotImage; s != nil {
		fmt.Fprintf(e.stdout, "%s: root filesystem for a slot, %s, sha256 %s (%s)\n", s.Path, humanBytes(s.Size), s.SHA256, s.SumPath)
	}
	if res.Result == nil {
		return
	}
	out := res.Image
	if res.Compressed != "" {
		out = res.Compressed
	}
	fmt.Fprintf(e.stdout, "%s: %s image, %s, kernel %s\n", out, res.Table, humanBytes(res.Size), res.KernelVersion)
	for _, p := range res.Partitions {
		fmt.Fprintf(e.stdout, "  %d %-6s %9s at %9s  PARTUUID=%s\n", p.Number, p.Name, humanBytes(p.Size), humanBytes(p.Start), p.PartUUID)
	}
	if res.Bmap != "" {
		fmt.Fprintf(e.stdout, "  block map %s (%s mapped)\n", res.Bmap, humanBytes(res.Mapped))
	}
}

// humanBytes renders n in binary units, the way sizes are given on the
// command line.
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
