// Package hosttool finds the host programs that tests use as judges
// (e2fsck, debugfs, fsck.vfat, sfdisk, qemu-system-aarch64, ...), and
// hands them a partition of an image as a file of its own.
//
// Locally a missing tool skips the test with a message naming the Debian
// package to install; under CI (CI=true) it fails the test, because a judge
// that silently did not run proves nothing.
package hosttool

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI, where nothing may be skipped
// for want of a tool or input.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require returns the path of program name, or skips (locally) or fails (in
// CI) the test, naming pkg as the Debian package that provides it.
func Require(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(dir + "/" + name); err == nil {
			return dir + "/" + name
		}
	}
	Missing(t, name+" not found: apt-get install "+pkg)
	return ""
}

// Missing skips the test locally and fails it in CI, with msg saying what
// is missing and how to get it.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and a test input is missing: %s", msg)
	}
	t.Skip(msg)
}
