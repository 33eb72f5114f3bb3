package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/spf13/pflag"
)

// defaultBoard is the board run and test assume: the one QEMU emulates.
const defaultBoard = "qemu-virt-arm64"

func runCommand() command {
	return command{
		name:    "run",
		args:    "[--board B] [--bios FILE] [--writable] [--tryboot] IMAGE",
		summary: "boot an image under QEMU with its serial console on the terminal (Ctrl-A X quits)",
		run:     runRun,
	}
}

// qemuFlags are the flags run and test share.
type qemuFlags struct {
	board, bios       string
	writable, tryboot bool
}

func (q *qemuFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&q.board, "board", defaultBoard, "board name (see ocidisk boards) or board file")
	fs.StringVar(&q.bios, "bios", "", "firmware for QEMU's -bios instead of the board's (e.g. a U-Boot build)")
	fs.BoolVar(&q.writable, "writable", false, "attach IMAGE itself, not a snapshot: what the guest writes stays (first-boot growth, updates)")
	fs.BoolVar(&q.tryboot, "tryboot", false, "Raspberry Pi boards: boot as after reboot \"0 tryboot\" (the [tryboot] sections of autoboot.txt and config.txt)")
}

// config loads the board and checks that it can be booted under QEMU.
func (q *qemuFlags) config(image string) (*boards.Board, qemu.Config, error) {
	b, err := boards.Load(q.board)
	if err != nil {
		return nil, qemu.Config{}, err
	}
	if b.QEMU == nil {
		return nil, qemu.Config{}, fmt.Errorf("board %s has no QEMU profile", b.Name)
	}
	return b, qemu.Config{Profile: b.QEMU, Image: image, BIOS: q.bios, BootPartition: b.PartitionNumber(boards.RoleBoot),
		Writable: q.writable, Tryboot: q.tryboot}, nil
}

func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run")
	var q qemuFlags
	q.add(fs)
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one IMAGE, got %d arguments", fs.NArg())
	}
	b, cfg, err := q.config(fs.Arg(0))
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
