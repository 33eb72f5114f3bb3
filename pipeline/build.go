// Package pipeline is the pipeline behind `ocidisk build`: it flattens the root
// image, finds the kernel, assembles the board's boot partition, lays out
// the disk and has each filesystem writer fill its partition.
//
// Every identifier in the image (disk signature, partition UUIDs,
// filesystem UUIDs, FAT serial, hash seeds) derives from a hash of the
// inputs, and every generated time from SOURCE_DATE_EPOCH or the inputs
// themselves, so the same inputs give the same bytes.
package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
)

// Config is one build: the command line's flags, resolved.
type Config struct {
	Board *boards.Board
	// Source is the root image (any source spelling).
	Source string
	// Kernel is the kernel source; "" means the root's own /boot.
	Kernel string
	// Firmware is the boot firmware source for boards that need files
	// from one; "" means the root's own.
	Firmware string
	// Overlays are host directories merged over the root, in order, and
	// BootOverlays over the boot partition. Their files become root-owned.
	Overlays, BootOverlays []string
	// Table overrides the board's partition table ("mbr" or "gpt").
	Table string
	// BootSize and RootSize override the board's partition sizes; 0
	// keeps the board's, Auto sizes to the content.
	BootSize, RootSize int64
	// RootFS is the root filesystem type; "" means the board's.
	RootFS string
	// AB lays out two root slots; Data adds a data partition (a size,
	// "grow" or "none"; "" keeps the board's), filled from the host
	// directory DataOverlay when set. See boards.Board.Layout.
	AB                bool
	Data, DataOverlay string
	// SlotImage, when set, is where the root filesystem alone is written,
	// with its SHA-256 in SlotImage.sha256: an update payload for the
	// other slot. The disk image is then written only if Output is set.
	SlotImage     string
	CmdlineAppend []string
	// ConfigTxtAppend is text added to the board's config.txt after an
	// [all] line, and DTOverlays "dtoverlay=" lines ("NAME[,params]")
	// whose NAME.dtbo must be on the boot partition.
	ConfigTxtAppend string
	DTOverlays      []string

	// Output is the image path; Bmap and Compress ask for a .bmap and a
	// compressed copy (gz, xz, zstd).
	Output   string
	Bmap     bool
	Compress string
	// KeepRaw keeps the raw image beside the compressed one.
	KeepRaw bool

	// Epoch is SOURCE_DATE_EPOCH: times later than it are clamped and
	// generated files get it. Zero means the newest time in the inputs.
	Epoch time.Time

	// Sources configures image pulls (platform, cache, credentials).
	Sources source.Options
	Log     *slog.Logger
	// Progress reports long stages: "flatten", "write", "bmap", "compress".
	Progress func(stage string, done, total int64)
}

// Platform is the image platform a board runs: linux/arm64 for arm64
// boards, linux/arm/v7 for 32-bit arm ones.
func Platform(b *boards.Board) string {
	if b.Arch == "arm" {
		return "linux/arm/v7"
	}
	return "linux/" + b.Arch
}

// Auto, as BootSize or RootSize, sizes a partition to its content.
const Auto = -1

// Result describes the image built.
type Result struct {
	*diskimage.Result
	// Cmdline is the kernel command line the boot configs carry.
	Cmdline string
	// KernelVersion is the version of the kernel installed.
	KernelVersion string
	// SlotImage is the root filesystem written alone (Config.SlotImage).
	SlotImage *diskimage.PartitionImage
}

