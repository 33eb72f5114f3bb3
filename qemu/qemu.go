// Package qemu boots disk images under qemu-system-aarch64 the way a
// board's QEMU profile says: machine, CPU, memory, how the image is
// attached (as a snapshot, so the image is never modified, unless a test
// asks for it writable), and
// what starts the kernel. For U-Boot boards it generates the pflash
// environment that makes U-Boot boot at once from the image. For boards
// whose boot firmware QEMU cannot run (a Raspberry Pi's GPU firmware, a
// SoC's U-Boot), it stands in for the firmware: it reads config.txt and
// cmdline.txt, or extlinux.conf, from the image's boot partition and has
// QEMU load the kernel, initramfs and device tree they name.
//
// A boot has no network unless asked (Config.Net): then a network card on
// QEMU's user-mode network, with host ports published to the guest. It
// runs under KVM when the host can (an aarch64 guest on an arm64 host),
// else under TCG as the profile says.
//
// Run boots interactively with the serial console on the terminal; Test
// boots unattended and passes when the expected lines appear on the
// console in order, failing on timeout, kernel panic or a failure reported
// by ocidisk's initramfs init. It can then log in on the serial console
// and run commands in the guest's shell, judged by their exit status.
package qemu

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	// BootPartition is the number (from 1) of the image's boot partition,
	// where a direct boot reads config.txt or extlinux.conf; 0 means 1.
	// For a config.txt boot, an autoboot.txt there names the partition
	// to boot instead, as the Raspberry Pi bootloader reads it.
	BootPartition int
	// Tryboot boots as after `reboot "0 tryboot"` on a Raspberry Pi: the
	// [tryboot] sections of autoboot.txt and config.txt apply, and
	// without tryboot_a_b the firmware reads tryboot.txt for config.txt.
	Tryboot bool
	// Writable attaches the image itself, not a snapshot of it: what the
	// guest writes stays (a test of first-boot changes, on a copy it
	// made). An SD card's image must then have a power-of-two size.
	Writable bool
	// Net is the guest's network: NetNone when empty.
	Net Net
	// Publish forwards host ports to the guest (Net must be NetUser).
	Publish []Publish
	// Memory (MiB) and CPUs replace the profile's when not 0.
	Memory, CPUs int
	// ExtraArgs are appended to QEMU's command line, last.
	ExtraArgs []string
	// Log receives progress; nil discards.
	Log *slog.Logger
}

// Boot is what a boot puts on QEMU's command line besides the profile.
type Boot struct {
	// Image is the disk QEMU attaches, as a snapshot unless Writable;
	// Format is its format (raw or qcow2, told by the file's magic), raw
	// when empty.
	Image, Format string
	Writable      bool
	// BIOS and EnvFlash are U-Boot and its environment's pflash bank.
	BIOS, EnvFlash string
	// Kernel, Initrd, DTB and Append are a direct boot's.
	Kernel, Initrd, DTB, Append string
	// Net and Publish are the guest's network.
	Net     Net
	Publish []Publish
	// Memory (MiB) and CPUs replace the profile's when not 0.
	Memory, CPUs int
	// KVM runs the guest under KVM on the host's CPU instead of the
	// profile's accelerator and CPU model.
	KVM bool
	// Extra is appended last.
	Extra []string
}

