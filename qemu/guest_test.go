package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestGuestCommand(t *testing.T) {
	fakeQEMU(t, "exit 0")
	for _, tc := range []struct {
		name string
		g    Guest
		want []string // in order, among the arguments
		not  []string
	}{
		{"arm64 TCG, no network", Guest{Arch: "arm64", Kernel: "Image", Initrd: "initrd", Append: "console=ttyAMA0 quiet",
			Disks: []Disk{{File: "lower.erofs", ReadOnly: true}, {File: "a,b.ext4", Unsafe: true}}},
			[]string{"-M", "virt", "-cpu", "cortex-a72", "-smp", "1", "-m", "1024", "-no-reboot", "-kernel", "Image",
				"-append", "console=ttyAMA0 quiet", "-initrd", "initrd",
				"-drive", "if=none,id=disk0,format=raw,file=lower.erofs,readonly=on", "-device", "virtio-blk-pci,drive=disk0",
				"-drive", "if=none,id=disk1,format=raw,file=a,,b.ext4,cache=unsafe", "-device", "virtio-blk-pci,drive=disk1",
				"-nic", "none"},
			[]string{"-netdev", "kvm"}},
		{"arm user network, KVM", Guest{Arch: "arm", Kernel: "zImage", Net: NetUser, Memory: 2048, CPUs: 2, KVM: true},
			[]string{"-M", "virt,highmem=off", "-accel", "kvm", "-cpu", "host", "-smp", "2", "-m", "2048", "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="},
			[]string{"-nic", "-initrd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, args, err := tc.g.Command()
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			for _, a := range args {
				if i < len(tc.want) && a == tc.want[i] {
					i++
				}
			}
			if i < len(tc.want) {
				t.Errorf("args %q: %q missing or out of order", args, tc.want[i])
			}
			for _, n := range tc.not {
				if slices.Contains(args, n) {
					t.Errorf("args %q hold %q", args, n)
				}
			}
		})
	}
	if _, _, err := (Guest{Arch: "riscv64"}).Command(); err == nil || !strings.Contains(err.Error(), "riscv64") {
		t.Errorf("riscv64: %v", err)
	}
}

// fakeQEMU puts a qemu-system-aarch64 and a qemu-system-arm running
// script on PATH.
func fakeQEMU(t *testing.T, script string) {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"qemu-system-aarch64", "qemu-system-arm"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

// RunGuest's outcomes, with a QEMU that is a shell script printing a
// console.
func TestRunGuest(t *testing.T) {
	stopAt := errors.New("seen enough")
	for _, tc := range []struct {
		name    string
		script  string
		line    func(string) error
		timeout time.Duration
		err     string // in the error; "" for success
		tail    string // in the tail
		lines   []string
	}{
		{name: "powers off", script: `printf 'boot\r\nok\n'; printf 'no newline'`, lines: []string{"boot", "ok", "no newline"}},
		{name: "kernel panic", script: `echo booting; echo 'Kernel panic - not syncing: Attempted to kill init!'; echo '---[ end'; sleep 30`,
			err: "Kernel panic - not syncing: Attempted to kill init!", tail: "---[ end", lines: []string{"booting"}},
		{name: "init failure", script: `echo 'ocidisk-init: error: commit: step 2 exited with status 3'; sleep 30`,
			err: "ocidisk-init: error: commit: step 2 exited with status 3"},
		{name: "line error", script: `echo a; echo b; echo c`, line: func(s string) error {
			if s == "b" {
				return stopAt
			}
			return nil
		}, err: "seen enough"},
		{name: "timeout", script: `echo waiting; sleep 30`, timeout: 500 * time.Millisecond, err: "timed out", tail: "waiting"},
		{name: "QEMU fails", script: `echo 'qemu: could not open disk' >&2; exit 1`, err: "could not open disk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeQEMU(t, tc.script)
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			var seen []string
			start := time.Now()
			err := RunGuest(ctx, Guest{Arch: "arm64", Kernel: "Image"}, func(s string) error {
				seen = append(seen, s)
				if tc.line != nil {
					return tc.line(s)
				}
				return nil
			})
			if time.Since(start) > 20*time.Second {
				t.Errorf("RunGuest took %s: the guest was not stopped", time.Since(start))
			}
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var ge *GuestError
				if !errors.As(err, &ge) || !strings.Contains(ge.Reason, tc.err) {
					t.Fatalf("error %v, want a GuestError saying %q", err, tc.err)
				}
				if tc.tail != "" && !slices.Contains(ge.Tail, tc.tail) {
					t.Errorf("tail %q lacks %q", ge.Tail, tc.tail)
				}
				if tc.line != nil && !errors.Is(err, stopAt) {
					t.Errorf("error %v does not wrap the line function's", err)
				}
			}
			if tc.lines != nil && !slices.Equal(seen, tc.lines) {
				t.Errorf("lines %q, want %q", seen, tc.lines)
			}
		})
	}
}
