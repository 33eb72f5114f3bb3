package qemu

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// piPartition is the boot partition a Raspberry Pi bootloader would boot,
// and the config it would read there.
type piPartition struct {
	boot   fs.FS
	number int
	// config is config.txt, or tryboot.txt for a tryboot without
	// tryboot_a_b.
	config string
	// from says how the partition was chosen, for VM.Loaded.
	from string
}

// piBootPartition opens the partition a Raspberry Pi bootloader boots: the
// first one (cfg.BootPartition), unless it holds an autoboot.txt whose
// boot_partition names another; cfg.Tryboot applies autoboot.txt's
// [tryboot] section, as after `reboot "0 tryboot"`.
func piBootPartition(img *disk, cfg Config) (*piPartition, error) {
	first := max(cfg.BootPartition, 1)
	boot, err := bootPartition(img, first)
	if err != nil {
		return nil, err
	}
	pp := &piPartition{boot: boot, number: first, config: "config.txt"}
	ab, err := readAutoboot(boot, cfg.Tryboot)
	if err != nil {
		return nil, err
	}
	tryboot := ""
	if cfg.Tryboot {
		tryboot = " with the tryboot flag"
	}
	if ab == nil {
		if cfg.Tryboot {
			// Without tryboot_a_b the switch is made by file: the
			// firmware reads tryboot.txt instead of config.txt.
			pp.config = "tryboot.txt"
		}
		return pp, nil
	}
	if ab.partition != 0 && ab.partition != first {
		if pp.boot, err = bootPartition(img, ab.partition); err != nil {
			return nil, fmt.Errorf("autoboot.txt names boot_partition=%d: %w", ab.partition, err)
		}
		pp.number = ab.partition
	}
	if cfg.Tryboot && !ab.tryAB {
		pp.config = "tryboot.txt"
	}
	pp.from = fmt.Sprintf("partition %d (autoboot.txt on partition %d%s)", pp.number, first, tryboot)
	return pp, nil
}

// autoboot is what autoboot.txt sets.
type autoboot struct {
	partition int // boot_partition; 0 is the default partition
	tryAB     bool
}

// readAutoboot reads autoboot.txt, nil when there is none. It takes the
// [all], [none] and [tryboot] filters, the only ones autoboot.txt has.
func readAutoboot(boot fs.FS, tryboot bool) (*autoboot, error) {
	data, err := fs.ReadFile(boot, "autoboot.txt")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("autoboot.txt: %w", err)
	}
	if len(data) > 512 {
		// The bootloader reads 512 bytes of it.
		data = data[:512]
	}
	ab := &autoboot{}
	on := true
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#':
			continue
		case line == "[all]":
			on = true
			continue
		case line == "[none]":
			on = false
			continue
		case line == "[tryboot]":
			on = tryboot
			continue
		case line[0] == '[':
			return nil, fmt.Errorf("autoboot.txt: filter %s: only [all], [none] and [tryboot] are allowed", line)
		}
		if !on {
			continue
		}
		key, val, _ := strings.Cut(line, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "boot_partition":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("autoboot.txt: boot_partition=%s: want a partition number", val)
			}
			ab.partition = n
		case "tryboot_a_b":
			ab.tryAB = val == "1"
		}
	}
	return ab, sc.Err()
}
