package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
)

// inputs are a build's loaded sources: the root with its overlays and the
// kernel's modules merged in, the kernel, the firmware tree and the data
// partition's tree, all with times clamped to epoch.
type inputs struct {
	root     *rootfs.Image
	kernel   *kernel.Kernel
	firmware *fstree.Tree // nil when the board needs no firmware
	data     *fstree.Tree // nil without a data partition
	epoch    time.Time
	// salt is the salt of the root's dm-verity tree (Config.Verity);
	// prehash hashes the root's files for it ahead, for an erofs root.
	salt    []byte
	prehash *prehash
	// initrd is the initramfs made ahead, with a kernel source.
	initrd *initrdAhead

	loader
}

// load loads every source the build names. The kernel and firmware
// sources decompress while the root's layers do: on a cold cache, a
// kernel package's xz is as much work as the root's gzip layers.
func load(ctx context.Context, cfg Config, l *boards.Layout) (_ *inputs, err error) {
	in := &inputs{loader: loader{opts: cfg.Sources, progress: cfg.Progress, log: cfg.Log, board: cfg.Board.Name}}
	defer func() {
		if err != nil {
			in.close()
		}
	}()
	// The kernel's modules are read (every .modinfo, for the initramfs)
	// and the root's module indexes made in the background too: they do
	// not depend on the root, and a cold build's last root layer leaves a
	// core idle while it decompresses.
	var kern *kernel.Kernel
	// A verified erofs root's modules are hashed ahead too (see
	// prehash): listed here, where nothing else reads the kernel's tree.
	ahead := cfg.Verity && l.Root().FS == boards.Erofs
	modules := make(chan []fstree.Content, 1)
	// So is the initramfs, once the kernel and the build's time are
	// known.
	kernels, times := make(chan *kernel.Kernel, 1), make(chan time.Time, 1)
	timed := false // sent on times
	if cfg.Kernel != "" {
		in.initrd = startInitrd(ctx, l, cfg.Verity, kernels, times)
	}
	if !cfg.Epoch.IsZero() {
		times <- epoch(cfg.Epoch, nil)
		timed = true
	}
	in.prefetch(ctx, "kernel", cfg.Kernel, func(img *rootfs.Image) {
		if k, err := kernel.Find(img.Tree); err == nil {
			if ahead && k.ModulesDir != "" {
				modules <- contents(img.Tree, k.ModulesDir)
			}
			// An error is met again, and reported, in the foreground.
			if ms, err := k.Modules(); err == nil {
				kernels <- k // the initramfs needs the modules, not their indexes
				ms.Generate()
			}
			kern = k
		}
	})
	in.prefetch(ctx, "firmware", cfg.Firmware, nil)
	// An image that says when it was made gives the build's time before
	// its layers are read (see epoch).
	in.configured = func(c *v1.ConfigFile) {
		if !timed && c != nil && !c.Created.IsZero() {
			times <- c.Created.UTC()
			timed = true
		}
	}
	in.root, err = in.load(ctx, "root image", cfg.Source)
	in.configured = nil
	if err != nil {
		return nil, err
	}
	// The clamp known before the overlays: their identities are taken
	// with it (see loader.overlay).
	in.limit = cfg.Epoch
	if in.limit.IsZero() && in.root.Config != nil {
		in.limit = in.root.Config.Created.Time
	}
	for _, dir := range cfg.Overlays {
		if err := in.overlay(ctx, in.root.Tree, dir); err != nil {
			return nil, err
		}
	}
	in.epoch = epoch(cfg.Epoch, in.root)
	if !timed {
		times <- in.epoch
	}
	if cfg.Verity {
		if in.salt, err = in.veritySalt(cfg); err != nil {
			return nil, err
		}
		if ahead {
			in.prehash = startPrehash(in.salt, cfg.Log)
			in.prehash.add(contents(in.root.Tree, ""))
			in.prehash.addFrom(modules)
		}
	}
	if in.kernel, err = in.findKernel(ctx, cfg, &kern); err != nil {
		return nil, err
	}
	if cfg.Firmware != "" {
		fw, err := in.load(ctx, "firmware", cfg.Firmware)
		if err != nil {
			return nil, err
		}
		in.firmware = fw.Tree
	} else if len(l.Board.Firmware) > 0 || len(l.Board.Blobs) > 0 || l.Board.UKI != nil {
		in.firmware = in.root.Tree
	}
	in.root.Tree.ClampTimes(in.epoch)
	if in.kernel.Tree != in.root.Tree {
		ms, err := in.kernel.Modules()
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", cfg.Kernel, err)
		}
		if err := kernel.MergeModules(in.root.Tree, in.kernel, ms, in.epoch); err != nil {
			return nil, fmt.Errorf("merge the modules of kernel %s into the root: %w", in.kernel.Version, err)
		}
	}
	if l.Partition(boards.RoleData) != nil {
		if in.data, err = in.dataTree(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if err := in.storedIDs(); err != nil {
		return nil, err
	}
	return in, nil
}

// close stops the hashing ahead and closes the sources.
func (in *inputs) close() {
	if in.prehash != nil {
		in.prehash.finish()
	}
	if in.initrd != nil {
		in.initrd.stop()
	}
	in.loader.close()
}

// findKernel finds the kernel in the kernel source, or in the root's own
// /boot. *found is the kernel that the prefetch of the kernel source
// found, if any, once the source is loaded.
func (in *inputs) findKernel(ctx context.Context, cfg Config, found **kernel.Kernel) (*kernel.Kernel, error) {
	if cfg.Kernel == "" {
		k, err := kernel.Find(in.root.Tree)
		if errors.Is(err, kernel.ErrNoKernel) {
			return nil, fieldErr("Kernel", "root image %s has no kernel (/boot/vmlinuz-* with /lib/modules/*): give a kernel source (e.g. deb:linux-image-...-arm64.deb), or build from an image that installs a kernel", cfg.Source)
		}
		if err != nil {
			return nil, fmt.Errorf("root image %s: %w", cfg.Source, err)
		}
		return k, nil
	}
	img, err := in.load(ctx, "kernel", cfg.Kernel)
	if err != nil {
		return nil, err
	}
	if k := *found; k != nil && k.Tree == img.Tree {
		return k, nil
	}
	k, err := kernel.Find(img.Tree)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", cfg.Kernel, err)
	}
	return k, nil
}

