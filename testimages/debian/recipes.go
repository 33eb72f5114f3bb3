package debian

import (
	"fmt"
	"maps"
	"path"
	"slices"

	"github.com/ocidisk/ocidisk/fstree"
)

// The recipes below keep a root bootable: they change what a real image
// build would change (documentation dropped, network configured, the dpkg
// database written) through the same layer semantics as the test recipe,
// but never delete or replace what the system needs.

// networkUnit is the systemd-networkd configuration of the systemd root:
// DHCP on any wired NIC. QEMU virt's virtio-net-pci NIC is enp0s1 under
// systemd's predictable names, eth0 with net.ifnames=0; boards' NICs are
// end0, enx..., eth0.
const networkUnit = `# ocidisk test root: DHCP on every wired NIC.
[Match]
Name=en* eth*

[Network]
DHCP=yes
`

// hosts is Debian's /etc/hosts for the host name "debian".
const hosts = `127.0.0.1	localhost
127.0.1.1	debian

::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// systemdSteps configures a systemd root: layer 3 drops manual pages,
// translations and documentation (a whiteout of two directories and an
// opaque one); layer 4 enables systemd-networkd with DHCP on wired NICs and
// gives the root a host name of its own instead of the build machine's.
//
// systemd-networkd rather than ifupdown and dhclient: networkd is part of
// the systemd package and already running when udev names the NIC, so the
// lease comes without starting a process; dhclient (and the dhclient-script
// shell script, which runs ip several times) costs several process starts,
// each slow under TCG, and ifup@enp0s1.service is a job that boot waits for
// until the lease. systemd-networkd-wait-online is left disabled, as
// Debian leaves it: it would hold whatever is ordered after
// network-online.target until a lease that never comes with -nic none.
func systemdSteps() []step {
	return []step{
		{3, "whiteout", func(s *splitter, l int) error {
			for _, p := range []string{"usr/share/man", "usr/share/locale"} {
				if x := s.st.get(p); x != nil && x.rec.Type == fstree.TypeDir {
					if err := s.whiteout(l, p, fmt.Sprintf("%d entries", s.subtree(p))); err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{3, "opaque", func(s *splitter, l int) error {
			if x := s.st.get("usr/share/doc"); x != nil && x.rec.Type == fstree.TypeDir {
				return s.opaque(l, "usr/share/doc", fmt.Sprintf("hiding %d entries", s.subtree("usr/share/doc")))
			}
			return nil
		}},
		{4, "add", func(s *splitter, l int) error {
			if err := s.put(l, fileRec("etc/systemd/network/50-dhcp.network", 0o644, networkUnit), "add", "DHCP on en* and eth*"); err != nil {
				return err
			}
			// What `systemctl enable systemd-networkd` makes, without
			// systemd-networkd-wait-online.service (see above).
			for _, e := range []struct{ dir, name, target string }{
				{"multi-user.target.wants", "systemd-networkd.service", "systemd-networkd.service"},
				{"sockets.target.wants", "systemd-networkd.socket", "systemd-networkd.socket"},
				{"", "dbus-org.freedesktop.network1.service", "systemd-networkd.service"},
			} {
				dir := path.Join("etc/systemd/system", e.dir)
				if s.st.get(dir) == nil {
					if err := s.put(l, dirRec(dir, 0o755), "add", ""); err != nil {
						return err
					}
				}
				if err := s.put(l, symlinkRec(path.Join(dir, e.name), "/lib/systemd/system/"+e.target), "add", "enables systemd-networkd"); err != nil {
					return err
				}
			}
			return nil
		}},
		{4, "replace", hostIdentity},
	}
}

// hostIdentity gives the root Debian's default host name, replacing the
// build machine's that mmdebstrap copies in, and the matching /etc/hosts.
func hostIdentity(s *splitter, l int) error {
	op := "add"
	if s.st.get("etc/hostname") != nil {
		op = "replace"
	}
	if err := s.put(l, fileRec("etc/hostname", 0o644, "debian\n"), op, "the build machine's name"); err != nil {
		return err
	}
	if s.st.get("etc/hosts") == nil {
		return s.put(l, fileRec("etc/hosts", 0o644, hosts), "add", "")
	}
	return nil
}

// unpackedSteps writes, above an extracted root, the dpkg database db as
// `dpkg --unpack` would have left it: layer 3 replaces the status file and
// adds every package's info files; layer 4 moves each conffile aside to
// NAME.dpkg-new (a whiteout and an add), as dpkg unpacks a conffile it has
// not configured yet, so that `dpkg --configure` installs it and records
// its hash; it also gives the root a host name.
func unpackedSteps(db *dpkgDatabase) []step {
	return []step{
		{3, "add", func(s *splitter, l int) error {
			for _, f := range db.paths() {
				op, note := "add", "dpkg database"
				if s.st.get(f) != nil {
					op = "replace"
				}
				x := fileRec(f, 0o644, string(db.files[f]))
				if db.scripts[f] {
					x.rec.Mode = 0o755
				}
				if err := s.put(l, x, op, note); err != nil {
					return err
				}
			}
			return nil
		}},
		{4, "whiteout", func(s *splitter, l int) error {
			for _, c := range db.conffiles {
				x := s.st.get(c)
				if x == nil || x.rec.Type != fstree.TypeRegular || x.group != "" || s.st.get(c+".dpkg-new") != nil {
					continue
				}
				if err := s.whiteout(l, c, "conffile, unpacked as .dpkg-new"); err != nil {
					return err
				}
				moved := *x
				moved.rec.Path = c + ".dpkg-new"
				if err := s.put(l, &moved, "add", "conffile awaiting dpkg --configure"); err != nil {
					return err
				}
			}
			return nil
		}},
		{4, "replace", hostIdentity},
	}
}

// recipeSteps returns the steps of spec's recipe. db is the dpkg database
// of RecipeUnpacked, nil for the others.
func recipeSteps(spec TreeSpec, db *dpkgDatabase) ([]step, error) {
	switch spec.Recipe {
	case RecipeTest:
		return allSteps(spec.Marker), nil
	case RecipeSystemd:
		return systemdSteps(), nil
	case RecipeUnpacked:
		if db == nil {
			return nil, fmt.Errorf("debian tree %s: recipe %s without a dpkg database", spec.Name, spec.Recipe)
		}
		return unpackedSteps(db), nil
	}
	return nil, fmt.Errorf("debian tree %s: unknown recipe %q (want %q, %q or %q)", spec.Name, spec.Recipe,
		RecipeTest, RecipeSystemd, RecipeUnpacked)
}

// paths returns the database's files in walk order.
func (db *dpkgDatabase) paths() []string {
	ps := slices.Collect(maps.Keys(db.files))
	slices.SortFunc(ps, walkCompare)
	return ps
}
