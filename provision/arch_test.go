package provision

import (
	"debug/elf"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/bootfs/initramfs"
	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
)

// programs are real ELF files: ocidisk's own init for arm64 and arm, and
// the host's /bin/true, for whatever machine the host is.
func programs(t *testing.T) (arm64, arm, host []byte, hostMachine elf.Machine) {
	t.Helper()
	var err error
	if arm64, err = initramfs.Init("arm64"); err != nil {
		t.Fatal(err)
	}
	if arm, err = initramfs.Init("arm"); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open("/bin/true")
	if err != nil {
		t.Skipf("the host's /bin/true: %v", err)
	}
	hostMachine = f.Machine
	f.Close()
	if hostMachine == elf.EM_AARCH64 || hostMachine == elf.EM_ARM {
		t.Skip("the host runs Arm: its programs are not foreign to the boards")
	}
	if host, err = os.ReadFile("/bin/true"); err != nil {
		t.Fatal(err)
	}
	return arm64, arm, host, hostMachine
}

func TestCheckArch(t *testing.T) {
	arm64, arm, host, hostM := programs(t)
	usrBin := func(n int, b []byte, from int) []ent {
		var es []ent
		for i := range n {
			es = append(es, data("usr/bin/p"+string(rune('a'+from+i)), b))
		}
		return es
	}
	script := []ent{file("sbin/init", "#!/bin/busybox sh\necho hi\n").perm(0o755)}
	for _, tc := range []struct {
		name  string
		arch  string
		root  []ent
		inits []string
		err   string // "" for none
	}{
		{name: "arm64 root", arch: "arm64", root: append(usrBin(3, arm64, 0), data("lib/systemd/systemd", arm64), link("sbin/init", "/lib/systemd/systemd"))},
		{name: "armhf root on an arm64 board", arch: "arm64", root: append(usrBin(3, arm, 0), data("sbin/init", arm))},
		{name: "foreign init, through a symlink", arch: "arm64",
			root: []ent{data("lib/systemd/systemd", host), link("sbin/init", "../lib/systemd/systemd")},
			err:  "/sbin/init (/lib/systemd/systemd) is a program for " + MachineName(hostM) + ", but the board runs arm64"},
		{name: "arm64 root on a 32-bit board", arch: "arm", root: []ent{data("sbin/init", arm64)},
			err: "/sbin/init is a program for arm64 (AArch64), but the board runs arm"},
		{name: "a script's interpreter", arch: "arm64", root: append(script, data("bin/busybox", host)),
			err: "/bin/busybox is a program for " + MachineName(hostM)},
		{name: "init= names the program", arch: "arm64", inits: []string{"/bin/myinit"},
			root: []ent{data("sbin/init", host), data("bin/myinit", arm64)}},
		{name: "the first init the root has is the one", arch: "arm64", root: []ent{data("etc/init", host), data("bin/init", arm64)},
			err: "/etc/init is a program for"},
		{name: "most of /usr/bin foreign", arch: "arm64", root: append(append(usrBin(2, arm64, 0), usrBin(3, host, 2)...), file("usr/bin/script", "#!/bin/sh\n")),
			err: "3 of the 5 programs in /usr/bin are for other machines than the board's; /usr/bin/pc is a program for " + MachineName(hostM)},
		{name: "a few foreign helpers in /usr/bin", arch: "arm64", root: append(usrBin(3, arm64, 0), usrBin(2, host, 3)...)},
		{name: "no init, no programs", arch: "arm64", root: []ent{dir("etc")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inits := tc.inits
			if inits == nil {
				inits = protocol.RootInits
			}
			err := CheckArch(newTree(t, tc.root...), tc.arch, inits)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *ArchError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &ae) {
				t.Fatalf("error %v, want an ArchError with %q", err, tc.err)
			}
		})
	}
}
