package main

import (
	"errors"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// A module whose init finds nothing to drive returns ENODEV: a CPU-specific
// implementation (crc32-arm-ce needs the ARMv8 CRC instructions, which a
// Cortex-A15 lacks) or a driver for hardware the board variant does not
// have. modprobe reports it and goes on, and so does the init: the generic
// implementation, or another driver, serves instead, and when nothing
// does, the root is not found and the init says so then.

// noDeviceWhy is printed after the modules skipped for ENODEV.
const noDeviceWhy = "found no device (CPU-specific, or for hardware this machine lacks)"

// noDevice reports whether a module load failed with ENODEV.
func noDevice(err error) bool { return errors.Is(err, unix.ENODEV) }

// moduleBase is a module's name as its file names it, for messages.
func moduleBase(p string) string {
	b := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, ext)
	}
	return strings.TrimSuffix(b, ".ko")
}
