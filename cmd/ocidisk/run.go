package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/diskimage/qcow2"
	"github.com/ocidisk/ocidisk/inspect/ptable"
	"github.com/ocidisk/ocidisk/internal/compression"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/spf13/cobra"
)

// defaultBoard is the board run and test assume: the one QEMU emulates.
const defaultBoard = "qemu-virt-arm64"

func runCommand(e *env) *cobra.Command {
	var a qemuArgs
	opts := inOrder(a.options(qemu.NetUser), "board", "net", "publish", "mem", "cpus", "qemu-arg")
	c := &cobra.Command{
		Use:   "run [flags] IMAGE",
		Short: "boot an image under QEMU with its serial console on the terminal (Ctrl-A X quits)",
		Args:  exactArgs(1, "one IMAGE"),
		RunE:  func(c *cobra.Command, args []string) error { return runRun(c.Context(), e, &a, args[0]) },
	}
	declare(c.Flags(), opts)
	return withSynopsis(c, opts, "IMAGE")
}

// qemuArgs are the options run and test share.
type qemuArgs struct {
	board, bios       string
	writable, tryboot bool
	net               string
	publish           []string
	mem, cpus         int
	extra             []string
	// opts are the options as declared, which name the qemu.Config
	// fields that library errors name.
	opts []option
}

// options declares the shared options; the network is net unless asked.
func (q *qemuArgs) options(net qemu.Net) []option {
	var nets []string
	for _, n := range qemu.Nets {
		nets = append(nets, string(n))
	}
	q.opts = []option{
		{flag: "board", arg: "B", usage: "board name (see ocidisk boards) or board file", value: newString(&q.board, defaultBoard, nil)},
		{flag: "net", arg: "user|none", usage: "the guest's network: user (a network card on QEMU's user-mode network; the host is 10.0.2.2) or none",
			value: newChoice(&q.net, string(net), nets, nil), field: "Net"},
		{flag: "publish", arg: "[IP:]HOST:GUEST", usage: "forward TCP port HOST of the host (on IP, 127.0.0.1 unless given) to port GUEST of the guest (repeatable)",
			value: newList(&q.publish, func(s string) error { _, err := qemu.ParsePublish(s); return err }), field: "Publish"},
		{flag: "mem", arg: "M", usage: "the guest's memory in MiB, or a size such as 2GiB, instead of the board's", value: newMiB(&q.mem, 0), field: "Memory"},
		{flag: "cpus", arg: "N", usage: "the guest's number of CPUs instead of the board's", value: newCount(&q.cpus, 0), field: "CPUs"},
		{flag: "qemu-arg", arg: "A", usage: "an argument added at the end of QEMU's command line (repeatable)", value: newList(&q.extra, nil), field: "ExtraArgs"},
		{flag: "bios", arg: "FILE", usage: "firmware for QEMU's -bios instead of the board's (e.g. a U-Boot build)", value: newString(&q.bios, "", nil)},
		{flag: "writable", usage: "attach IMAGE itself, not a snapshot: what the guest writes stays (first-boot growth, updates)", value: newBool(&q.writable, false)},
		{flag: "tryboot", usage: "Raspberry Pi boards: boot as after reboot \"0 tryboot\" (the [tryboot] sections of autoboot.txt and config.txt)", value: newBool(&q.tryboot, false)},
	}
	return q.opts
}

