package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// baseline is the commit whose images later changes must keep, byte for
// byte, unless they change the defaults on purpose and move it, saying
// why. The first was the last commit before the layout and options were
// reshaped (e1aa36d4, issue 14), which kept its bytes. It moved to this
// one, after the first boot's identity, /etc/fstab, the Pi boards' root
// growth and the Pi 3's mini UART console (issue 15) changed what a build
// writes by default.
const baseline = "75fbae713a9b96f0ba624e78fa74a36438418629"

// sinceBaseline are the flags that turn off what later changes made the
// default, so that the comparison stays one of the same build.
var sinceBaseline []string

// TestSameBytesAsBaseline builds images for three boards, with slots,
// data partitions, read-only roots and config.txt additions, with this
// checkout's ocidisk and with the baseline's, and wants the same bytes.
func TestSameBytesAsBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the baseline's ocidisk")
	}
	git := hosttool.Require(t, "git", "git")
	if err := exec.Command(git, "cat-file", "-e", baseline+"^{commit}").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the baseline commit %s is not in this clone: %v", baseline, err)
		}
		t.Skipf("the baseline commit %s is not in this clone (a shallow clone?)", baseline)
	}
	src := filepath.Join(t.TempDir(), "baseline")
	if out, err := exec.Command(git, "worktree", "add", "--detach", src, baseline).CombinedOutput(); err != nil {
		t.Fatalf("git worktree add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(git, "worktree", "remove", "--force", src).Run() })
	// The initramfs init is a program of its own, which later changes
	// extend; the comparison is of the pipeline that builds the image, so
	// the baseline embeds this checkout's init.
	for _, arch := range []string{"arm64", "arm"} {
		name := filepath.Join("bootfs", "initramfs", "init-"+arch)
		b, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := filepath.Join(t.TempDir(), "ocidisk-baseline")
	build := exec.Command("go", "build", "-o", old, "./cmd/ocidisk")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the baseline: %v\n%s", err, out)
	}
	cur := ocidiskBinary(t)

	kernel, root := "deb:"+debian.KernelDeb(t), "oci:"+debian.BusyboxRoot(t)
	raspi := "deb:" + debian.Package(t, "raspi-firmware")
	cache := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"qemu-virt-arm64", []string{"--board", "qemu-virt-arm64", "--kernel", kernel, root}},
		{"qemu-virt-arm64 ab squashfs data", []string{"--board", "qemu-virt-arm64", "--ab", "--data", "grow", "--root-fs", "squashfs",
			"--cmdline-append", "quiet", "--kernel", kernel, root}},
		{"rpi4 ab", []string{"--board", "rpi4", "--ab", "--data", "grow", "--root-size", "auto", "--kernel", kernel, "--firmware", raspi, root}},
		{"rpi3 config.txt", []string{"--board", "rpi3", "--root-size", "auto", "--config-txt-append", "dtparam=audio=on",
			"--kernel", kernel, "--firmware", raspi, root}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sums []string
			for _, bin := range []string{old, cur} {
				out := filepath.Join(t.TempDir(), "t.img")
				args := append([]string{"build", "-q", "-o", out}, tc.args...)
				if bin == cur {
					args = append(args[:4:4], append(sinceBaseline, args[4:]...)...)
				}
				cmd := exec.Command(bin, args...)
				cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000", "XDG_CACHE_HOME="+cache)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s %q: %v\n%s", bin, args, err, b)
				}
				sums = append(sums, fileHash(t, out))
			}
			if sums[0] != sums[1] {
				t.Errorf("the baseline built %s, this checkout %s", sums[0], sums[1])
			}
		})
	}
}
