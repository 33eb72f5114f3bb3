package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/spf13/cobra"
)

// defaultBoard is the board run and test assume: the one QEMU emulates.
const defaultBoard = "qemu-virt-arm64"

func runCommand(e *env) *cobra.Command {
	var a qemuArgs
	opts := a.options()
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
}

func (q *qemuArgs) options() []option {
	return []option{
		{flag: "board", arg: "B", usage: "board name (see ocidisk boards) or board file", value: newString(&q.board, defaultBoard, nil)},
		{flag: "bios", arg: "FILE", usage: "firmware for QEMU's -bios instead of the board's (e.g. a U-Boot build)", value: newString(&q.bios, "", nil)},
		{flag: "writable", usage: "attach IMAGE itself, not a snapshot: what the guest writes stays (first-boot growth, updates)", value: newBool(&q.writable, false)},
		{flag: "tryboot", usage: "Raspberry Pi boards: boot as after reboot \"0 tryboot\" (the [tryboot] sections of autoboot.txt and config.txt)", value: newBool(&q.tryboot, false)},
	}
}

// config loads the board and checks that it can be booted under QEMU.
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
	return b, qemu.Config{Profile: b.QEMU, Image: image, BIOS: q.bios, BootPartition: l.Partition(boards.RoleBoot).Number,
		Writable: q.writable, Tryboot: q.tryboot}, nil
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
		fmt.Fprintln(e.stderr, "ocidisk: booting", cfg.Image, "on QEMU", b.QEMU.Machine, "(the image is not modified; Ctrl-A X quits)")
		if b.QEMU.Note != "" {
			fmt.Fprintln(e.stderr, "ocidisk: note:", b.QEMU.Note)
		}
	}
	return qemu.Run(ctx, cfg, e.stdin, e.stdout, e.stderr)
}
