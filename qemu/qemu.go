// Package qemu boots disk images under qemu-system-aarch64 the way a
// board's QEMU profile says: machine, CPU, memory, how the image is
// attached (always as a snapshot, so the image is never modified), and the
// firmware. For U-Boot boards it generates the pflash environment that
// makes U-Boot boot at once from the image.
//
// Run boots interactively with the serial console on the terminal; Test
// boots unattended and passes when the expected lines appear on the
// console in order, failing on timeout, kernel panic or a failure reported
// by ocidisk's initramfs init.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
)

// Config is one boot of an image.
type Config struct {
	// Profile is the board's QEMU profile.
	Profile *boards.QEMU
	// Image is the disk image; QEMU opens it as a snapshot.
	Image string
	// BIOS overrides the profile's firmware path.
	BIOS string
	// Log receives progress; nil discards.
	Log *slog.Logger
}

// VM is a prepared boot: the command line and the temporary files it
// needs. Close removes them.
type VM struct {
	Binary string
	Args   []string
	dir    string
}

// Close removes the VM's temporary files.
func (v *VM) Close() error {
	if v.dir == "" {
		return nil
	}
	err := os.RemoveAll(v.dir)
	v.dir = ""
	return err
}

// Prepare checks that the host has QEMU and the firmware, writes the U-Boot
// environment flash into a temporary directory and returns the command
// line.
func Prepare(cfg Config) (*VM, error) {
	p := cfg.Profile
	if p == nil {
		return nil, errors.New("the board has no QEMU profile")
	}
	st, err := os.Stat(cfg.Image)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", cfg.Image, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("image %s: not a regular file", cfg.Image)
	}
	bin, err := exec.LookPath(p.Binary)
	if err != nil {
		hint := ""
		if p.Package != "" {
			hint = fmt.Sprintf(" (install the Debian package %s)", p.Package)
		}
		return nil, fmt.Errorf("%s not found%s", p.Binary, hint)
	}
	v := &VM{Binary: bin}
	bios, flash := "", ""
	if fw := p.Firmware; fw != nil {
		bios = fw.BIOS
		if cfg.BIOS != "" {
			bios = cfg.BIOS
		}
		uboot, err := os.ReadFile(bios)
		if err != nil {
			if cfg.BIOS == "" && errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("firmware %s not found: install the Debian package %s, or give --bios FILE", bios, fw.Package)
			}
			return nil, fmt.Errorf("firmware: %w", err)
		}
		env, err := DefaultEnv(uboot)
		if err != nil {
			return nil, fmt.Errorf("firmware %s: %w", bios, err)
		}
		img, err := EnvImage(SetEnv(env, fw.Env), int(fw.EnvSize))
		if err != nil {
			return nil, fmt.Errorf("firmware %s: %w", bios, err)
		}
		if v.dir, err = os.MkdirTemp("", "ocidisk-qemu-"); err != nil {
			return nil, err
		}
		flash = filepath.Join(v.dir, "uboot-env.img")
		if err := writeFlash(flash, img, int64(fw.FlashSize)); err != nil {
			v.Close()
			return nil, err
		}
	}
	v.Args = Args(p, cfg.Image, bios, flash)
	return v, nil
}

// writeFlash writes a pflash bank of size bytes with img at its start;
// the rest is a hole.
func writeFlash(path string, img []byte, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(img); err != nil {
		f.Close()
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Args returns QEMU's arguments for a profile: the machine, the serial
// console on stdio (-nographic), no reboot (a reboot ends QEMU), no
// network, the firmware and its environment flash, and the image as a
// snapshot.
func Args(p *boards.QEMU, image, bios, envFlash string) []string {
	a := []string{"-M", p.Machine}
	if p.CPU != "" {
		a = append(a, "-cpu", p.CPU)
	}
	if p.SMP > 0 {
		a = append(a, "-smp", strconv.Itoa(p.SMP))
	}
	if p.Memory > 0 {
		a = append(a, "-m", strconv.Itoa(p.Memory))
	}
	if p.Accel != "" {
		a = append(a, "-accel", p.Accel)
	}
	a = append(a, "-nographic", "-no-reboot", "-nic", "none")
	if bios != "" {
		a = append(a, "-bios", bios)
	}
	if envFlash != "" {
		a = append(a, "-drive", "if=pflash,unit=1,format=raw,file="+optEscape(envFlash))
	}
	a = append(a, "-drive", "if="+p.Drive+",format=raw,snapshot=on,file="+optEscape(image))
	return append(a, p.Args...)
}

// optEscape escapes commas in a QEMU option value.
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// Run boots the image with the serial console on the given streams (the
// terminal, for a person: Ctrl-A X quits as in QEMU) and waits for QEMU to
// exit.
func Run(ctx context.Context, cfg Config, stdin io.Reader, stdout, stderr io.Writer) error {
	v, err := Prepare(cfg)
	if err != nil {
		return err
	}
	defer v.Close()
	cmd := exec.CommandContext(ctx, v.Binary, v.Args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	logger(cfg).Debug("qemu", "cmd", v.Binary+" "+strings.Join(v.Args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(v.Binary), err)
	}
	return nil
}

func logger(cfg Config) *slog.Logger {
	if cfg.Log != nil {
		return cfg.Log
	}
	return slog.New(slog.DiscardHandler)
}
