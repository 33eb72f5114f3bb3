package debian

import "context"

// SystemdRoot returns a configured Debian bookworm arm64 root that boots with
// systemd to a login prompt, gets an address by DHCP on its wired NIC
// (systemd-networkd) and runs sshd: mmdebstrap's minbase plus
// bootPackages, installed and configured through qemu-user (see
// scripts/setup), in five layers (RecipeSystemd). Its root account is
// locked, as Debian leaves it: log in by giving a password hash or an ssh
// key to the image build. It carries what a configured Debian root carries:
// the ssh host keys made while it was configured and an empty
// /etc/machine-id.
func (c *Cache) SystemdRoot(ctx context.Context) (*DebianTree, error) {
	return c.Tree(ctx, SystemdRootSpec())
}

// ExtractRoot returns SystemdRoot's package set unpacked and not configured
// (mmdebstrap's extract variant, no emulation needed), with the dpkg
// database `dpkg --unpack` would have left (RecipeUnpacked): the input of
// a second stage that configures it inside the guest.
//
// The second stage needs more than `dpkg --configure -a`. Tried in a
// chroot of this root's flattened tree on this machine (qemu-user through
// binfmt_misc; /proc, /sys and /dev mounted, as a guest has them, and as
// debootstrap mounts them for its own second stage), this configures all
// 133 packages without an error (`dpkg --audit` silent, every package
// "ii", no .dpkg-new left) in about 3.5 minutes on a loaded machine; a TCG
// guest will be slower:
//
//	export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin
//	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
//	/var/lib/dpkg/info/base-passwd.preinst install
//	dpkg --configure -a
//	rm /usr/sbin/policy-rc.d
//
// Why each line:
//   - DEBIAN_FRONTEND and DEBCONF_NONINTERACTIVE_SEEN: debconf asks
//     nothing (tzdata, libc6); LC_ALL and PATH because the guest's init
//     may set neither.
//   - policy-rc.d: invoke-rc.d then starts no service (sshd, dbus) from a
//     postinst, whatever the guest's init looks like to it ("policy-rc.d
//     denied execution of start"); debootstrap's second stage writes the
//     same file.
//   - base-passwd's preinst: `dpkg --unpack` runs every preinst, the extract
//     variant runs none, and only base-passwd's matters on a fresh system:
//     it writes /etc/passwd and /etc/group. Without them base-files'
//     postinst fails (chown: invalid user 'root:root') and bash, which
//     depends on base-files, stays unconfigured: that was the only failure
//     of a plain `dpkg --configure -a`. The other preinsts
//     (dpkg-maintscript-helper calls, upgrade paths, usr-is-merged's check
//     that /usr is merged) do nothing on an install, and would need dpkg's
//     DPKG_MAINTSCRIPT_* environment to run outside dpkg.
//   - dpkg --configure -a orders the configuration by dependencies itself:
//     no package order to give and no --force-depends (debootstrap needs
//     both because it installs its core packages one by one into an empty
//     database first). It moves each conffile (unpacked as NAME.dpkg-new)
//     into place and records its hash, runs the trigger interests the
//     database registers (ldconfig), and no postinst missed /usr/bin/awk
//     before mawk's made it (debootstrap links it by hand).
//   - Nothing else: debootstrap's /var/lib/dpkg/available and dselect
//     method file serve `dpkg --predep-package`, which this does not use.
//
// What the second stage leaves that a committed image should not carry,
// all made in the guest: ssh host keys, /etc/machine-id (dbus's postinst
// makes one and systemd copies it), /etc/shadow's last-change days from
// the guest's clock, and dpkg's and apt's logs. (mmdebstrap's own cleanup
// empties /etc/machine-id and removes those logs.)
func (c *Cache) ExtractRoot(ctx context.Context) (*DebianTree, error) {
	return c.Tree(ctx, ExtractRootSpec())
}
