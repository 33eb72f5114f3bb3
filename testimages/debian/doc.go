// Package debian builds real-world test inputs from Debian bookworm arm64
// and armhf packages, once, in a cache that every test, the demo script and
// the benchmarks share.
//
// The inputs are:
//
//   - single packages (.deb files) fetched with the machine's apt
//     configuration: the kernels (arm64; armhf's armmp and armmp-lpae; the
//     arm64 one of bookworm-backports), busybox-static, raspi-firmware,
//     u-boot, systemd-boot-efi;
//   - a small busybox root: a multi-layer OCI image layout (linux/arm64 or
//     linux/arm/v7) whose /sbin/init prints the kernel version, the root
//     mount and a marker, then powers off;
//   - a Debian root made by mmdebstrap, split into five gzip layers with
//     deletions, replacements and type changes in the upper ones, together
//     with the listing its flattened tree must have. That listing is
//     computed from the original tar with plain set operations, independently
//     of any flattening code, so that flatteners can be judged by it;
//   - bootable Debian roots split the same way, with upper layers that keep
//     them bootable: a configured systemd root (Cache.SystemdRoot) and the
//     same packages unpacked and not configured, with dpkg's database, for
//     a second stage run in the guest (Cache.ExtractRoot).
//
// Each input has an error-returning builder on Cache (for commands and
// benchmark scripts) and a testing.TB helper (Package, KernelDeb,
// BusyboxRoot, Tree, ...) that skips locally, and fails under CI=true, when a
// tool or the network is missing.
//
// Everything is deterministic: the same package versions give the same
// bytes, so layer digests can be compared across runs. The one exception is
// the systemd root, whose configuration makes ssh host keys: the same cache
// entry is the same bytes, a rebuild is not.
package debian
