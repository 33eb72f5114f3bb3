package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Where the init keeps mounts the root does not see by name: the overlay's
// tmpfs, or a data partition when the root has no /data to mount it on.
// They live on in the overlays after switch_root.
const runDir = "/run/ocidisk"

// mountData mounts the data partition that ocidisk.data= names on the
// root's /data (or, when the root has no /data, where only the overlay
// uses it), growing it first when ocidisk.grow asks. It returns the device
// and where it is mounted; "" when there is none.
func mountData(cfg *config, root string) (dev, mnt string, err error) {
	if cfg.data == "" {
		return "", "", nil
	}
	if dev, err = waitDev(cfg, "data partition", cfg.data); err != nil {
		return "", "", err
	}
	mnt = filepath.Join(root, "data")
	if fi, err := os.Stat(mnt); err != nil || !fi.IsDir() {
		mnt = filepath.Join(runDir, "data")
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			return "", "", err
		}
	}
	if err := unix.Mount(dev, mnt, "ext4", unix.MS_NOATIME, ""); err != nil {
		return "", "", fmt.Errorf("mount the data partition %s (%s) on %s: %w", dev, cfg.data, mnt, err)
	}
	if cfg.grow {
		if err := growData(cfg, dev, mnt); err != nil {
			// The system boots with the partition as it is; the next boot
			// tries again, since no marker was written.
			cfg.warnf("could not grow the data partition %s: %v", dev, err)
		}
	}
	cfg.infof("mounted data partition %s (%s) on %s", dev, cfg.data, strings.TrimPrefix(mnt, root))
	return dev, mnt, nil
}

// mountOverlay puts an overlayfs on each of the root's overlay directories
// (/etc and /var) so that a read-only root can be written there: the
// changes go to a tmpfs, or to "overlay/" on a partition (the data
// partition, already mounted at dataMnt, or another).
func mountOverlay(cfg *config, root, dataDev, dataMnt string) error {
	if cfg.overlay == "" {
		return nil
	}
	var store, where string
	switch cfg.overlay {
	case "tmpfs":
		store, where = filepath.Join(runDir, "overlay"), "tmpfs, until power-off"
		if err := os.MkdirAll(store, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", store, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("mount a tmpfs for the overlay: %w", err)
		}
	default:
		dev, err := waitDev(cfg, "overlay partition", cfg.overlay)
		if err != nil {
			return err
		}
		mnt := dataMnt
		if dev != dataDev {
			mnt = filepath.Join(runDir, "overlay-partition")
			if err := os.MkdirAll(mnt, 0o755); err != nil {
				return err
			}
			if err := unix.Mount(dev, mnt, "ext4", unix.MS_NOATIME, ""); err != nil {
				return fmt.Errorf("mount the overlay partition %s (%s): %w", dev, cfg.overlay, err)
			}
		}
		store, where = filepath.Join(mnt, "overlay"), dev
		if strings.HasPrefix(mnt, root+"/") {
			where = strings.TrimPrefix(mnt, root) + "/overlay on " + dev
		}
	}
	var done []string
	for _, d := range cfg.overlayDirs {
		lower := filepath.Join(root, d)
		var st unix.Stat_t
		if err := unix.Stat(lower, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			cfg.infof("overlay: the root has no directory /%s; left out", d)
			continue
		}
		key := strings.ReplaceAll(d, "/", "_")
		upper, work := filepath.Join(store, "upper", key), filepath.Join(store, "work", key)
		if err := mkdirLike(upper, &st); err != nil {
			return fmt.Errorf("overlay for /%s: %w", d, err)
		}
		if err := os.MkdirAll(work, 0o700); err != nil {
			return fmt.Errorf("overlay for /%s: %w", d, err)
		}
		opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
		if err := unix.Mount("overlay", lower, "overlay", 0, opts); err != nil {
			if err == syscall.ENODEV {
				return fmt.Errorf("overlay for /%s: the kernel has no overlayfs (the initramfs should load the overlay module)", d)
			}
			return fmt.Errorf("overlay for /%s (%s): %w", d, opts, err)
		}
		done = append(done, "/"+d)
	}
	if len(done) > 0 {
		cfg.infof("overlay on %s (changes in %s)", strings.Join(done, " "), where)
	}
	return nil
}

// mkdirLike makes directory p, if missing, with the mode and owner of st:
// the upper directory's are what the merged directory shows.
func mkdirLike(p string, st *unix.Stat_t) error {
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return err
	}
	if err := os.Chown(p, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return os.Chmod(p, os.FileMode(st.Mode&0o777)|modeBits(st.Mode))
}

// modeBits turns setuid, setgid and sticky bits into an os.FileMode.
func modeBits(m uint32) os.FileMode {
	var fm os.FileMode
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}