// dataTree returns the data partition's tree: empty, or DataOverlay's
// files owned by root. The root gets a /data to mount it on, since a
// read-only root cannot make one at boot.
func (in *inputs) dataTree(ctx context.Context, cfg Config) (*fstree.Tree, error) {
	root := in.root.Tree
	if n, err := root.Lookup("data"); err != nil {
		d := fstree.NewDir(0o755)
		d.Mtime = root.Root.Mtime
		if err := root.Put("data", d, nil); err != nil {
			return nil, fmt.Errorf("root: /data for the data partition: %w", err)
		}
	} else if !n.IsDir() {
		return nil, fmt.Errorf("root image %s: /data is a %s; the data partition is mounted there", cfg.Source, n.Type)
	}
	t := fstree.New()
	t.Root.Mtime = root.Root.Mtime
	if cfg.DataOverlay != "" {
		if err := in.overlay(ctx, t, cfg.DataOverlay); err != nil {
			return nil, err
		}
	}
	t.ClampTimes(in.epoch)
	return t, nil
}

// epoch is the time of every generated file: SOURCE_DATE_EPOCH, else the
// image's creation time, else the newest mtime in the root.
func epoch(set time.Time, root *rootfs.Image) time.Time {
	if !set.IsZero() {
		return set.UTC()
	}
	return root.Created()
}

