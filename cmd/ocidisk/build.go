package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/bytesize"
	"github.com/ocidisk/ocidisk/pipeline"
	"github.com/ocidisk/ocidisk/provision"
	"github.com/ocidisk/ocidisk/source"
)

// buildArgs are ocidisk build's options, as parsed.
type buildArgs struct {
	cfg      pipeline.Config
	board    string
	platform string
	// configTxt are --config-txt-append values: text, or @FILE.
	configTxt []string
	file      string
	asJSON    bool
}

// compressions are the --compress formats (and the words that name them
// too), in the order help lists them.
var (
	compressions       = []string{"none", "gz", "xz", "zstd"}
	compressionAliases = map[string]string{"": "none", "gzip": "gz", "zst": "zstd"}
)

// buildOptions declares every option of ocidisk build once: flag, build
// file key, synopsis, help, default, parsing, and the pipeline.Config
// field it sets.
func buildOptions(a *buildArgs) []option {
	c := &a.cfg
	rootFS := make([]string, 0, 4)
	for _, f := range boards.RootFilesystems() {
		rootFS = append(rootFS, string(f))
	}
	auto := map[string]int64{"auto": boards.Auto}
	rootSizes := map[string]int64{"auto": boards.Auto, "grow": boards.Grow}
	return []option{
		{flag: "board", key: "board", arg: "B|FILE", field: "Board", path: boardRef,
			usage: "board name (see ocidisk boards) or board file", value: newString(&a.board, defaultBoard, nil)},
		{flag: "platform", key: "platform", arg: "P", field: "Sources.Platform",
			usage: "platform to pick from an image index (default: the board's, linux/arm64 or linux/arm/v7)", value: newString(&a.platform, "", nil)},
		{flag: "kernel", key: "kernel", arg: "SRC", field: "Kernel", path: specPath,
			usage: "kernel source (deb:linux-image-...deb, an OCI image, dir:DIR); default: the root image's /boot", value: newString(&c.Kernel, "", nil)},
		{flag: "firmware", key: "firmware", arg: "SRC", field: "Firmware", path: specPath,
			usage: "boot firmware source for boards that need it; default: the root image's", value: newString(&c.Firmware, "", nil)},
		{flag: "overlay", key: "overlays", arg: "DIR", field: "Overlays", path: filePath,
			usage: "directory merged over the root filesystem, files owned by root (repeatable)", value: newList(&c.Overlays, nil)},
		{flag: "boot-overlay", key: "boot-overlays", arg: "DIR", field: "BootOverlays", path: filePath,
			usage: "directory merged over the boot partition (repeatable)", value: newList(&c.BootOverlays, nil)},
		{flag: "table", key: "table", arg: "mbr|gpt", field: "Layout.Table",
			usage: "partition table: mbr or gpt (default: the board's)", value: newChoice(&c.Layout.Table, "", boards.Tables(), nil)},
		{flag: "boot-size", key: "partitions.boot.size", arg: "S|auto", field: "Layout.BootSize",
			usage: "boot partition size, e.g. 256MiB, or auto (default: the board's)", value: newSize(&c.Layout.BootSize, 0, "a size such as 256MiB", auto)},
		{flag: "root-size", key: "partitions.root.size", arg: "S|auto|grow", field: "Layout.RootSize",
			usage: "root partition size, e.g. 2GiB; auto; or grow: auto, then grown with its ext4 to fill the card on first boot (default: the board's; grow on the Pi boards)",
			value: newSize(&c.Layout.RootSize, 0, "a size such as 512MiB or 2GiB", rootSizes)},
		{flag: "root-fs", key: "partitions.root.fs", arg: strings.Join(rootFS, "|"), field: "Layout.RootFS",
			usage: "root filesystem: ext4, squashfs for a compressed read-only root, or erofs for an uncompressed read-only one (default: the board's)", value: newChoice((*string)(&c.Layout.RootFS), "", rootFS, nil)},
		{flag: "verity", key: "partitions.root.verity", field: "Verity",
			usage: "verify the read-only root (erofs or squashfs) with dm-verity: a hash tree after its filesystem, its root hash on the kernel command line", value: newBool(&c.Verity, false)},
		{flag: "cmdline-append", key: "cmdline-append", arg: "STR", field: "CmdlineAppend",
			usage: "kernel arguments appended to the board's command line (repeatable)", value: newList(&c.CmdlineAppend, pipeline.CheckCmdlineArg)},
		{flag: "config-txt-append", key: "config-txt-append", arg: "TEXT|@FILE", field: "ConfigTxtAppend", path: filePath,
			usage: "lines added to config.txt under [all]: TEXT, or @FILE to read them from FILE (repeatable)", value: newList(&a.configTxt, nil)},
		{flag: "dtoverlay", key: "dtoverlays", arg: "NAME[,params]", field: "DTOverlays",
			usage: "add dtoverlay=NAME[,params] to config.txt; overlays/NAME.dtbo must be on the boot partition (repeatable)", value: newList(&c.DTOverlays, nil)},
		{flag: "ab", key: "partitions.ab", field: "Layout.AB",
			usage: "two root slots of equal size (A/B), mounted read-only with /etc and /var overlaid; the board's firmware picks one", value: newBool(&c.Layout.AB, false)},
		{flag: "data", key: "partitions.data.size", arg: "SIZE|grow", field: "Layout.Data",
			usage: "an ext4 data partition, last on the disk, mounted on /data: SIZE, or grow to fill the card on first boot (none: no data partition)",
			value: newString(&c.Layout.Data, "", func(s string) error { _, _, err := boards.ParseData(s); return err })},
		{flag: "data-overlay", key: "partitions.data.overlay", arg: "DIR", field: "DataOverlay", path: filePath,
			usage: "directory copied onto the data partition, files owned by root", value: newString(&c.DataOverlay, "", nil)},
		{flag: "hostname", key: "hostname", arg: "NAME", field: "Hostname",
			usage: "the device's host name: /etc/hostname and the 127.0.1.1 line of /etc/hosts", value: newString(&c.Hostname, "", provision.CheckHostname)},
		{flag: "user", key: "users", arg: "NAME", field: "Users",
			usage: "add a user as Debian's adduser does (uid from 1000, a home, bash or sh), in the sudo group when the root has one (repeatable)",
			value: newList(&c.Users, provision.CheckUserName)},
		{flag: "password-hash", key: "password-hashes", arg: "USER:HASH", field: "PasswordHashes", secret: true,
			usage: "give USER (a --user, root, or a user of the root) a password as a crypt(3) hash, e.g. from mkpasswd -m yescrypt (repeatable)",
			value: newList(&c.PasswordHashes, func(s string) error { _, err := provision.ParsePassword(s); return err })},
		{flag: "ssh-authorized-key", key: "ssh-authorized-keys", arg: "USER:FILE", field: "AuthorizedKeys", path: userFilePath,
			usage: "let the SSH public keys in FILE log in as USER: ~/.ssh/authorized_keys (repeatable)",
			value: newList(&c.AuthorizedKeys, func(s string) error { _, _, err := provision.ParseUserFile(s); return err })},
		{flag: "keep-identity", key: "keep-identity", field: "KeepIdentity",
			usage: "keep the root's SSH host keys, random seed and machine ID (every card then shares them); by default each device makes its own on first boot",
			value: newBool(&c.KeepIdentity, false)},
		{flag: "force-arch", key: "force-arch", field: "ForceArch",
			usage: "build a root whose programs are for another machine than the board's", value: newBool(&c.ForceArch, false)},
		{flag: "slot-image", key: "output.slot-image", arg: "OUT.root", field: "SlotImage", path: filePath,
			usage: "write the root filesystem alone to OUT.root (and its SHA-256 to OUT.root.sha256), an update for the other slot; no disk image unless -o is given",
			value: newString(&c.SlotImage, "", notStdout)},
		{flag: "output", short: "o", key: "output.path", arg: "OUT.img", field: "Output", path: filePath,
			usage: "output image (default: BOARD.img)", value: newString(&c.Output, "", notStdout)},
		{flag: "bmap", key: "output.bmap", field: "Bmap",
			usage: "also write OUT.bmap, the block map bmaptool and ocidisk flash use", value: newBool(&c.Bmap, false)},
		{flag: "compress", key: "output.compress", arg: strings.Join(compressions, "|"), field: "Compress",
			usage: "also compress the image: none, gz, xz or zstd (writes OUT.gz|.xz|.zst beside OUT)", value: newChoice(&c.Compress, "none", compressions, compressionAliases)},
		{flag: "format", key: "output.format", arg: strings.Join(diskimage.Formats(), "|"), field: "Format",
			usage: "image format: raw, or qcow2 for QEMU (written from the raw image, which is not kept; no --bmap or --compress)",
			value: newChoice(&c.Format, diskimage.FormatRaw, diskimage.Formats(), nil)},
		{flag: "keep-raw", key: "output.keep-raw", field: "KeepRaw",
			usage: "with --compress, keep the uncompressed OUT too; --keep-raw=false writes only the compressed file", value: newBool(&c.KeepRaw, true)},
		{flag: "json", usage: "print the result as JSON: outputs, sizes, partitions and their PARTUUIDs, the inputs' digests", value: newBool(&a.asJSON, false)},
		{flag: "file", short: "f", arg: "ocidisk.yaml",
			usage: "build file (default: ocidisk.yaml in the current directory, if there is one); flags override it", value: newString(&a.file, "", nil)},
	}
}

