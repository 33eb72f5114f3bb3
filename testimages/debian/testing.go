package debian

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// The helpers below are for tests: each returns a cached input, building it
// on first use. When the input cannot be made here (no apt index for arm64,
// no network, no mmdebstrap) they skip the test locally and fail it under
// CI=true, through hosttool.Missing; any other error fails the test.

func testCache(t testing.TB) *Cache {
	t.Helper()
	c, err := OpenCache(slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func check(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrUnavailable) {
		hosttool.Missing(t, err.Error())
		return
	}
	t.Fatal(err)
}

// Package returns the path of a cached .deb: spec is NAME (the arm64
// package, or the Architecture: all one) or NAME:ARCH; metapackages are
// followed to the real package.
func Package(t testing.TB, spec string) string {
	t.Helper()
	p, err := testCache(t).Package(t.Context(), spec)
	check(t, err)
	return p
}

// KernelDeb returns the path of Debian's current arm64 kernel package,
// linux-image-6.1.0-NN-arm64.
func KernelDeb(t testing.TB) string {
	t.Helper()
	p, err := testCache(t).Kernel(t.Context())
	check(t, err)
	return p
}

// KernelDebFor returns the path of the Debian kernel package k names: an
// armhf flavour, or the arm64 kernel of bookworm-backports.
func KernelDebFor(t testing.TB, k KernelSpec) string {
	t.Helper()
	p, err := testCache(t).KernelFor(t.Context(), k)
	check(t, err)
	return p
}

// BusyboxRoot returns the OCI layout directory of the busybox test root,
// whose init prints Marker and powers off.
func BusyboxRoot(t testing.TB) string {
	t.Helper()
	return BusyboxRootMarker(t, Marker)
}

// BusyboxRootMarker is BusyboxRoot with an init that prints marker instead.
func BusyboxRootMarker(t testing.TB, marker string) string {
	t.Helper()
	return BusyboxRootArch(t, Arch, marker)
}

// BusyboxRootArch is BusyboxRootMarker for a Debian architecture: arm64, or
// armhf for a linux/arm/v7 root of busybox-static:armhf.
func BusyboxRootArch(t testing.TB, arch, marker string) string {
	t.Helper()
	p, err := testCache(t).BusyboxRootArch(t.Context(), arch, marker)
	check(t, err)
	return p
}

// Tree returns the Debian tree of issues 2, 3 and 5 (DefaultTree): made
// with mmdebstrap on first use, which takes a minute or more.
func Tree(t testing.TB) *DebianTree {
	t.Helper()
	return TreeOf(t, DefaultTree())
}

// TreeLarge returns the Debian tree of the benchmarks (LargeTree): over
// 1 GiB and 40,000 entries.
func TreeLarge(t testing.TB) *DebianTree {
	t.Helper()
	return TreeOf(t, LargeTree())
}

// TreeOf returns the Debian tree of any spec.
func TreeOf(t testing.TB, spec TreeSpec) *DebianTree {
	t.Helper()
	d, err := testCache(t).Tree(t.Context(), spec)
	check(t, err)
	return d
}

// SystemdRoot returns the configured systemd root (SystemdRoot): made on
// first use, which takes minutes (every maintainer script runs under
// emulation) and needs qemu-user through binfmt_misc (scripts/setup).
func SystemdRoot(t testing.TB) *DebianTree {
	t.Helper()
	return TreeOf(t, SystemdRootSpec())
}

// ExtractRoot returns the unpacked, unconfigured root (ExtractRoot).
func ExtractRoot(t testing.TB) *DebianTree {
	t.Helper()
	return TreeOf(t, ExtractRootSpec())
}

// Rpi5Kernel returns the OCI layout of the Pi 5 test kernel (Cache.Rpi5Kernel).
func Rpi5Kernel(t testing.TB) string {
	t.Helper()
	p, err := testCache(t).Rpi5Kernel(t.Context())
	check(t, err)
	return p
}
