package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/provision"
)

// prepared is what preparing the root decided for the boot partition.
type prepared struct {
	// checkRoot has the init mount the root read-only, for the root's
	// own init to check it before it remounts it read-write.
	checkRoot bool
}

// prepareRoot makes the root ready for the devices that run it, once its
// partitions have their identifiers: it checks that the root's programs
// run on the board, takes out what each device must make for itself,
// sets the host name, adds the users with their passwords and keys, and
// writes /etc/fstab naming the partitions by PARTUUID.
func prepareRoot(l *boards.Layout, in *inputs, disk *diskimage.Layout, cfg Config) (*prepared, error) {
	root := in.root.Tree
	if err := provision.CheckArch(root, l.Board.Arch, rootInits(cfg.CmdlineAppend)); err != nil {
		var ae *provision.ArchError
		if !errors.As(err, &ae) {
			return nil, fmt.Errorf("root image %s: %w", cfg.Source, err)
		}
		if !cfg.ForceArch {
			return nil, fmt.Errorf("root image %s: %w: build it from an image for %s (--platform), or give --force-arch to build it anyway",
				cfg.Source, err, Platform(l.Board))
		}
		cfg.Log.Warn("building a root for another machine, as asked", "root", cfg.Source, "problem", err.Error())
	}
	spec := provision.Spec{
		KeepIdentity: cfg.KeepIdentity,
		Hostname:     cfg.Hostname,
		Users:        cfg.Users,
		Fstab:        fstab(l, disk),
		Time:         in.epoch,
	}
	for _, p := range cfg.PasswordHashes {
		pw, err := provision.ParsePassword(p)
		if err != nil {
			return nil, &ConfigError{Field: "PasswordHashes", Err: err}
		}
		spec.Passwords = append(spec.Passwords, pw)
	}
	for _, k := range cfg.AuthorizedKeys {
		ak, err := provision.ReadAuthorizedKeys(k)
		if err != nil {
			return nil, &ConfigError{Field: "AuthorizedKeys", Err: err}
		}
		spec.AuthorizedKeys = append(spec.AuthorizedKeys, ak)
	}
	r, err := provision.Apply(root, spec)
	if err != nil {
		var se *provision.SpecError
		if errors.As(err, &se) {
			return nil, &ConfigError{Field: specFields[se.Field], Err: fmt.Errorf("root image %s: %w", cfg.Source, err)}
		}
		return nil, fmt.Errorf("root image %s: %w", cfg.Source, err)
	}
	if len(r.Removed) > 0 {
		cfg.Log.Info("took out what each device makes for itself on first boot", "files", strings.Join(r.Removed, " "))
	}
	for _, u := range r.Users {
		cfg.Log.Info("user", "name", u.Name, "uid", u.UID, "home", u.Home, "shell", u.Shell, "sudo", u.Sudo, "new", u.Created)
	}
	if r.Fstab.Written {
		cfg.Log.Info("wrote /etc/fstab")
	}
	p := &prepared{
		// systemd-remount-fs makes / writable again only from an fstab
		// entry; a root without one stays as the init mounted it.
		checkRoot: r.Systemd && r.Fstab.Root && !l.ReadOnlyRoot(),
	}
	return p, nil
}

// specFields names provision.Spec's fields as Config does.
var specFields = map[string]string{
	"Hostname":       "Hostname",
	"Users":          "Users",
	"Passwords":      "PasswordHashes",
	"AuthorizedKeys": "AuthorizedKeys",
}

// fstab is the root's /etc/fstab for layout l: the root (but for slots,
// where both hold this file and it cannot name either), the boot
// partition at the board's mount point (but for per-slot boot
// partitions), and the data partition, all by PARTUUID. A checker the
// root lacks (fsck.vfat) is skipped by systemd-fsck, so passes are set
// as for a root that has them.
func fstab(l *boards.Layout, disk *diskimage.Layout) *provision.Fstab {
	b := l.Board
	partUUID := func(p *boards.LaidPartition) string { return "PARTUUID=" + disk.PartUUID(disk.Index(p.Name)) }
	f := &provision.Fstab{Header: []string{"/etc/fstab: static file system information (fstab(5)),",
		"written by ocidisk for board " + b.Name + "."}}
	if r := l.Root(); l.AB {
		f.Header = append(f.Header, "/ is the slot booted, root-a or root-b, mounted read-only by ocidisk's init:",
			"both slots hold this file, so it names neither.")
	} else if r.FS.ReadOnly() {
		f.Mounts = append(f.Mounts, provision.Mount{Spec: partUUID(r), Dir: "/", Type: r.FS.Linux(), Options: "ro"})
	} else {
		f.Mounts = append(f.Mounts, provision.Mount{Spec: partUUID(r), Dir: "/", Type: r.FS.Linux(), Options: "errors=remount-ro", Pass: 1})
	}
	if b.BootMount != "" {
		if l.AB && b.AB.Boot == boards.ABPerSlot {
			f.Header = append(f.Header, "Each slot has its own boot partition, so "+b.BootMount+" is not mounted.")
		} else {
			bp := l.Partition(boards.RoleBoot)
			f.Mounts = append(f.Mounts, provision.Mount{Spec: partUUID(bp), Dir: b.BootMount, Type: bp.FS.Linux(), Pass: 2})
		}
	}
	if dp := l.Partition(boards.RoleData); dp != nil {
		f.Mounts = append(f.Mounts, provision.Mount{Spec: partUUID(dp), Dir: "/data", Type: dp.FS.Linux(), Options: "defaults,noatime",
			Comment: "Mounted by ocidisk's init before the root's init starts, so never checked here."})
	}
	return f
}

// rootInits are the programs the init tries to hand the root to: init=
// on the command line, else protocol.RootInits.
func rootInits(cmdline []string) []string {
	inits := protocol.RootInits
	for _, a := range cmdline {
		for _, f := range strings.Fields(a) {
			if v, ok := strings.CutPrefix(f, "init="); ok {
				inits = []string{v}
			}
		}
	}
	return inits
}
