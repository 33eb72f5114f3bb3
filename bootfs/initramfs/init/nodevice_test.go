package main

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNoDevice: only ENODEV, however wrapped, lets the boot go on.
func TestNoDevice(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("load module /lib/modules/crc32-arm-ce.ko: %w", unix.ENODEV), true},
		{fmt.Errorf("load module x.ko: %w", unix.ENOEXEC), false},
		{fmt.Errorf("load module x.ko: %w", unix.ENOENT), false},
		{unix.EINVAL, false},
	} {
		if got := noDevice(tc.err); got != tc.want {
			t.Errorf("noDevice(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	for in, want := range map[string]string{
		"/lib/modules/6.1.0-28-armmp/kernel/arch/arm/crypto/crc32-arm-ce.ko": "crc32-arm-ce",
		"virtio_blk.ko.xz": "virtio_blk",
	} {
		if got := moduleBase(in); got != want {
			t.Errorf("moduleBase(%q) = %q, want %q", in, got, want)
		}
	}
}
