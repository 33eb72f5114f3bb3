// Package commit runs commands inside an image, in the image's own
// architecture, and records what they change as one more OCI layer: what
// `docker commit` and a Dockerfile's RUN do, without a container runtime,
// binfmt_misc or root.
//
// A commit boots QEMU's virt machine of the image's architecture with a
// kernel (the image's own, or another source) and ocidisk's initramfs. The
// image's flattened root is a read-only EROFS disk, the lower layer of an
// overlayfs that the init stacks on it; the upper directory is on an empty
// ext4 scratch disk. The init runs the steps as root in the merged root,
// with /proc, /sys and /dev, and with QEMU's user network when asked, and
// powers off. The host then reads the upper directory from the scratch
// disk (inspect/ext4) and turns it into a layer tar with OCI semantics:
// overlayfs whiteouts (character devices 0:0) become .wh.NAME entries,
// opaque directories a .wh..wh..opq entry, overlayfs' own xattrs are
// dropped, and owners, modes, xattrs, hardlinks, devices and FIFOs are
// kept, entries sorted and times clamped, so that the same inputs and
// steps that make the same files give the same layer digest.
//
// The conversion happens on the host rather than in the guest: under
// emulation the guest runs tens of times slower than the host, so packing
// and compressing there would cost minutes on a large layer; the init stays
// small (no tar writer, no compressor); and the rules live in one place,
// beside the flattener that reads them back, tested on the host.
//
// The result is the source image with its layers unchanged plus the new
// one, written by Write to an OCI layout, an archive or a registry.
package commit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
)

// Step is one thing the guest runs, as root, in the merged root.
type Step struct {
	// Run is a shell command, run by /bin/sh -c.
	Run string
	// Script is a host file, run in the guest as a script: by its #!
	// line, or by /bin/sh when it has none.
	Script string
}

// String describes the step for messages and the image history.
func (s Step) String() string {
	if s.Script != "" {
		return "script " + filepath.Base(s.Script)
	}
	return s.Run
}

// Copy is a host file or directory copied into the root before the first
// step: a file to Guest (or into it, when Guest is a directory or ends in
// "/"), a directory's entries into Guest. Copies are owned by root and
// keep their modes.
type Copy struct {
	Host, Guest string
}

// ParseCopy reads HOSTPATH:GUESTPATH; GUESTPATH is absolute.
func ParseCopy(s string) (Copy, error) {
	i := strings.LastIndex(s, ":/")
	if i <= 0 {
		return Copy{}, fmt.Errorf("copy %q: want HOSTPATH:GUESTPATH, GUESTPATH absolute", s)
	}
	return Copy{Host: s[:i], Guest: s[i+1:]}, nil
}

// Networks a commit can give the guest.
const (
	NetNone = string(qemu.NetNone)
	NetUser = string(qemu.NetUser)
)

// Compressions of the new layer.
const (
	Gzip = "gzip"
	Zstd = "zstd"
)

// Options say what a commit does.
type Options struct {
	// Source is the image, in any SOURCE spelling (see package source).
	Source string
	// Kernel is the kernel's source; "" means the root's own /boot.
	Kernel string
	// Steps run in order; Copies are made before the first.
	Steps  []Step
	Copies []Copy
	// Net is NetNone (the default) or NetUser: QEMU's user-mode network,
	// through which the guest reaches what the host reaches, with a
	// resolv.conf (not committed) naming QEMU's DNS forwarder.
	Net string
	// Env adds K=V to the steps' environment, which starts as the image
	// config's (or a default PATH) with HOME=/root.
	Env []string
	// Timeout bounds the guest's run, boot to power-off; 0 means an hour.
	Timeout time.Duration
	// Compression is the new layer's: Gzip (the default) or Zstd.
	Compression string
	// Epoch clamps the new layer's times and is the time of the new
	// history entry and config; zero means the source image's creation
	// time, else the newest time in its root.
	Epoch time.Time
	// Sources opens the source and the kernel (platform, cache, log).
	Sources source.Options
	// Output receives the guest's console as it arrives: the steps'
	// output. nil discards it.
	Output io.Writer
	// Log receives progress and the timings; nil discards.
	Log *slog.Logger
	// WorkDir holds the commit's disks until Result.Close; "" means the
	// system's temporary directory.
	WorkDir string
	// ScratchSize is the scratch disk's size (sparse: only what the steps
	// write takes room); 0 means 32 GiB.
	ScratchSize int64
	// Memory (MiB) and CPUs of the guest; 0 means 1024 and 1 (2 under
	// KVM).
	Memory, CPUs int
}