// VM is a prepared boot: the command line and the temporary files it
// needs. Close removes them.
type VM struct {
	Binary string
	Args   []string
	// Loaded says what a direct boot took from the image ("kernel8.img,
	// initramfs8, ... from config.txt [pi3]"); empty for a firmware boot.
	Loaded string
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

// Prepare checks that the host has QEMU and the firmware, puts what the
// boot needs into a temporary directory (the U-Boot environment flash; a
// direct boot's files; the qcow2 that gives an SD card a power-of-two
// size) and returns the command line.
func Prepare(cfg Config) (*VM, error) {
	p := cfg.Profile
	if p == nil {
		return nil, errors.New("the board has no QEMU profile")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := os.Stat(cfg.Image)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", cfg.Image, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("image %s: not a regular file", cfg.Image)
	}
	format, size, err := imageFormat(cfg.Image)
	if err != nil {
		return nil, err
	}
	if cfg.Writable && p.Drive == "sd" && sdSize(size) != size {
		// QEMU wants an SD card of a power-of-two size; the overlay that
		// gives it one would take the guest's writes instead of the image.
		return nil, fmt.Errorf("image %s: an SD card attached writable must have a power-of-two size, not %d bytes", cfg.Image, size)
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
	if v.dir, err = os.MkdirTemp("", "ocidisk-qemu-"); err != nil {
		return nil, err
	}
	b := Boot{Image: cfg.Image, Format: format, Writable: cfg.Writable, Net: cfg.Net, Publish: cfg.Publish,
		Memory: cfg.Memory, CPUs: cfg.CPUs, KVM: useKVM(p, runtime.GOARCH, kvmDevice), Extra: cfg.ExtraArgs}
	switch p.Boot {
	case boards.BootConfigTxt, boards.BootExtlinux:
		if cfg.BIOS != "" {
			v.Close()
			return nil, fmt.Errorf("--bios %s: this board boots without firmware under QEMU (boot: %s)", cfg.BIOS, p.Boot)
		}
		v.Loaded, err = direct(cfg, v.dir, &b)
	case boards.BootUEFI:
		err = uefi(cfg, &b)
	default:
		err = uboot(cfg, v.dir, &b)
	}
	if err == nil && p.Drive == "sd" && sdSize(size) != size {
		b.Image, b.Format = filepath.Join(v.dir, "sd.qcow2"), "qcow2"
		err = writeQcow2Overlay(b.Image, cfg.Image, format, sdSize(size))
	}
	if err != nil {
		v.Close()
		return nil, err
	}
	v.Args = Args(p, b)
	if v.Loaded != "" {
		logger(cfg).Info("direct boot", "machine", p.Machine, "loaded", v.Loaded)
	}
	if b.KVM {
		logger(cfg).Info("accelerated by KVM", "device", kvmDevice)
	}
	return v, nil
}

// uboot sets up a boot through U-Boot as -bios: the firmware file and a
// pflash environment that makes it boot at once.
func uboot(cfg Config, dir string, b *Boot) error {
	fw := cfg.Profile.Firmware
	if fw == nil {
		return nil // QEMU's own default firmware, if the machine has one
	}
	b.BIOS = fw.BIOS
	if cfg.BIOS != "" {
		b.BIOS = cfg.BIOS
	}
	uboot, err := os.ReadFile(b.BIOS)
	if err != nil {
		if cfg.BIOS == "" && errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("firmware %s not found: install the Debian package %s, or give --bios FILE", b.BIOS, fw.Package)
		}
		return fmt.Errorf("firmware: %w", err)
	}
	env, err := DefaultEnv(uboot)
	if err != nil {
		return fmt.Errorf("firmware %s: %w", b.BIOS, err)
	}
	img, err := EnvImage(SetEnv(env, fw.Env), int(fw.EnvSize))
	if err != nil {
		return fmt.Errorf("firmware %s: %w", b.BIOS, err)
	}
	b.EnvFlash = filepath.Join(dir, "uboot-env.img")
	return writeFlash(b.EnvFlash, img, int64(fw.FlashSize))
}

// uefi sets up a boot through UEFI firmware as -bios. EDK2's QEMU_EFI.fd
// keeps its variables in memory when run so, which is what a test wants:
// no boot entries from an earlier boot, so it boots the removable-media
// path of the image's EFI System partition.
func uefi(cfg Config, b *Boot) error {
	fw := cfg.Profile.UEFI
	b.BIOS = fw.BIOS
	if cfg.BIOS != "" {
		b.BIOS = cfg.BIOS
	}
	if _, err := os.Stat(b.BIOS); err != nil {
		if cfg.BIOS == "" && errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("UEFI firmware %s not found: install the Debian package %s, or give --bios FILE", b.BIOS, fw.Package)
		}
		return fmt.Errorf("UEFI firmware: %w", err)
	}
	return nil
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

// Args returns QEMU's arguments for a profile: the machine, its CPU (the
// host's under KVM), CPUs and memory, the serial console on stdio
// (-nographic), no reboot (a reboot ends QEMU), the network (none unless
// asked), the firmware and its environment flash or the kernel of a direct
// boot, the image (as a snapshot unless b.Writable), then the profile's
// own arguments and b.Extra.
func Args(p *boards.QEMU, b Boot) []string {
	a := []string{"-M", p.Machine}
	cpu, accel := p.CPU, p.Accel
	if b.KVM {
		cpu, accel = "host", "kvm"
	}
	if cpu != "" {
		a = append(a, "-cpu", cpu)
	}
	if n := cmp.Or(b.CPUs, p.SMP); n > 0 {
		a = append(a, "-smp", strconv.Itoa(n))
	}
	if m := cmp.Or(b.Memory, p.Memory); m > 0 {
		a = append(a, "-m", strconv.Itoa(m))
	}
	if accel != "" {
		a = append(a, "-accel", accel)
	}
	a = append(a, "-nographic", "-no-reboot")
	a = append(a, netArgs(p.Machine, b.Net, b.Publish)...)
	if b.BIOS != "" {
		a = append(a, "-bios", b.BIOS)
	}
	if b.EnvFlash != "" {
		a = append(a, "-drive", "if=pflash,unit=1,format=raw,file="+optEscape(b.EnvFlash))
	}
	for _, f := range []struct{ opt, v string }{{"-kernel", b.Kernel}, {"-initrd", b.Initrd}, {"-dtb", b.DTB}} {
		if f.v != "" {
			a = append(a, f.opt, f.v)
		}
	}
	if b.Kernel != "" {
		a = append(a, "-append", b.Append)
	}
	format := b.Format
	if format == "" {
		format = "raw"
	}
	snapshot := ",snapshot=on"
	if b.Writable {
		snapshot = ""
	}
	a = append(a, "-drive", "if="+p.Drive+",format="+format+snapshot+",file="+optEscape(b.Image))
	a = append(a, p.Args...)
	return append(a, b.Extra...)
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
