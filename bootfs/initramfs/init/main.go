// Command init is the /init of ocidisk's initramfs. The kernel runs it
// from the initramfs; it loads the modules the board needs (distribution
// kernels build the disk, bus and filesystem drivers as modules), finds
// the root filesystem named by root= on the kernel command line, mounts it
// and hands over to the root's own init with switch_root.
//
// It understands root=PARTUUID=, root=LABEL=, root=UUID= and root=/dev/...,
// rootfstype=, rootflags=, ro and rw (rw is the default), rootwait and
// rootdelay=, init=, quiet, and parameters of its own:
// ocidisk.roottimeout=SECONDS (how long to wait for the root device,
// default 30) and ocidisk.onfail=halt|poweroff|reboot|panic (what to do
// after a failure, default halt); and, for firmware-style layouts,
// ocidisk.slot=NAME (the A/B slot booted, printed), ocidisk.data=DEV (a
// data partition, mounted on the root's /data), ocidisk.grow (grow it and
// its ext4 to the end of the disk, once), ocidisk.growroot (the same for
// the root, last on its disk), ocidisk.overlay=tmpfs|DEV|none
// (an overlayfs over /etc and /var of a read-only root, keeping the
// changes in a tmpfs or in overlay/ on DEV) and ocidisk.overlaydirs=
// etc,var (the directories it covers); for a root checked by dm-verity,
// ocidisk.verity=ROOTHASH with ocidisk.verity.hash=DEV (the device holding
// the hash tree, default the root), ocidisk.verity.hash-offset=BYTES
// (where its superblock is), ocidisk.verity.salt=HEX and
// ocidisk.verity.data-blocks=N (checked against the superblock): the init
// then mounts a read-only verity device over the root instead of the root
// itself; and, for ocidisk commit, ocidisk.commit=DEV (run the steps the
// initramfs holds in an overlay of the root, the changes going to DEV,
// then power off; see commit.go) and ocidisk.commitcopy=DEV. DEV is
// spelled as root= is.
//
// On a card's first boot it makes what each device must have of its own:
// sshd's host keys, and a machine ID for a root without systemd.
//
// Every failure prints one line on the console that starts with
// "ocidisk-init: error: " and says what was missing; ocidisk test watches
// for that prefix.
//
// It is built static (CGO off) for arm64 and arm by go generate in the
// parent package, and the binaries are committed.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
)

// prefix starts every line the init prints.
const prefix = "ocidisk-init: "

// failPrefix starts the line printed on failure; ocidisk test matches it.
const failPrefix = protocol.FailPrefix

func main() {
	if err := mountEarly(); err != nil {
		fail(defaultConfig(), err)
	}
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fail(defaultConfig(), fmt.Errorf("read /proc/cmdline: %w", err))
	}
	cfg, err := parseCmdline(string(raw))
	if err != nil {
		fail(cfg, err)
	}
	fail(cfg, boot(cfg))
}

// boot does everything after the command line is known; it returns only
// on failure.
func boot(cfg *config) error {
	n, skipped, err := loadModules(modulesList)
	if err != nil {
		return err
	}
	cfg.infof("loaded %d modules", n)
	if len(skipped) > 0 {
		cfg.infof("skipped %s: %s", strings.Join(skipped, ", "), noDeviceWhy)
	}
	if cfg.rootDelay > 0 {
		time.Sleep(cfg.rootDelay)
	}
	dev, err := waitRoot(cfg)
	if err != nil {
		return err
	}
	if cfg.verity != nil {
		if dev, err = setupVerity(cfg, dev); err != nil {
			return err
		}
	}
	fstype, err := mountRoot(cfg, dev)
	if err != nil {
		return err
	}
	mode := "read-write"
	if cfg.readOnly {
		mode = "read-only"
	}
	if cfg.slot != "" {
		cfg.infof("mounted %s (%s) on /root as %s, %s: slot %s", dev, cfg.root, fstype, mode, cfg.slot)
	} else {
		cfg.infof("mounted %s (%s) on /root as %s, %s", dev, cfg.root, fstype, mode)
	}
	if cfg.commit != "" {
		return runCommit(cfg, "/root")
	}
	dataDev, dataMnt, err := mountData(cfg, "/root")
	if err != nil {
		return err
	}
	if err := mountOverlay(cfg, "/root", dataDev, dataMnt); err != nil {
		return err
	}
	firstBoot(cfg, dev, fstype, "/root")
	return switchRoot(cfg, "/root")
}

// mountEarly mounts the kernel filesystems the init needs.
func mountEarly() error {
	for _, m := range []struct{ src, dir, fstype string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		err := unix.Mount(m.src, m.dir, m.fstype, unix.MS_NOSUID|unix.MS_NOEXEC*boolBit(m.fstype != "devtmpfs"), "")
		if err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	return nil
}

func boolBit(b bool) uintptr {
	if b {
		return 1
	}
	return 0
}

// fail prints the one-line failure message and does what
// ocidisk.onfail= asks; it never returns.
func fail(cfg *config, err error) {
	fmt.Fprintf(os.Stdout, "\n%s%v\n", failPrefix, err)
	var cmd uint32
	switch cfg.onFail {
	case protocol.OnFailPoweroff:
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	case protocol.OnFailReboot:
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	case protocol.OnFailPanic:
		os.Exit(1) // the kernel panics when init exits
	default:
		cmd = unix.LINUX_REBOOT_CMD_HALT
	}
	unix.Sync()
	_ = unix.Reboot(int(int32(cmd))) // the magic commands overflow a 32-bit int
	for {
		time.Sleep(time.Hour)
	}
}
