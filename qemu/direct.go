package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/diskfs/go-diskfs/partition"
	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/inspect/fat"
)

// A direct boot stands in for a board's boot firmware: QEMU loads the
// kernel, initramfs, device tree and command line that the image's own
// config.txt or extlinux.conf names, read from its boot partition as the
// firmware would, with -kernel, -initrd, -dtb and -append. The files are
// copied out of the image into the VM's temporary directory; the image
// itself is only read.

// direct fills b with the files and command line the image's boot
// partition names, copied into dir, and says what it loaded.
func direct(cfg Config, dir string, b *Boot) (string, error) {
	p := cfg.Profile
	img, err := openDisk(cfg.Image)
	if err != nil {
		return "", err
	}
	defer img.Close()
	var boot fs.FS
	var pp *piPartition
	if p.Boot == boards.BootConfigTxt {
		if pp, err = piBootPartition(img, cfg); err == nil {
			boot = pp.boot
		}
	} else {
		boot, err = bootPartition(img, cfg.BootPartition)
	}
	if err != nil {
		return "", fmt.Errorf("image %s: %w", cfg.Image, err)
	}
	var loaded []string
	var cmdline, from string
	switch p.Boot {
	case boards.BootConfigTxt:
		pb, err := readConfig(boot, p.Pi, pp.config, cfg.Tryboot)
		if err != nil {
			return "", fmt.Errorf("image %s: %w", cfg.Image, err)
		}
		if cmdline, err = readCmdline(boot, pb.Cmdline); err != nil {
			return "", fmt.Errorf("image %s: %w", cfg.Image, err)
		}
		if b.Kernel, err = copyOut(boot, dir, "kernel", pb.Kernel); err != nil {
			return "", fmt.Errorf("image %s: config.txt: %w", cfg.Image, err)
		}
		if b.Initrd, err = copyOut(boot, dir, "initrd", pb.Initramfs...); err != nil {
			return "", fmt.Errorf("image %s: config.txt: %w", cfg.Image, err)
		}
		if b.DTB, err = copyOut(boot, dir, "dtb", pb.DTB); err != nil {
			return "", fmt.Errorf("image %s: config.txt: %w", cfg.Image, err)
		}
		from = fmt.Sprintf("%s [%s]", pp.config, strings.Join(p.Pi.Filters, "] ["))
		if pp.from != "" {
			from += " of " + pp.from
		}
		loaded = append(append(append(loaded, pb.Kernel), pb.Initramfs...), pb.DTB, pb.Cmdline)
		if len(pb.Overlays) > 0 {
			// Merging overlays is the firmware's job; QEMU takes the device
			// tree as it is.
			from += " (device tree overlays not applied: " + strings.Join(pb.Overlays, ", ") + ")"
		}
	case boards.BootExtlinux:
		e, err := extlinux(boot)
		if err != nil {
			return "", fmt.Errorf("image %s: %w", cfg.Image, err)
		}
		if b.Kernel, err = copyOut(boot, dir, "kernel", e.Kernel); err != nil {
			return "", fmt.Errorf("image %s: %s: %w", cfg.Image, e.Conf, err)
		}
		if b.Initrd, err = copyOut(boot, dir, "initrd", e.Initrd...); err != nil {
			return "", fmt.Errorf("image %s: %s: %w", cfg.Image, e.Conf, err)
		}
		cmdline, from = e.Append, e.Conf+" label "+e.Label
		loaded = append(append(loaded, e.Kernel), e.Initrd...)
	default:
		return "", fmt.Errorf("boot %q is not a direct boot", p.Boot)
	}
	var moved []string
	b.Append, moved = pointConsoles(cmdline, p.Console)
	var files []string
	for _, f := range loaded {
		if f != "" {
			files = append(files, fsName(f))
		}
	}
	desc := fmt.Sprintf("%s from %s", strings.Join(files, ", "), from)
	if len(moved) > 0 {
		desc += "; " + strings.Join(moved, ", ")
	}
	return desc, nil
}

// bootPartition opens the FAT filesystem of partition n (1-based; 0
// means 1) of a disk image.
func bootPartition(img *disk, n int) (fs.FS, error) {
	if n == 0 {
		n = 1
	}
	table, err := partition.Read(img, 512, 512)
	if err != nil {
		return nil, fmt.Errorf("partition table: %w", err)
	}
	for _, p := range table.GetPartitions() {
		if p.GetIndex() == n && p.GetSize() > 0 {
			fsys, err := fat.Open(img, p.GetStart(), p.GetSize())
			if err != nil {
				return nil, fmt.Errorf("boot partition %d: %w", n, err)
			}
			return fsys, nil
		}
	}
	return nil, fmt.Errorf("no partition %d", n)
}

// readCmdline reads a command line file: its first line, as the Pi
// firmware takes it.
func readCmdline(boot fs.FS, name string) (string, error) {
	f, err := boot.Open(fsName(name))
	if err != nil {
		return "", fmt.Errorf("config.txt names command line file %s: %w", name, err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return strings.TrimSpace(line), nil
}

// copyOut copies files of the boot partition, concatenated (as the Pi
// firmware and U-Boot load a list of initramfs files), to dir/as. No files
// give "".
func copyOut(boot fs.FS, dir, as string, names ...string) (string, error) {
	names = nonEmpty(names)
	if len(names) == 0 {
		return "", nil
	}
	dst := filepath.Join(dir, as)
	out, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer out.Close()
	for _, n := range names {
		in, err := boot.Open(fsName(n))
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s %s is not on the boot partition", as, n)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", n, err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", n, err)
		}
	}
	return dst, out.Close()
}

func nonEmpty(s []string) []string {
	var out []string
	for _, x := range s {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// vtConsole matches the consoles that are not serial ports: virtual
// terminals and the null console.
var vtConsole = regexp.MustCompile(`^(tty[0-9]*|ttynull|null)$`)

// pointConsoles points every console= argument that names a serial port
// (serial0 as the Pi firmware would rewrite it, ttyS0, ttyAMA1 ...) at
// the machine's console, keeping its options, and says what it changed.
// An empty console changes nothing.
func pointConsoles(cmdline, console string) (string, []string) {
	if console == "" {
		return cmdline, nil
	}
	args := strings.Fields(cmdline)
	var moved []string
	for i, a := range args {
		val, ok := strings.CutPrefix(a, "console=")
		if !ok {
			continue
		}
		dev, opts, _ := strings.Cut(val, ",")
		if vtConsole.MatchString(dev) || dev == console {
			continue
		}
		args[i] = "console=" + console
		if opts != "" {
			args[i] += "," + opts
		}
		moved = append(moved, "console="+dev+" as "+console)
	}
	return strings.Join(args, " "), moved
}