const (
	defaultTimeout     = time.Hour
	defaultScratchSize = 32 << 30
)

// Result is a committed image.
type Result struct {
	// Image is the source image with the new layer on top. Its blobs are
	// read from the source and the work directory until Close.
	Image v1.Image
	// Layer is the new layer.
	Layer LayerInfo
	// Times says where the time went.
	Times Times

	closers []func() error
}

// Close releases the files the image reads from and removes the work
// directory.
func (r *Result) Close() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i]())
	}
	r.closers = nil
	return errors.Join(errs...)
}

// LayerInfo describes the new layer.
type LayerInfo struct {
	Digest, DiffID v1.Hash
	Size           int64 // compressed bytes
	// Entries counts the tar's entries, Whiteouts the deletions among
	// them (opaque directories included).
	Entries, Whiteouts int
}

// Times are the phases of a commit: what ocidisk adds (Prepare: loading
// the source and writing the disks; Boot: QEMU start to the first step;
// Shutdown: the last step to QEMU's exit; Pack: reading the upper
// directory; Compress: writing the layer) around what the guest spends
// on the steps (Steps).
type Times struct {
	Prepare, Boot, Steps, Shutdown, Pack, Compress time.Duration
	// KVM says the guest ran under KVM rather than emulated (TCG).
	KVM bool
}

// Overhead is everything but the steps.
func (t Times) Overhead() time.Duration {
	return t.Prepare + t.Boot + t.Shutdown + t.Pack + t.Compress
}

// ConfigError is a problem with an Options field, named as the field is
// ("Copies"), so that a command line can name its flag.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func fieldErr(field, format string, a ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, a...)}
}