// Build runs the whole pipeline. On failure nothing is left at
// cfg.Output.
func Build(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Board == nil {
		return nil, errors.New("no board")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b, err := cfg.Board.Layout(boards.LayoutOptions{AB: cfg.AB, Data: cfg.Data, RootFS: cfg.RootFS, Table: cfg.Table})
	if err != nil {
		return nil, err
	}
	in := &inputs{cfg: cfg, log: cfg.Log}
	defer in.close()

	// The kernel and firmware sources decompress while the root's layers
	// do: on a cold cache, a kernel package's xz is as much work as the
	// root's gzip layers.
	in.prefetch(ctx, cfg.Kernel)
	in.prefetch(ctx, cfg.Firmware)
	root, err := in.load(ctx, "root image", cfg.Source)
	if err != nil {
		return nil, err
	}
	for _, dir := range cfg.Overlays {
		if err := in.overlay(ctx, root.Tree, dir); err != nil {
			return nil, err
		}
	}

	k, err := in.kernel(ctx, root)
	if err != nil {
		return nil, err
	}

	var fw *fstree.Tree
	if cfg.Firmware != "" {
		img, err := in.load(ctx, "firmware", cfg.Firmware)
		if err != nil {
			return nil, err
		}
		fw = img.Tree
	} else if len(b.Firmware) > 0 || len(b.Blobs) > 0 {
		fw = root.Tree
	}

	epoch := in.epoch(root)
	root.Tree.ClampTimes(epoch)

	if k.Tree != root.Tree {
		ms, err := k.Modules()
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", cfg.Kernel, err)
		}
		if err := kernel.MergeModules(root.Tree, k, ms, epoch); err != nil {
			return nil, fmt.Errorf("merge the modules of kernel %s into the root: %w", k.Version, err)
		}
	}

	data, err := in.data(ctx, b, root.Tree)
	if err != nil {
		return nil, err
	}

	seed := in.seed(b, epoch)
	layout, parts, err := newLayout(b, cfg, seed)
	if err != nil {
		return nil, err
	}
	rootIdx := b.PartitionNumber(boards.RoleRoot) - 1
	bootIdx := b.PartitionNumber(boards.RoleBoot) - 1
	if rootIdx < 0 || bootIdx < 0 {
		return nil, fmt.Errorf("board %s: needs a boot and a root partition", b.Name)
	}

	var bootOverlay *fstree.Tree
	if len(cfg.BootOverlays) > 0 {
		bootOverlay = fstree.New()
		for _, dir := range cfg.BootOverlays {
			if err := in.overlay(ctx, bootOverlay, dir); err != nil {
				return nil, err
			}
		}
	}
	boot, err := bootfs.Assemble(b, k, bootfs.Options{
		RootPartUUID:  layout.PartUUID(rootIdx),
		PartUUID:      layout.PartUUID,
		CmdlineAppend: cfg.CmdlineAppend,
		BootOverlay:   bootOverlay,
		Firmware:      fw,
		Time:          epoch,
		Log:           cfg.Log,

		FirmwareSource: firmwareSource(cfg),
		ConfigAppend:   cfg.ConfigTxtAppend,
		DTOverlays:     cfg.DTOverlays,
	})
	if err != nil {
		return nil, fmt.Errorf("boot partition: %w", err)
	}
	boot.Boot.ClampTimes(epoch)
	if tried := missingInit(root.Tree, boot.Cmdline); tried != nil {
		cfg.Log.Warn("the root has no init to run, so the image will stop after the initramfs; add one, or name it with --cmdline-append init=PATH",
			"root", cfg.Source, "tried", strings.Join(tried, ", "))
	}

	fsFor := map[int]*fstree.Tree{rootIdx: root.Tree}
	for i, t := range boot.Partitions { // each slot's boot, the select
		t.ClampTimes(epoch)
		fsFor[i] = t
	}
	if i := b.PartitionNumber(boards.RoleData) - 1; i >= 0 {
		data.ClampTimes(epoch)
		fsFor[i] = data
	}
	for i, p := range parts {
		tree := fsFor[i]
		if tree == nil {
			continue
		}
		fs, err := filesystem(p, tree, seed, epoch, cfg)
		if err != nil {
			return nil, err
		}
		layout.Partitions[i].FS = fs
	}
	if layout.Blobs, err = blobs(b, fw, cfg.Firmware); err != nil {
		return nil, err
	}

	out := &Result{Cmdline: boot.Cmdline, KernelVersion: k.Version}
	if cfg.SlotImage != "" {
		if out.SlotImage, err = diskimage.WritePartition(ctx, cfg.SlotImage, layout, rootIdx); err != nil {
			return nil, err
		}
		if cfg.Output == "" {
			return out, nil
		}
	}
	res, err := diskimage.Write(ctx, cfg.Output, layout, diskimage.WriteOptions{
		Bmap:     cfg.Bmap,
		Compress: cfg.Compress,
		KeepRaw:  cfg.KeepRaw,
		Progress: cfg.Progress,
		Log:      cfg.Log,
	})
	if err != nil {
		if out.SlotImage != nil { // a failed build leaves no output
			os.Remove(out.SlotImage.Path)
			os.Remove(out.SlotImage.SumPath)
		}
		return nil, err
	}
	out.Result = res
	return out, nil
}