func buildCommand(e *env) *cobra.Command {
	var a buildArgs
	opts := buildOptions(&a)
	c := &cobra.Command{
		Use:   "build [flags] [SOURCE]",
		Short: "build a bootable disk image for a board from an OCI image",
		Args:  cobra.MaximumNArgs(1),
		RunE:  func(c *cobra.Command, args []string) error { return runBuild(c, e, &a, opts, args) },
	}
	declare(c.Flags(), opts)
	return withSynopsis(c, opts, "[SOURCE]")
}

func runBuild(c *cobra.Command, e *env, a *buildArgs, opts []option, args []string) error {
	bf, err := readBuildFile(a.file, opts, os.LookupEnv)
	if err != nil {
		return err
	}
	src := ""
	if bf != nil {
		e.log.Info("using build file", "file", bf.name)
		if err := bf.apply(c.Flags()); err != nil {
			return err
		}
		src = bf.source
	}
	if len(args) == 1 {
		src = args[0]
	}
	if src == "" {
		return usageError{errNoSource}
	}
	cfg := &a.cfg
	cfg.Source = src
	b, err := boards.Load(a.board)
	if errors.Is(err, boards.ErrUnknown) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	cfg.Board = b
	if cfg.Output == "" && cfg.SlotImage == "" {
		cfg.Output = b.Name + ".img"
	}
	if cfg.ConfigTxtAppend, err = readConfigTxtAppend(a.configTxt); err != nil {
		return err
	}
	if cfg.Epoch, err = sourceDateEpoch(); err != nil {
		return usagef("%v", err)
	}
	cfg.Log = e.log
	cfg.Sources = source.Options{Platform: a.platform, Log: e.log}
	if cfg.Sources.Platform == "" {
		cfg.Sources.Platform = pipeline.Platform(b)
	}
	if p := e.progress(); p != nil {
		cfg.Progress = p.update
	}
	res, err := pipeline.Build(c.Context(), *cfg)
	if p := e.progress(); p != nil {
		p.done()
	}
	if err != nil {
		return optionError(err, opts, bf)
	}
	switch {
	case a.asJSON:
		return writeJSON(e.stdout, buildResultJSON(res))
	case !e.quiet:
		printBuildResult(e, res)
	}
	return nil
}

