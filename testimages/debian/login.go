package debian

import (
	"fmt"
	"os"
	"path/filepath"
)

// The account of the login overlay.
const (
	LoginUser     = "root"
	LoginPassword = "ocidisk"
)

// loginHash is LoginPassword's SHA-512 crypt, salt "ocidisk" (what
// `openssl passwd -6 -salt ocidisk ocidisk` and busybox's
// `mkpasswd -m sha512 ocidisk ocidisk` print): the form busybox's login
// checks /etc/shadow with.
const loginHash = "$6$ocidisk$hX6rxh.K1tFz9fYYVlS68ZzVT58YasmLsioNIwUdO7pgwa3FK0SMrtfOLXxc5hJIREeSqvajcrAxgxcQ6vfod/"

// WriteLoginOverlay writes into dir an overlay for the busybox test root
// that makes it a system to log in to: busybox's init instead of the
// marker script, a getty on the serial console (console, such as
// ttyAMA0), LoginUser with LoginPassword in /etc/shadow, and the applets
// a logged-in test uses (stty, nc, wget). Power-off remounts the root
// read-only first, so that a writable image is left clean.
func WriteLoginOverlay(dir, console string) error {
	links := map[string]string{
		"sbin/init":  "../bin/busybox",
		"sbin/getty": "../bin/busybox",
		"bin/login":  "busybox",
		"bin/stty":   "busybox",
		"bin/nc":     "busybox",
		"bin/wget":   "busybox",
	}
	files := []struct {
		name, text string
		mode       os.FileMode
	}{
		{"etc/inittab", "::sysinit:/bin/sh -c '[ -e /proc/self ] || mount -t proc proc /proc; hostname -F /etc/hostname'\n" +
			console + "::respawn:/sbin/getty -L 115200 " + console + " vt100\n" +
			"::shutdown:/bin/sync\n" +
			"::shutdown:/bin/mount -o remount,ro /\n", 0o644},
		{"etc/shadow", LoginUser + ":" + loginHash + ":19000:0:99999:7:::\n", 0o600},
	}
	for _, d := range []string{"bin", "sbin", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("login overlay: %w", err)
		}
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.text), f.mode); err != nil {
			return fmt.Errorf("login overlay: %w", err)
		}
	}
	return nil
}