// storedIDs identifies the inputs by their trees as stored
// (rootfs.Image.StoredID), with times clamped to the epoch, not by the
// host's metadata: touching a host directory's files changes no
// identifier. An overlay's was taken, with its content, before it was
// merged.
func (in *inputs) storedIDs() error {
	for i, inp := range in.inputs {
		if inp.img == nil || inp.Role == "overlay" {
			continue
		}
		id, err := inp.img.StoredID(in.epoch)
		if err != nil {
			return fmt.Errorf("%s %s: %w", inp.Role, inp.Source, err)
		}
		in.inputs[i].ID = id
	}
	return nil
}

// veritySalt is the salt of the root's hash tree, derived as the seed is
// from the options and the inputs loaded so far: the root image and the
// overlays, not the kernel and firmware still loading, so that the root's
// files can be hashed for the tree while those load. The same inputs give
// the same salt, and the same tree.
func (in *inputs) veritySalt(cfg Config) ([]byte, error) {
	ids := slices.Clone(in.inputs)
	for i := range ids {
		if ids[i].img == in.root {
			id, err := in.root.StoredID(in.epoch)
			if err != nil {
				return nil, fmt.Errorf("root image %s: %w", cfg.Source, err)
			}
			ids[i].ID = id
		}
	}
	h := sha256.New()
	h.Write(seedOf(cfg, in.epoch, ids))
	h.Write([]byte("\x00dm-verity salt"))
	return h.Sum(nil), nil
}

// seed hashes everything that determines the image, so that identifiers
// change exactly when the inputs do.
func (in *inputs) seed(cfg Config) []byte { return seedOf(cfg, in.epoch, in.inputs) }

func seedOf(cfg Config, epoch time.Time, inputs []Input) []byte {
	h := sha256.New()
	o := cfg.Layout
	fmt.Fprintf(h, "ocidisk build 1\nboard=%s\ntable=%s\nrootfs=%s\nboot=%d\nroot=%d\nepoch=%d\ncmdline=%q\n",
		cfg.Board.Name, o.Table, o.RootFS, o.BootSize, o.RootSize, epoch.Unix(), joinArgs(cfg.CmdlineAppend))
	for _, i := range inputs {
		fmt.Fprintf(h, "%s=%s\n", i.Role, i.ID)
	}
	if o.AB || o.Data != "" || cfg.DataOverlay != "" {
		fmt.Fprintf(h, "ab=%v\ndata=%q\n", o.AB, o.Data)
	}
	if cfg.ConfigTxtAppend != "" || len(cfg.DTOverlays) > 0 {
		fmt.Fprintf(h, "config.txt=%q\ndtoverlay=%q\n", cfg.ConfigTxtAppend, cfg.DTOverlays)
	}
	if cfg.KeepIdentity || cfg.Hostname != "" || len(cfg.Users)+len(cfg.PasswordHashes)+len(cfg.AuthorizedKeys) > 0 {
		// The key files' names, not their content: a build reads them
		// after the seed is taken, and their keys change no identifier
		// a user would compare.
		fmt.Fprintf(h, "keep-identity=%v\nhostname=%q\nusers=%q\npasswords=%q\nkeys=%q\n",
			cfg.KeepIdentity, cfg.Hostname, cfg.Users, cfg.PasswordHashes, cfg.AuthorizedKeys)
	}
	if cfg.Verity {
		fmt.Fprintf(h, "verity=%v\n", cfg.Verity)
	}
	return h.Sum(nil)
}

// loader loads sources and tracks what it opened, so that it can close
// them and hash their identities.
type loader struct {
	opts source.Options
	// progress, when set, reports each load as a stage of its own,
	// "reading kernel", beside the others running at the same time.
	progress func(stage string, done, total int64)
	log      *slog.Logger
	board    string // named when an image is for another platform
	opened   []*rootfs.Image
	inputs   []Input
	// configured is the foreground load's source.Options.Configured.
	configured func(*v1.ConfigFile)
	limit      time.Time           // the clamp the build's times get, when known before overlays
	pending    map[string]*pending // prefetched loads, by spec
}