// buildJSON is what ocidisk build --json prints.
type buildJSON struct {
	// Image, Bmap and Compressed are the outputs written, "" for none.
	Image      string         `json:"image"`
	Format     string         `json:"format"`
	Bmap       string         `json:"bmap"`
	Compressed string         `json:"compressed"`
	Size       int64          `json:"size"`
	Table      string         `json:"table"`
	DiskID     string         `json:"disk_id"`
	Kernel     string         `json:"kernel"`
	Cmdline    string         `json:"cmdline"`
	Partitions []partitionOut `json:"partitions"`
	SlotImage  *slotImageJSON `json:"slot_image"`
	Verity     *verityJSON    `json:"verity"`
	Inputs     []inputJSON    `json:"inputs"`
}

// verityJSON is the root's dm-verity hash tree: its root hash, the kernel
// arguments naming it and the file beside the slot image holding them.
type verityJSON struct {
	RootHash string `json:"root_hash"`
	Args     string `json:"args"`
	ArgsFile string `json:"args_file,omitempty"`
}

type partitionOut struct {
	Number   int    `json:"number"`
	Name     string `json:"name"`
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	PartUUID string `json:"partuuid"`
}

type slotImageJSON struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type inputJSON struct {
	Role   string `json:"role"`
	Source string `json:"source"`
	Digest string `json:"digest"`
}

