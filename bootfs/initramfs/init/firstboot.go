package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
)

// The first boot of a card: what the image leaves for each device to
// make (the build took out what every card would otherwise share). Each
// step finds out whether it has work first, so that later boots write
// nothing; a step that fails warns and the boot goes on, to try again
// next time.

// firstBoot grows the root when ocidisk.growroot asks, makes sshd's host
// keys the root lacks and, for a root without systemd (which makes its
// own), a machine ID for an empty /etc/machine-id. The root is mounted
// at root from dev as fstype, with the overlays in place, so files go
// where they persist: the root, or the overlay's upper directory.
func firstBoot(cfg *config, dev, fstype, root string) {
	w := &rootWriter{cfg: cfg, root: root, fstype: fstype}
	defer w.done()
	if cfg.growRoot {
		if err := w.growRoot(dev); err != nil {
			// The system boots at the size it has; the next boot tries
			// again, since no marker was written.
			cfg.warnf("could not grow the root %s: %v", dev, err)
		}
	}
	r := inRoot(root)
	if err := w.hostKeys(r); err != nil {
		cfg.warnf("SSH host keys: %v", err)
	}
	if err := w.machineID(r); err != nil {
		cfg.warnf("machine ID: %v", err)
	}
}

// rootWriter makes the root writable when a first-boot step needs it.
type rootWriter struct {
	cfg       *config
	root      string
	fstype    string
	remounted bool
}

var errReadOnly = errors.New("the root is read-only and has no overlay there")

// writable makes dir (under the root's mount) writable: it is when the
// root is mounted read-write or the overlay covers dir. A root the
// command line mounts read-only only so that its own init checks it
// (ro, a writable filesystem, no slot, no overlay) is remounted
// read-write until done: a card on its first boot holds the filesystem
// the build wrote, and the ro mount has replayed its journal.
func (w *rootWriter) writable(dir string) error {
	err := unix.Access(dir, unix.W_OK)
	if err == nil || err != unix.EROFS {
		return err
	}
	if w.remounted || !w.cfg.readOnly || w.cfg.slot != "" || w.cfg.overlay != "" || w.fstype != "ext4" {
		return errReadOnly
	}
	if err := unix.Mount("", w.root, "", unix.MS_REMOUNT, w.cfg.flags); err != nil {
		return fmt.Errorf("remount the root read-write: %w", err)
	}
	w.remounted = true
	return unix.Access(dir, unix.W_OK)
}

// done puts a root it remounted back to read-only, for its init's check.
func (w *rootWriter) done() {
	if !w.remounted {
		return
	}
	unix.Sync()
	if err := unix.Mount("", w.root, "", unix.MS_REMOUNT|unix.MS_RDONLY, w.cfg.flags); err != nil {
		w.cfg.warnf("could not mount the root read-only again after the first boot's files: %v", err)
	}
}

// growRoot grows the root partition and its ext4 to the end of the disk,
// once: the marker lives on the root itself.
func (w *rootWriter) growRoot(dev string) error {
	marker := filepath.Join(w.root, protocol.RootGrowMarker)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if w.fstype != "ext4" {
		return fmt.Errorf("a %s root cannot grow", w.fstype)
	}
	if err := w.writable(w.root); err != nil {
		return err
	}
	return growPartition(w.cfg, dev, w.root, marker)
}

// hostKeys makes the host keys the root's sshd_config names and the root
// lacks.
func (w *rootWriter) hostKeys(r inRoot) error {
	files, err := hostKeyFiles(r)
	if err != nil || len(files) == 0 {
		return err
	}
	var missing []string
	for _, f := range files {
		if !r.exists(f) {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	dir := filepath.Join(w.root, filepath.Dir(missing[0]))
	if err := w.writable(dir); err != nil {
		return fmt.Errorf("%s: %w", filepath.Dir(missing[0]), err)
	}
	start := time.Now()
	var b [1]byte
	if _, err := rand.Read(b[:]); err != nil { // waits for the kernel's RNG
		return err
	}
	seeded := time.Since(start)
	comment := "root@" + hostname(r)
	var made []string
	for _, f := range missing {
		typ := keyType(f)
		if typ == "" || typ == "dsa" {
			w.cfg.warnf("SSH host key %s: not a key type ocidisk makes (rsa, ecdsa, ed25519)", f)
			continue
		}
		if err := makeHostKey(r, f, typ, comment); err != nil {
			return err
		}
		made = append(made, typ)
	}
	if len(made) > 0 {
		w.cfg.infof("made SSH host keys %s in %s in %.1fs (the random number generator was ready after %.1fs)",
			strings.Join(made, ", "), filepath.Dir(missing[0]), time.Since(start).Seconds(), seeded.Seconds())
	}
	return nil
}

// machineID writes a random ID to an empty /etc/machine-id of a root
// without systemd (D-Bus and others read it); systemd makes its own, with
// its first-boot semantics.
func (w *rootWriter) machineID(r inRoot) error {
	const p = "/etc/machine-id"
	for _, s := range []string{"/usr/lib/systemd/systemd", "/lib/systemd/systemd"} {
		if r.exists(s) {
			return nil
		}
	}
	b, err := r.read(p, 4096)
	if err != nil || strings.TrimSpace(string(b)) != "" {
		return nil // none, or one made already
	}
	if err := w.writable(filepath.Join(w.root, "etc")); err != nil {
		return err
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	// A version 4 UUID's bits, as systemd-machine-id-setup makes it.
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
	if err := r.writeNew(p, []byte(hex.EncodeToString(id[:])+"\n"), 0o444); err != nil {
		return err
	}
	w.cfg.infof("made machine ID %s", hex.EncodeToString(id[:]))
	return nil
}