// pending is a load running in the background.
type pending struct {
	done   chan struct{}
	cancel context.CancelFunc
	img    *rootfs.Image
	err    error
}

// sourceOptions are the options of the load of what: its progress is a
// stage of its own. Without a stage reporter, only loads in the
// foreground report to opts.Progress, one at a time, as it expects.
func (ld *loader) sourceOptions(what string, background bool) source.Options {
	opts := ld.opts
	switch {
	case ld.progress != nil:
		opts.Progress = func(done, total int64) { ld.progress("reading "+what, done, total) }
	case background:
		opts.Progress = nil
	}
	if !background {
		opts.Configured = ld.configured
	}
	return opts
}

// prefetch starts loading spec, the source of what, in the background;
// the first load of spec waits for it, and for then, which a successful
// load runs next in the background (nil: nothing).
func (ld *loader) prefetch(ctx context.Context, what, spec string, then func(*rootfs.Image)) {
	if spec == "" || ld.pending[spec] != nil {
		return
	}
	if ld.pending == nil {
		ld.pending = map[string]*pending{}
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &pending{done: make(chan struct{}), cancel: cancel}
	ld.pending[spec] = p
	opts := ld.sourceOptions(what, true)
	go func() {
		defer close(p.done)
		p.img, p.err = rootfs.Load(ctx, spec, opts)
		if p.err == nil && then != nil {
			then(p.img)
		}
	}()
}

// load loads spec, or takes its prefetched load. Identifiers are recorded
// in the order of the calls, whatever finished first, so that the seed is
// the same from build to build.
func (ld *loader) load(ctx context.Context, what, spec string) (*rootfs.Image, error) {
	ld.log.Info("loading "+what, "source", spec)
	var (
		img *rootfs.Image
		err error
	)
	if p := ld.pending[spec]; p != nil {
		delete(ld.pending, spec)
		<-p.done
		p.cancel()
		img, err = p.img, p.err
	} else {
		img, err = rootfs.Load(ctx, spec, ld.sourceOptions(what, false))
	}
	var pe *source.PlatformError
	if errors.As(err, &pe) {
		// A single-platform image of another architecture: say which
		// board asked for the platform, and why it must be that one.
		return nil, fmt.Errorf("%s: %w, the platform of board %s (its kernel and init run %s)", what, err, ld.board, pe.Want.Architecture)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ld.opened = append(ld.opened, img)
	ld.inputs = append(ld.inputs, Input{Role: what, Source: spec, ID: img.ID, img: img})
	return img, nil
}

// close closes what the loader opened, stopping prefetches no step took.
func (ld *loader) close() {
	for _, p := range ld.pending {
		p.cancel()
		<-p.done
		if p.img != nil {
			p.img.Close()
		}
	}
	ld.pending = nil
	for _, img := range ld.opened {
		img.Close()
	}
	ld.opened = nil
}

// overlay merges host directory dir over t, owned by root: an overlay
// comes from a user's checkout, and its owner there means nothing on the
// board.
func (ld *loader) overlay(ctx context.Context, t *fstree.Tree, dir string) error {
	img, err := ld.load(ctx, "overlay", "dir:"+dir)
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
	// Its identity is its tree as the image stores it (root-owned, times
	// clamped), taken now: the merge consumes it. Content included: an
	// overlay is small, and edited in place (a marker, a setting of the
	// same length) as often as not.
	id, err := img.Tree.Fingerprint(ld.limit, true)
	if err != nil {
		return fmt.Errorf("overlay %s: %w", dir, err)
	}
	ld.inputs[len(ld.inputs)-1].ID = id
	if err := fstree.Merge(t, "", img.Tree); err != nil {
		return fmt.Errorf("overlay %s: %w", dir, err)
	}
	return nil
}