// config loads the board, checks that it can be booted under QEMU and
// builds the boot's configuration; what the options ask of QEMU is checked
// by the library, and its errors name the option.
func (q *qemuArgs) config(image string) (*boards.Board, qemu.Config, error) {
	b, err := boards.Load(q.board)
	if errors.Is(err, boards.ErrUnknown) {
		return nil, qemu.Config{}, usageError{err}
	}
	if err != nil {
		return nil, qemu.Config{}, err
	}
	if b.QEMU == nil {
		return nil, qemu.Config{}, fmt.Errorf("board %s has no QEMU profile", b.Name)
	}
	l, err := b.Layout(boards.LayoutOptions{})
	if err != nil {
		return nil, qemu.Config{}, err
	}
	cfg := qemu.Config{Profile: b.QEMU, Image: image, BIOS: q.bios, BootPartition: l.Partition(boards.RoleBoot).Number,
		Writable: q.writable, Tryboot: q.tryboot, Net: qemu.Net(q.net), Memory: q.mem, CPUs: q.cpus, ExtraArgs: q.extra}
	for _, s := range q.publish {
		p, err := qemu.ParsePublish(s) // checked when parsed
		if err != nil {
			return nil, qemu.Config{}, usageError{fmt.Errorf("--publish: %w", err)}
		}
		cfg.Publish = append(cfg.Publish, p)
	}
	if err := cfg.Validate(); err != nil {
		return nil, qemu.Config{}, qemuOptionError(err, q.opts)
	}
	// The options are the command line's; the image is checked once they are right.
	if err := checkBootable(image, b, l.Partition(boards.RoleBoot).Number); err != nil {
		return nil, qemu.Config{}, err
	}
	return b, cfg, nil
}

// qemuOptionError names the option behind a library error about a field
// of qemu.Config or qemu.TestOptions: a usage error.
func qemuOptionError(err error, opts []option) error {
	field, ok := qemu.IsConfigError(err)
	if !ok {
		return err
	}
	if o := byField(opts, field); o != nil {
		return usageError{fmt.Errorf("--%s: %w", o.flag, err)}
	}
	return usageError{err}
}

func runRun(ctx context.Context, e *env, q *qemuArgs, image string) error {
	b, cfg, err := q.config(image)
	if err != nil {
		return err
	}
	cfg.Log = e.log
	if _, err := os.Stat(cfg.Image); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if e.tty {
		how := "the image is not modified; Ctrl-A X quits"
		if cfg.Writable {
			how = "the guest writes to the image; Ctrl-A X quits"
		}
		fmt.Fprintf(e.stderr, "ocidisk: booting %s on QEMU %s (%s)\n", cfg.Image, b.QEMU.Machine, how)
		for _, p := range cfg.Publish {
			fmt.Fprintf(e.stderr, "ocidisk: the guest's port %d is published on %s:%d\n", p.GuestPort, p.Host(), p.HostPort)
		}
		if b.QEMU.Note != "" {
			fmt.Fprintln(e.stderr, "ocidisk: note:", b.QEMU.Note)
		}
	}
	return qemu.Run(ctx, cfg, e.stdin, e.stdout, e.stderr)
}

// checkBootable refuses, before QEMU starts, an image the board cannot
// boot from: compressed, without a partition table, or without the
// partition (boot, a number) the board boots from. Otherwise the firmware
// would wait at its prompt until the timeout.
func checkBootable(image string, b *boards.Board, boot int) error {
	f, err := os.Open(image)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil // a block device: QEMU reads it as it is
	}
	var disk io.ReaderAt = f
	size := st.Size()
	q, err := qcow2.OpenIfQcow2(f)
	if err != nil {
		return fmt.Errorf("image %s: %w", image, err)
	}
	if q != nil {
		disk, size = q, q.Size()
	} else if format, err := compression.SniffAt(f); err == nil && format != compression.None {
		return fmt.Errorf("image %s is compressed (%v): decompress it first, QEMU boots a raw or qcow2 image", image, format)
	}
	t, err := ptable.Read(disk, size)
	if errors.Is(err, ptable.ErrNoTable) {
		return fmt.Errorf("image %s has no partition table: not a disk image (ocidisk build writes one)", image)
	}
	if err != nil {
		return fmt.Errorf("image %s: partition table: %w", image, err)
	}
	for _, p := range t.Partitions {
		if p.Number == boot {
			return nil
		}
	}
	return fmt.Errorf("image %s has no partition %d, which board %s boots from (its %s table has %d partitions)",
		image, boot, b.Name, t.Type, len(t.Partitions))
}
