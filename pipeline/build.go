// Package pipeline is the pipeline behind `ocidisk build`: it loads the
// root image and the kernel and firmware sources, assembles the board's
// boot partitions, lays out the disk and has each filesystem writer fill
// its partition.
//
// Every identifier in the image (disk signature, partition UUIDs,
// filesystem UUIDs, FAT serial, hash seeds) derives from a hash of the
// inputs, and every generated time from SOURCE_DATE_EPOCH or the inputs
// themselves, so the same inputs give the same bytes.
package pipeline

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
)

// Config is one build.
type Config struct {
	Board *boards.Board
	// Layout are the build's choices of table, slots, data partition,
	// sizes and root filesystem; zero values keep the board's.
	Layout boards.LayoutOptions
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
	// DataOverlay is a host directory copied onto the data partition.
	DataOverlay string
	// CmdlineAppend are kernel arguments after the board's.
	CmdlineAppend []string
	// ConfigTxtAppend is text added to the board's config.txt after an
	// [all] line, and DTOverlays "dtoverlay=" lines ("NAME[,params]")
	// whose NAME.dtbo must be on the boot partition.
	ConfigTxtAppend string
	DTOverlays      []string

	// Hostname names the device (/etc/hostname, /etc/hosts). Users are
	// added as Debian's adduser adds them, in the sudo group when the root
	// has one; PasswordHashes give users (root too) a password as a
	// crypt(3) hash ("USER:HASH"); AuthorizedKeys are SSH public keys that
	// may log in as a user ("USER:FILE", FILE on the host).
	Hostname       string
	Users          []string
	PasswordHashes []string
	AuthorizedKeys []string
	// KeepIdentity keeps the root's SSH host keys, systemd's random seed
	// and credential secret and its machine ID, which every device
	// flashed from the image then shares; by default they are taken out
	// and each device makes its own on first boot.
	KeepIdentity bool
	// ForceArch builds a root whose programs are for another machine
	// than the board's, with a warning instead of an error.
	ForceArch bool

	// Verity gives the root, which must be read-only (squashfs or
	// erofs), a dm-verity hash tree: computed as the root is written,
	// stored after its filesystem in the same partition, its root hash
	// named on the kernel command line, so that the init checks every
	// block read from the root against it.
	Verity bool

	// Output is the image path; Bmap and Compress ask for a .bmap and a
	// compressed copy (gz, xz, zstd). KeepRaw keeps the raw image beside
	// the compressed one.
	Output   string
	Bmap     bool
	Compress string
	KeepRaw  bool
	// Format is the image's format: diskimage.FormatRaw ("" too) or
	// diskimage.FormatQcow2, whose raw image is not kept and which takes
	// no Bmap or Compress.
	Format string
	// SlotImage, when set, is where the root filesystem alone is written,
	// with its SHA-256 in SlotImage.sha256: an update payload for the
	// other slot. The disk image is then written only if Output is set.
	SlotImage string

	// Epoch is SOURCE_DATE_EPOCH: times later than it are clamped and
	// generated files get it. Zero means the image's creation time, else
	// the newest time in the inputs.
	Epoch time.Time

	// Sources configures image pulls (platform, cache, credentials).
	Sources source.Options
	Log     *slog.Logger
	// Progress reports long stages: "reading root image", "reading
	// kernel" and "reading firmware" (which may run at once), "write
	// root", "bmap", "compress".
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

// Result describes the image built.
type Result struct {
	*diskimage.Result
	// Cmdline is the kernel command line the boot configs carry.
	Cmdline string
	// KernelVersion is the version of the kernel installed.
	KernelVersion string
	// SlotImage is the root filesystem written alone (Config.SlotImage).
	SlotImage *diskimage.PartitionImage
	// Verity is the root's hash tree (Config.Verity), nil without one.
	Verity *Verity
	// Inputs are the sources the image was built from, in the order they
	// were read, with the identities the image's identifiers derive from.
	Inputs []Input
}

// Input is one source a build read.
type Input struct {
	// Role is what the source was for: "root image", "kernel",
	// "firmware", "overlay".
	Role string
	// Source is the spelling it was given as; ID its identity (the
	// manifest digest, or the digest of the file or of the tree as the
	// image stores it).
	Source, ID string

	img *rootfs.Image
}

// Build runs the whole pipeline: it loads the inputs, prepares the root
// for the devices, assembles the boot partitions, lays out the disk and
// writes it. On failure nothing is left
// at cfg.Output or cfg.SlotImage.
func Build(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l, err := cfg.check()
	if err != nil {
		return nil, err
	}
	in, err := load(ctx, cfg, l)
	if err != nil {
		return nil, err
	}
	defer in.close()
	disk := newDisk(l, in.seed(cfg))
	prep, err := prepareRoot(l, in, disk, cfg)
	if err != nil {
		return nil, err
	}
	var vr *verityRoot
	if cfg.Verity {
		fs, err := filesystem(*l.Root(), in.root.Tree, disk.Seed, in, cfg)
		if err != nil {
			return nil, err
		}
		if vr, err = newVerityRoot(l.Root(), fs, in.salt); err != nil {
			return nil, err
		}
	}
	boot, err := assembleBoot(ctx, l, in, disk, prep, cfg, vr)
	if err != nil {
		return nil, err
	}
	if err := fillDisk(disk, l, in, boot, cfg, vr); err != nil {
		return nil, err
	}
	return write(ctx, disk, l, cfg, boot, vr, &Result{KernelVersion: in.kernel.Version, Inputs: in.inputs})
}

// write writes the slot image and the disk image that cfg asks for. The
// command line is known in full once the root is written: it names the
// root hash of a verified root.
func write(ctx context.Context, disk *diskimage.Layout, l *boards.Layout, cfg Config, boot *bootfs.Result, vr *verityRoot, out *Result) (_ *Result, err error) {
	defer func() {
		if err != nil && out.SlotImage != nil { // a failed build leaves no output
			os.Remove(out.SlotImage.Path)
			os.Remove(out.SlotImage.SumPath)
		}
	}()
	if cfg.SlotImage != "" {
		if out.SlotImage, err = diskimage.WritePartition(ctx, cfg.SlotImage, disk, disk.Index(l.Root().Name)); err != nil {
			return nil, err
		}
		if vr != nil {
			if out.Verity, err = vr.result(cfg.SlotImage); err != nil {
				return nil, err
			}
		}
	}
	if cfg.Output != "" {
		out.Result, err = diskimage.Write(ctx, cfg.Output, disk, diskimage.WriteOptions{
			Bmap:     cfg.Bmap,
			Compress: cfg.Compress,
			KeepRaw:  cfg.KeepRaw,
			Format:   cfg.Format,
			Progress: cfg.Progress,
			Log:      cfg.Log,
		})
		if err != nil {
			if out.Verity != nil {
				os.Remove(out.Verity.ArgsPath)
			}
			return nil, err
		}
	}
	if vr != nil && out.Verity == nil {
		if out.Verity, err = vr.result(""); err != nil {
			return nil, err
		}
	}
	if out.Cmdline, err = boot.Resolve(boot.Cmdline); err != nil {
		return nil, err
	}
	return out, nil
}

// firmwareSource names where the board's firmware files are looked for,
// for errors.
func firmwareSource(cfg Config) string {
	if cfg.Firmware != "" {
		return cfg.Firmware
	}
	return "the root image " + cfg.Source + " (no firmware source given)"
}

// joinArgs is the command line additions as the seed records them.
func joinArgs(args []string) string { return strings.Join(args, " ") }
