package provision

import (
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/fstree"
)

// What makes one device of a build different from the next: files a
// root made by a build system carries once for every card flashed from
// it. Each device makes its own on first boot (sshd's host keys by
// ocidisk's init, the rest by systemd).
const (
	sshDir         = "etc/ssh"
	sshHostKeyGlob = "ssh_host_*"
	machineIDPath  = "etc/machine-id"
)

// identityFiles are removed outright: systemd makes a new random seed
// and credential secret when they are missing, and the init's record
// that it grew the root belongs to the card that grew (a root copied
// from a device has one).
var identityFiles = []string{
	"var/lib/systemd/random-seed",
	"var/lib/systemd/credential.secret",
	protocol.RootGrowMarker,
}

// systemdPaths are where a root's systemd lives, merged /usr or not.
var systemdPaths = []string{"usr/lib/systemd/systemd", "lib/systemd/systemd"}

// HasSystemd reports whether the root has systemd's manager.
func HasSystemd(t *fstree.Tree) bool {
	for _, p := range systemdPaths {
		if isExecutable(t, p) {
			return true
		}
	}
	return false
}

// ResetIdentity removes from t what each device must make for itself:
// sshd's host keys (/etc/ssh/ssh_host_*), systemd's random seed and
// credential secret and the init's growth marker, and leaves
// /etc/machine-id empty when the root has one or has systemd: systemd
// then makes a machine ID on each device's first boot and writes it as
// soon as the root is writable. It returns the paths it changed, sorted.
func ResetIdentity(t *fstree.Tree, when time.Time) ([]string, error) {
	var changed []string
	if dir, rp, err := lookup(t, sshDir); err != nil {
		return nil, err
	} else if dir != nil && dir.IsDir() {
		for _, e := range dir.Entries() {
			if ok, _ := path.Match(sshHostKeyGlob, e.Name); !ok || e.Node.IsDir() {
				continue
			}
			dir.RemoveChild(e.Name)
			changed = append(changed, "/"+rp+"/"+e.Name)
		}
	}
	for _, p := range identityFiles {
		n, rp, err := lookup(t, p)
		if err != nil {
			return nil, err
		}
		if n == nil || n.IsDir() {
			continue
		}
		if _, err := t.Remove(rp); err != nil {
			return nil, fmt.Errorf("remove /%s: %w", rp, err)
		}
		changed = append(changed, "/"+rp)
	}
	id, err := readFile(t, machineIDPath)
	if err != nil {
		return nil, err
	}
	if (id != nil || HasSystemd(t)) && (id == nil || len(id) > 0) {
		// Empty, not "uninitialized" (machine-id(5)): systemd makes and
		// commits an ID for both, but "uninitialized" also counts as a
		// first boot and runs the first-boot units (systemd-firstboot's
		// prompts among them), which a root set up at build time does
		// not want. Debian's own images ship it empty.
		if err := writeFile(t, machineIDPath, nil, owner{mode: 0o444}, when); err != nil {
			return nil, err
		}
		changed = append(changed, "/"+machineIDPath)
	}
	slices.Sort(changed)
	return changed, nil
}
