package bootfs

import (
	"fmt"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs/uki"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
)

// A board with a uki section boots one EFI executable: systemd's stub with
// the kernel, the initramfs, the command line, the root's os-release and
// the kernel version as sections. Firmware parses nothing but the PE
// file, there is no loader config to get wrong, and the image is
// measured and signed as one.

// ukiInputs gathers the parts every slot's UKI shares: the stub from the
// firmware source, the kernel as an EFI application (an uncompressed
// Image, whatever kernel.uncompressed says: the stub starts it as a PE),
// the initramfs, the version and os-release from the root. The command
// line is the slot's.
func ukiInputs(b *boards.Board, k *kernel.Kernel, initrd *fstree.Node, opts Options) (*uki.Parts, error) {
	stub, err := ukiStub(b.UKI, opts.Firmware, opts.FirmwareSource)
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", b.Name, err)
	}
	linux, err := k.Image(true)
	if err != nil {
		return nil, err
	}
	return &uki.Parts{Stub: stub, Linux: linux, Initrd: initrd, Uname: k.Version, OSRelease: osRelease(opts.Root)}, nil
}

// ukiStub reads the EFI stub: the first of the globs that matches
// anything must match one file.
func ukiStub(u *boards.UKI, fw *fstree.Tree, srcName string) ([]byte, error) {
	if srcName == "" {
		srcName = "the firmware source"
	}
	if fw == nil {
		return nil, fmt.Errorf("the UKI needs systemd's EFI stub (%s): give a firmware source (e.g. deb:systemd-boot-efi_..._arm64.deb)",
			strings.Join(u.Stub, ", "))
	}
	for _, g := range u.Stub {
		m := matchFiles(fw, "", g)
		switch {
		case len(m) > 1:
			return nil, fmt.Errorf("UKI stub %s matches %d files in %s (%s): the pack's glob must name one", g, len(m), srcName, strings.Join(m, ", "))
		case len(m) == 1:
			n, err := fw.Lookup(m[0])
			if err != nil {
				return nil, err
			}
			b, err := fstree.ReadAll(n)
			if err != nil {
				return nil, fmt.Errorf("UKI stub %s: %w", m[0], err)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("the UKI needs systemd's EFI stub, not found in %s (looked for %s): give --firmware deb:systemd-boot-efi_..._arm64.deb, or a root with systemd-boot-efi installed",
		srcName, strings.Join(u.Stub, ", "))
}

// osRelease returns the root's os-release (/etc/os-release, else
// /usr/lib/os-release, as systemd reads it), or "" when it has none or
// there is no root: the UKI then has no .osrel section.
func osRelease(root *fstree.Tree) string {
	if root == nil {
		return ""
	}
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		rp, err := root.Realpath(p)
		if err != nil {
			continue
		}
		n, err := root.Lookup(rp)
		if err != nil || n.Type != fstree.TypeRegular {
			continue
		}
		if b, err := fstree.ReadAll(n); err == nil {
			return string(b)
		}
	}
	return ""
}

// putUKI assembles the UKI with a slot's command line and puts it on the
// boot partition.
func (a *assembly) putUKI(b *boards.Board, parts *uki.Parts, cmdline string) error {
	p := *parts
	p.Cmdline = cmdline
	im, err := uki.Build(p)
	if err != nil {
		return fmt.Errorf("board %s: %w", b.Name, err)
	}
	n := im.Node()
	if a.hashes.names([]byte(cmdline), a.slots) {
		// The .cmdline section names a root hash known only once the
		// root is written: the UKI is read whole then, to resolve it (its
		// PE checksum is zero, as ukify leaves it, so nothing else
		// changes).
		n = fstree.NewFile(n.Mode, n.Size, &deferred{src: im, h: a.hashes, slots: a.slots})
	}
	n.Mtime = a.when
	return a.put(b.UKI.Path, n)
}
