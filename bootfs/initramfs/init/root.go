package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// blockDev is a block device the kernel has registered.
type blockDev struct {
	name   string // vda2
	disk   string // vda, for a partition; "" for a whole disk
	partno int
}

// blockDevs lists the block devices in /sys/class/block.
func blockDevs() []blockDev {
	ents, _ := os.ReadDir("/sys/class/block")
	var out []blockDev
	for _, e := range ents {
		d := blockDev{name: e.Name()}
		if b, err := os.ReadFile("/sys/class/block/" + d.name + "/partition"); err == nil {
			d.partno, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			if real, err := filepath.EvalSymlinks("/sys/class/block/" + d.name); err == nil {
				d.disk = filepath.Base(filepath.Dir(real))
			}
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b blockDev) int { return strings.Compare(a.name, b.name) })
	return out
}

// errNoMatch means no device matches yet.
var errNoMatch = errors.New("no match")

// findRoot returns the device node that root names, or errNoMatch.
func findRoot(root string, devs []blockDev) (string, error) {
	kind, want, ok := strings.Cut(root, "=")
	if !ok {
		if !strings.HasPrefix(root, "/dev/") {
			return "", fmt.Errorf("root=%s: want PARTUUID=, LABEL=, UUID= or /dev/NAME", root)
		}
		if _, err := os.Stat(root); err != nil {
			return "", errNoMatch
		}
		return root, nil
	}
	want = strings.ToLower(want)
	for _, d := range devs {
		var got string
		switch kind {
		case "PARTUUID":
			if d.disk == "" {
				continue
			}
			got, _ = partUUID("/dev/"+d.disk, d.partno, sectorSize(d.disk))
		case "UUID", "LABEL":
			sb, err := readSuperblock("/dev/" + d.name)
			if err != nil {
				continue
			}
			got = sb.uuid
			if kind == "LABEL" {
				got = sb.label
			}
		default:
			return "", fmt.Errorf("root=%s: want PARTUUID=, LABEL=, UUID= or /dev/NAME", root)
		}
		if got != "" && strings.ToLower(got) == want {
			return "/dev/" + d.name, nil
		}
	}
	return "", errNoMatch
}

func sectorSize(disk string) int {
	b, err := os.ReadFile("/sys/class/block/" + disk + "/queue/logical_block_size")
	if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 512 {
		return n
	}
	return 512
}

// waitRoot polls for the root device until the timeout.
func waitRoot(cfg *config) (string, error) { return waitDev(cfg, "root", cfg.root) }

// waitDev polls for the device spec names (as root= does) until the
// timeout; what names it in messages.
func waitDev(cfg *config, what, spec string) (string, error) {
	start := time.Now()
	said := false
	for {
		devs := blockDevs()
		dev, err := findRoot(spec, devs)
		if err == nil {
			return dev, nil
		}
		if err != errNoMatch {
			return "", err
		}
		waited := time.Since(start)
		if waited >= cfg.timeout {
			names := make([]string, len(devs))
			for i, d := range devs {
				names[i] = d.name
			}
			list := strings.Join(names, " ")
			if list == "" {
				list = "none"
			}
			return "", fmt.Errorf("%s %s not found after %s; block devices: %s", what, spec, cfg.timeout, list)
		}
		if !said && waited > time.Second {
			cfg.infof("waiting up to %s for %s %s", cfg.timeout, what, spec)
			said = true
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mountRoot mounts dev on /root with the type the command line names, or
// the type its superblock shows.
func mountRoot(cfg *config, dev string) (string, error) {
	if err := os.MkdirAll("/root", 0o755); err != nil {
		return "", err
	}
	types := cfg.fstypes
	if len(types) == 0 {
		sb, err := readSuperblock(dev)
		if err != nil {
			return "", fmt.Errorf("root %s (%s): %w; name its type with rootfstype=", dev, cfg.root, err)
		}
		types = []string{sb.fstype}
	}
	var flags uintptr
	if cfg.readOnly {
		flags |= unix.MS_RDONLY
	}
	var errs []string
	for _, t := range types {
		err := unix.Mount(dev, "/root", t, flags, cfg.flags)
		if err == nil {
			return t, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", t, err))
	}
	return "", fmt.Errorf("mount root %s (%s) on /root: %s", dev, cfg.root, strings.Join(errs, "; "))
}
