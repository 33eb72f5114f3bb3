// Package debian builds real-world test inputs from Debian bookworm arm64
// packages, once, in a cache that every test, the demo script and the
// benchmarks share.
//
// The inputs are:
//
//   - single packages (.deb files) fetched with the machine's apt
//     configuration: the kernel, busybox-static, raspi-firmware, u-boot;
//   - a small busybox root: a multi-layer OCI image layout whose /sbin/init
//     prints the kernel version, the root mount and a marker, then powers
//     off;
//   - a Debian root made by mmdebstrap, split into five gzip layers with
//     deletions, replacements and type changes in the upper ones, together
//     with the listing its flattened tree must have. That listing is
//     computed from the original tar with plain set operations, independently
//     of any flattening code, so that flatteners can be judged by it.
//
// Each input has an error-returning builder on Cache (for commands and
// benchmark scripts) and a testing.TB helper (Package, KernelDeb,
// BusyboxRoot, Tree, ...) that skips locally, and fails under CI=true, when a
// tool or the network is missing.
//
// Everything is deterministic: the same package versions give the same
// bytes, so layer digests can be compared across runs.
package debian
