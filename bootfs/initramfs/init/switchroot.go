package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
)

// switchRoot moves the kernel filesystems into newRoot, frees the
// initramfs, makes newRoot the root and executes its init. It returns only
// on failure.
func switchRoot(cfg *config, newRoot string) error {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return err
	}
	for _, m := range []string{"/dev", "/proc", "/sys"} {
		target := newRoot + m
		if fi, err := os.Stat(target); err == nil && fi.IsDir() {
			if err := unix.Mount(m, target, "", unix.MS_MOVE, ""); err != nil {
				return fmt.Errorf("move %s to the root: %w", m, err)
			}
		} else if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	// The initramfs is a ramfs: its files use memory until deleted.
	removeSameDev("/", st.Dev, newRoot)
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the root to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	inits := protocol.RootInits
	if cfg.init != "" {
		inits = []string{cfg.init}
	}
	for _, p := range inits {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		argv := append([]string{p}, os.Args[1:]...)
		err := unix.Exec(p, argv, os.Environ())
		return fmt.Errorf("exec %s in the root %s: %w", p, cfg.root, err)
	}
	return fmt.Errorf("no init in the root %s (tried %s)", cfg.root, strings.Join(inits, ", "))
}

// removeSameDev deletes everything under dir on device dev, except skip.
func removeSameDev(dir string, dev uint64, skip string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if p == skip {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Dev != dev {
			continue
		}
		if e.IsDir() {
			removeSameDev(p, dev, skip)
			_ = unix.Rmdir(p)
		} else {
			_ = unix.Unlink(p)
		}
	}
}
