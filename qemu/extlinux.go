package qemu

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// extlinuxPaths are where U-Boot's distro boot looks for extlinux.conf on
// a partition, in order.
var extlinuxPaths = []string{"extlinux/extlinux.conf", "boot/extlinux/extlinux.conf"}

// extlinuxEntry is the label U-Boot would boot.
type extlinuxEntry struct {
	Conf   string // where the config was found
	Label  string
	Kernel string
	Initrd []string
	Append string
}

// extlinux reads the boot partition's extlinux.conf as U-Boot's pxe code
// does and returns its default label (the first, without "default").
func extlinux(boot fs.FS) (*extlinuxEntry, error) {
	var data []byte
	var conf string
	for _, p := range extlinuxPaths {
		b, err := fs.ReadFile(boot, p)
		if err == nil {
			data, conf = b, p
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if data == nil {
		return nil, fmt.Errorf("no %s on the boot partition", strings.Join(extlinuxPaths, " or "))
	}
	var labels []*extlinuxEntry
	def := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		key := strings.ToLower(f[0])
		val := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), f[0]))
		if key == "default" {
			def = val
			continue
		}
		if key == "label" {
			labels = append(labels, &extlinuxEntry{Conf: conf, Label: val})
			continue
		}
		if len(labels) == 0 {
			continue
		}
		e := labels[len(labels)-1]
		switch key {
		case "kernel", "linux":
			e.Kernel = val
		case "initrd":
			e.Initrd = strings.Split(val, ",")
		case "append":
			e.Append = val
		}
		// fdt and fdtdir are left out: QEMU's virt describes itself.
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", conf, err)
	}
	for _, e := range labels {
		if def == "" || e.Label == def {
			if e.Kernel == "" {
				return nil, fmt.Errorf("%s: label %s has no kernel", conf, e.Label)
			}
			return e, nil
		}
	}
	if def != "" {
		return nil, fmt.Errorf("%s: default label %q is not defined", conf, def)
	}
	return nil, fmt.Errorf("%s: no label", conf)
}