// check validates the options that need no input read, and fills in the
// defaults.
func (o *Options) check() error {
	if o.Source == "" {
		return fieldErr("Source", "no source image")
	}
	if len(o.Steps) == 0 && len(o.Copies) == 0 {
		return fieldErr("Steps", "nothing to do: give a step to run or a file to copy")
	}
	for _, s := range o.Steps {
		switch {
		case s.Script != "" && s.Run != "":
			return fieldErr("Steps", "a step is a command or a script, not both")
		case s.Script != "":
			if fi, err := os.Stat(s.Script); err != nil {
				return fieldErr("Steps", "script: %v", err)
			} else if !fi.Mode().IsRegular() {
				return fieldErr("Steps", "script %s: not a regular file", s.Script)
			}
		case strings.TrimSpace(s.Run) == "":
			return fieldErr("Steps", "an empty command")
		}
	}
	for _, c := range o.Copies {
		if !strings.HasPrefix(c.Guest, "/") {
			return fieldErr("Copies", "copy to %q: the guest path must be absolute", c.Guest)
		}
		if _, err := os.Stat(c.Host); err != nil {
			return fieldErr("Copies", "copy %s: %v", c.Host, err)
		}
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fieldErr("Env", "environment %q: want K=V", kv)
		}
	}
	switch o.Net {
	case "":
		o.Net = NetNone
	case NetNone, NetUser:
	default:
		return fieldErr("Net", "network %q: want none or user", o.Net)
	}
	switch o.Compression {
	case "":
		o.Compression = Gzip
	case Gzip, Zstd:
	default:
		return fieldErr("Compression", "compression %q: want gzip or zstd", o.Compression)
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.ScratchSize <= 0 {
		o.ScratchSize = defaultScratchSize
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	return nil
}

// Run commits: it boots the guest, runs the steps and returns the image
// with the new layer. A step that fails, a timeout or a crash of the guest
// is an error (a *StepError for a step's exit status). Close the result
// when done with its image.
func Run(ctx context.Context, opts Options) (_ *Result, err error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	log := opts.Log
	res := &Result{}
	defer func() {
		if err != nil {
			res.Close()
		}
	}()
	start := time.Now()
	img, err := rootfs.Load(ctx, opts.Source, opts.Sources)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	res.closers = append(res.closers, img.Close)
	base, err := baseImage(img, opts)
	if err != nil {
		return nil, err
	}
	arch, err := guestArch(img, opts.Sources.Platform)
	if err != nil {
		return nil, err
	}
	k, err := findKernel(ctx, img, opts, res)
	if err != nil {
		return nil, err
	}
	epoch := opts.Epoch
	if epoch.IsZero() {
		epoch = img.Created()
	}
	work, err := os.MkdirTemp(opts.WorkDir, "ocidisk-commit-")
	if err != nil {
		return nil, err
	}
	res.closers = append(res.closers, func() error { return os.RemoveAll(work) })
	g, err := prepare(ctx, prepareSpec{work: work, img: img, kernel: k, arch: arch, opts: &opts, epoch: epoch})
	if err != nil {
		return nil, err
	}
	res.Times.Prepare = time.Since(start)
	res.Times.KVM = g.KVM
	log.Info("booting the guest", "arch", arch, "kernel", k.Version, "kvm", g.KVM, "steps", len(opts.Steps), "copies", len(opts.Copies))
	if err := boot(ctx, g, &opts, &res.Times); err != nil {
		return nil, err
	}
	layer, err := makeLayer(filepath.Join(work, scratchFile), filepath.Join(work, "layer"), opts.Compression, base.layerType, epoch, &res.Times)
	if err != nil {
		return nil, err
	}
	res.Layer = layer.info
	if res.Image, err = base.append(layer, opts, epoch); err != nil {
		return nil, err
	}
	log.Info("committed", "layer", layer.info.Digest, "bytes", layer.info.Size, "entries", layer.info.Entries, "whiteouts", layer.info.Whiteouts)
	t := res.Times
	log.Info("times", "steps", t.Steps.Round(time.Millisecond),
		"overhead", t.Overhead().Round(time.Millisecond), "prepare", t.Prepare.Round(time.Millisecond),
		"boot", t.Boot.Round(time.Millisecond), "shutdown", t.Shutdown.Round(time.Millisecond),
		"pack", t.Pack.Round(time.Millisecond), "compress", t.Compress.Round(time.Millisecond), "kvm", t.KVM)
	return res, nil
}

// guestArch is the architecture the guest runs: the image config's, else
// the platform asked for.
func guestArch(img *rootfs.Image, platform string) (string, error) {
	arch := ""
	if img.Config != nil {
		arch = img.Config.Architecture
	}
	if arch == "" {
		if platform == "" {
			platform = source.DefaultPlatform
		}
		p, err := v1.ParsePlatform(platform)
		if err != nil {
			return "", fieldErr("Sources", "platform %q: %v", platform, err)
		}
		arch = p.Architecture
	}
	switch arch {
	case "arm64", "arm":
		return arch, nil
	}
	return "", fmt.Errorf("the image is for %s: commit runs arm64 and arm images", arch)
}

// findKernel finds the kernel in the kernel source, or in the root.
func findKernel(ctx context.Context, img *rootfs.Image, opts Options, res *Result) (*kernel.Kernel, error) {
	if opts.Kernel == "" {
		k, err := kernel.Find(img.Tree)
		if errors.Is(err, kernel.ErrNoKernel) {
			return nil, fieldErr("Kernel", "the image %s has no kernel (/boot/vmlinuz-* with its modules): give one with a kernel source, e.g. deb:linux-image-...-arm64.deb", opts.Source)
		}
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", opts.Source, err)
		}
		return k, nil
	}
	kimg, err := rootfs.Load(ctx, opts.Kernel, opts.Sources)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	res.closers = append(res.closers, kimg.Close)
	k, err := kernel.Find(kimg.Tree)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", opts.Kernel, err)
	}
	return k, nil
}