// inputs tracks what a build opened, so that it can close it and hash it.
type inputs struct {
	cfg     Config
	log     *slog.Logger
	opened  []*rootfs.Image
	ids     []string
	pending map[string]*pending // prefetched loads, by spec
}

// pending is a load running in the background.
type pending struct {
	done   chan struct{}
	cancel context.CancelFunc
	img    *rootfs.Image
	err    error
}

// prefetch starts loading spec in the background; the first load of spec
// waits for it. The load reports no progress: Options.Progress is called
// from one load at a time, the root's.
func (in *inputs) prefetch(ctx context.Context, spec string) {
	if spec == "" || in.pending[spec] != nil {
		return
	}
	if in.pending == nil {
		in.pending = map[string]*pending{}
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &pending{done: make(chan struct{}), cancel: cancel}
	in.pending[spec] = p
	opts := in.cfg.Sources
	opts.Progress = nil
	go func() {
		defer close(p.done)
		p.img, p.err = rootfs.Load(ctx, spec, opts)
	}()
}

// load loads spec, or takes its prefetched load. Identifiers are recorded
// in the order of the calls, whatever finished first, so that the seed is
// the same from build to build.
func (in *inputs) load(ctx context.Context, what, spec string) (*rootfs.Image, error) {
	in.log.Info("loading "+what, "source", spec)
	var (
		img *rootfs.Image
		err error
	)
	if p := in.pending[spec]; p != nil {
		delete(in.pending, spec)
		<-p.done
		p.cancel()
		img, err = p.img, p.err
	} else {
		img, err = rootfs.Load(ctx, spec, in.cfg.Sources)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	in.opened = append(in.opened, img)
	in.ids = append(in.ids, what+"="+img.ID)
	return img, nil
}

// close closes what the build opened, stopping prefetches no step took.
func (in *inputs) close() {
	for _, p := range in.pending {
		p.cancel()
		<-p.done
		if p.img != nil {
			p.img.Close()
		}
	}
	for _, img := range in.opened {
		img.Close()
	}
}

// overlay merges host directory dir over t, owned by root: an overlay
// comes from a user's checkout, and its owner there means nothing on the
// board.
func (in *inputs) overlay(ctx context.Context, t *fstree.Tree, dir string) error {
	img, err := in.load(ctx, "overlay", "dir:"+dir)
	if err != nil {
		return err
	}
	seen := map[*fstree.Node]bool{}
	_ = img.Tree.Walk(func(_ string, n *fstree.Node) error {
		if !seen[n] {
			seen[n] = true
			n.UID, n.GID = 0, 0
		}
		return nil
	})
	if err := fstree.Merge(t, "", img.Tree); err != nil {
		return fmt.Errorf("overlay %s: %w", dir, err)
	}
	return nil
}

// data returns the data partition's tree when the layout has one: empty,
// or DataOverlay's files owned by root. The root gets a /data to mount
// it on, since a read-only root cannot make one at boot.
func (in *inputs) data(ctx context.Context, b *boards.Board, root *fstree.Tree) (*fstree.Tree, error) {
	if b.Partition(boards.RoleData) == nil {
		if in.cfg.DataOverlay != "" {
			return nil, fmt.Errorf("--data-overlay %s: the layout has no data partition (give --data SIZE or grow)", in.cfg.DataOverlay)
		}
		return nil, nil
	}
	if n, err := root.Lookup("data"); err != nil {
		d := fstree.NewDir(0o755)
		d.Mtime = root.Root.Mtime
		if err := root.Put("data", d, nil); err != nil {
			return nil, fmt.Errorf("root: /data for the data partition: %w", err)
		}
	} else if !n.IsDir() {
		return nil, fmt.Errorf("root image %s: /data is a %s; the data partition is mounted there", in.cfg.Source, n.Type)
	}
	t := fstree.New()
	t.Root.Mtime = root.Root.Mtime
	if in.cfg.DataOverlay != "" {
		if err := in.overlay(ctx, t, in.cfg.DataOverlay); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// kernel finds the kernel in --kernel's source, or in the root's own /boot.
func (in *inputs) kernel(ctx context.Context, root *rootfs.Image) (*kernel.Kernel, error) {
	if in.cfg.Kernel == "" {
		k, err := kernel.Find(root.Tree)
		if errors.Is(err, kernel.ErrNoKernel) {
			return nil, fmt.Errorf("root image %s has no kernel (/boot/vmlinuz-* with /lib/modules/*): give one with --kernel SRC (e.g. deb:linux-image-...-arm64.deb), or build from an image that installs a kernel", in.cfg.Source)
		}
		if err != nil {
			return nil, fmt.Errorf("root image %s: %w", in.cfg.Source, err)
		}
		return k, nil
	}
	img, err := in.load(ctx, "kernel", in.cfg.Kernel)
	if err != nil {
		return nil, err
	}
	k, err := kernel.Find(img.Tree)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", in.cfg.Kernel, err)
	}
	return k, nil
}

// epoch is the time of every generated file: SOURCE_DATE_EPOCH, else the
// image's creation time, else the newest mtime in the root.
func (in *inputs) epoch(root *rootfs.Image) time.Time {
	if !in.cfg.Epoch.IsZero() {
		return in.cfg.Epoch.UTC()
	}
	if root.Config != nil && !root.Config.Created.IsZero() {
		return root.Config.Created.UTC()
	}
	var newest time.Time
	_ = root.Tree.Walk(func(_ string, n *fstree.Node) error {
		if n.Mtime.After(newest) {
			newest = n.Mtime
		}
		return nil
	})
	return newest.UTC()
}

// seed hashes everything that determines the image, so that identifiers
// change exactly when the inputs do.
func (in *inputs) seed(b *boards.Board, epoch time.Time) []byte {
	h := sha256.New()
	c := in.cfg
	fmt.Fprintf(h, "ocidisk build 1\nboard=%s\ntable=%s\nrootfs=%s\nboot=%d\nroot=%d\nepoch=%d\ncmdline=%q\n",
		b.Name, c.Table, c.RootFS, c.BootSize, c.RootSize, epoch.Unix(), strings.Join(c.CmdlineAppend, " "))
	for _, id := range in.ids {
		fmt.Fprintln(h, id)
	}
	if c.AB || c.Data != "" || c.DataOverlay != "" {
		fmt.Fprintf(h, "ab=%v\ndata=%q\n", c.AB, c.Data)
	}
	if c.ConfigTxtAppend != "" || len(c.DTOverlays) > 0 {
		fmt.Fprintf(h, "config.txt=%q\ndtoverlay=%q\n", c.ConfigTxtAppend, c.DTOverlays)
	}
	return h.Sum(nil)
}

// firmwareSource names where the board's firmware files are looked for,
// for errors.
func firmwareSource(cfg Config) string {
	if cfg.Firmware != "" {
		return cfg.Firmware
	}
	return "the root image " + cfg.Source + " (no --firmware given)"
}