func buildResultJSON(res *pipeline.Result) buildJSON {
	j := buildJSON{Kernel: res.KernelVersion, Cmdline: res.Cmdline, Partitions: []partitionOut{}, Inputs: []inputJSON{}}
	if d := res.Result; d != nil {
		j.Image, j.Format, j.Bmap, j.Compressed, j.Size, j.Table, j.DiskID = d.Image, d.Format, d.Bmap, d.Compressed, d.Size, string(d.Table), d.DiskID
		for _, p := range d.Partitions {
			j.Partitions = append(j.Partitions, partitionOut{p.Number, p.Name, p.Start, p.Size, p.Type, p.PartUUID})
		}
	}
	if s := res.SlotImage; s != nil {
		j.SlotImage = &slotImageJSON{s.Path, s.Size, s.SHA256}
	}
	if v := res.Verity; v != nil {
		j.Verity = &verityJSON{v.RootHash, v.Args, v.ArgsPath}
	}
	for _, i := range res.Inputs {
		j.Inputs = append(j.Inputs, inputJSON{i.Role, i.Source, i.ID})
	}
	return j
}

// optionError names the option behind a library error about a
// pipeline.Config field: the flag, or the build file's line that set it.
// Errors in how a source is named are usage errors.
func optionError(err error, opts []option, bf *buildFile) error {
	if errors.Is(err, source.ErrUsage) {
		return usageError{err}
	}
	if field, ok := pipeline.IsConfigError(err); ok {
		if o := byField(opts, field); o != nil {
			if w := bf.where(o); w != "" {
				err = fmt.Errorf("%s: %w", w, err)
			} else {
				err = fmt.Errorf("--%s: %w", o.flag, err)
			}
		}
	}
	// What the root lacks for the command line (a user to give a key
	// to) is the command line's mistake.
	if errors.Is(err, provision.ErrUsage) || errors.Is(err, pipeline.ErrUsage) {
		return usageError{err}
	}
	return err
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

func printBuildResult(e *env, res *pipeline.Result) {
	if s := res.SlotImage; s != nil {
		fmt.Fprintf(e.stdout, "%s: root filesystem for a slot, %s, sha256 %s (%s)\n", s.Path, bytesize.Human(s.Size), s.SHA256, s.SumPath)
		if v := res.Verity; v != nil {
			fmt.Fprintf(e.stdout, "  dm-verity root hash %s, kernel arguments in %s\n", v.RootHash, v.ArgsPath)
		}
	}
	if res.Result == nil {
		return
	}
	out := res.Image
	if res.Compressed != "" {
		out = res.Compressed
	}
	kind := string(res.Table)
	if res.Format != "" && res.Format != diskimage.FormatRaw {
		kind = res.Format + ", " + kind
	}
	fmt.Fprintf(e.stdout, "%s: %s image, %s, kernel %s\n", out, kind, bytesize.Human(res.Size), res.KernelVersion)
	for _, p := range res.Partitions {
		fmt.Fprintf(e.stdout, "  %d %-6s %9s at %9s  PARTUUID=%s\n", p.Number, p.Name, bytesize.Human(p.Size), bytesize.Human(p.Start), p.PartUUID)
	}
	if v := res.Verity; v != nil {
		fmt.Fprintf(e.stdout, "  dm-verity root hash %s, its tree at byte %d of the root partition\n", v.RootHash, v.HashOffset)
	}
	if res.Bmap != "" {
		fmt.Fprintf(e.stdout, "  block map %s (%s mapped)\n", res.Bmap, bytesize.Human(res.Mapped))
	}
}

// notStdout refuses "-" as an output path: disk images and filesystems
// are written with seeks, not streamed.
func notStdout(s string) error {
	if s == "-" {
		return errors.New("- (stdout): disk images and filesystems are written with seeks, not streamed; give a path")
	}
	return nil
}
