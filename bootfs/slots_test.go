package bootfs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/kernel/kerneltest"
)

// partUUIDs stands in for diskimage's identifiers: "disk-NN" by the
// partition's number in l.
func partUUIDs(l *boards.Layout) func(string) string {
	return func(name string) string {
		for _, p := range l.Partitions {
			if p.Name == name {
				return fmt.Sprintf("1a2b3c4d-%02x", p.Number)
			}
		}
		return ""
	}
}

// rootPartUUID gives the root partition (or slot A's) uuid, and no
// other partition any.
func rootPartUUID(uuid string) func(string) string {
	return func(name string) string {
		if name == "root" || name == "root-a" {
			return uuid
		}
		return ""
	}
}

// laid lays b out as it stands.
func laid(t *testing.T, b *boards.Board) *boards.Layout {
	t.Helper()
	l, err := b.Layout(boards.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// withModules adds modules (name, then .modinfo lines) to a kernel.
func withModules(t *testing.T, k *kernel.Kernel, mods ...string) *kernel.Kernel {
	t.Helper()
	for _, m := range mods {
		b := kerneltest.Module("name="+m, "depends=")
		p := k.ModulesDir + "/kernel/" + m + ".ko"
		if err := k.Tree.Put(p, fstree.NewFile(0o644, int64(len(b)), fstree.Bytes(b)), fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	k2, err := kernel.Find(k.Tree)
	if err != nil {
		t.Fatal(err)
	}
	return k2
}

func layout(t *testing.T, name string, o boards.LayoutOptions) *boards.Layout {
	t.Helper()
	b, err := boards.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Layout(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestAssembleSlotsShared: one boot partition whose extlinux.conf has a
// label per slot, each naming its own root; the default is slot A; the
// command lines ask for a read-only root, the data partition, growth and
// the overlay kept on the data partition; the initramfs loads overlayfs.
func TestAssembleSlotsShared(t *testing.T) {
	for _, tc := range []struct {
		opts    boards.LayoutOptions
		check   bool     // Options.CheckRoot
		args    []string // the init's parameters on slot A's command line
		labels  []string
		modules string // beyond the board's
	}{
		{opts: boards.LayoutOptions{}, labels: []string{"ocidisk"}},
		{opts: boards.LayoutOptions{RootSize: boards.Grow}, check: true, labels: []string{"ocidisk"}, args: []string{"ro", "ocidisk.growroot"}},
		{opts: boards.LayoutOptions{Data: "64MiB"}, check: true, labels: []string{"ocidisk"}, args: []string{"ro", "ocidisk.data=PARTUUID=1a2b3c4d-03"}},
		{opts: boards.LayoutOptions{AB: true, Data: "grow"}, labels: []string{"slot-a", "slot-b"},
			args:    []string{"ro", "ocidisk.slot=a", "ocidisk.data=PARTUUID=1a2b3c4d-04", "ocidisk.grow", "ocidisk.overlay=PARTUUID=1a2b3c4d-04"},
			modules: "overlay"},
		{opts: boards.LayoutOptions{AB: true}, labels: []string{"slot-a", "slot-b"},
			args: []string{"ro", "ocidisk.slot=a", "ocidisk.overlay=tmpfs"}, modules: "overlay"},
		{opts: boards.LayoutOptions{Data: "64MiB"}, labels: []string{"ocidisk"},
			args: []string{"ocidisk.data=PARTUUID=1a2b3c4d-03"}},
		{opts: boards.LayoutOptions{RootFS: "squashfs"}, labels: []string{"ocidisk"},
			args: []string{"ro", "ocidisk.overlay=tmpfs"}, modules: "squashfs overlay"},
	} {
		t.Run(fmt.Sprintf("%+v", tc.opts), func(t *testing.T) {
			b := layout(t, "qemu-virt-arm64", tc.opts)
			k := withModules(t, fakeKernel(t, ""), "overlay", "squashfs")
			res, err := Assemble(b, k, Options{PartUUID: partUUIDs(b), CmdlineAppend: []string{"quiet"}, CheckRoot: tc.check, Time: time.Unix(1_700_000_000, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Partitions) != 1 || res.Partitions["boot"] != res.Boot {
				t.Fatalf("partitions %v: want the boot partition alone", res.Partitions)
			}
			conf := read(t, res.Boot, "extlinux/extlinux.conf")
			if !strings.Contains(conf, "\ndefault "+tc.labels[0]+"\n") {
				t.Errorf("extlinux.conf does not default to %s:\n%s", tc.labels[0], conf)
			}
			if len(res.Cmdlines) != len(tc.labels) {
				t.Fatalf("%d command lines for %d slots", len(res.Cmdlines), len(tc.labels))
			}
			rootFS := "ext4"
			if tc.opts.RootFS != "" {
				rootFS = string(tc.opts.RootFS)
			}
			for i, label := range tc.labels {
				cl := res.Cmdlines[i]
				root := fmt.Sprintf("root=PARTUUID=1a2b3c4d-%02d rootfstype=%s rootwait", 2+i, rootFS)
				want := "console=ttyAMA0 " + root + " " + strings.Join(append(tc.args, "quiet"), " ")
				if i == 1 {
					want = strings.Replace(want, "ocidisk.slot=a", "ocidisk.slot=b", 1)
				}
				if cl != want {
					t.Errorf("slot %d command line\n%q, want\n%q", i, cl, want)
				}
				entry := fmt.Sprintf("label %s\n  kernel /Image\n  initrd /initrd.img\n  append %s\n", label, cl)
				if !strings.Contains(conf, entry) {
					t.Errorf("extlinux.conf lacks\n%s\n---\n%s", entry, conf)
				}
			}
			if strings.Count(conf, "\nlabel ") != len(tc.labels) {
				t.Errorf("extlinux.conf has %d labels:\n%s", strings.Count(conf, "\nlabel "), conf)
			}
			var extra []string
			for _, m := range res.Modules {
				if m.Name == "overlay" || m.Name == "squashfs" {
					extra = append(extra, m.Name)
				}
			}
			if strings.Join(extra, " ") != tc.modules {
				t.Errorf("layout modules %q, want %q", extra, tc.modules)
			}
		})
	}
}

// TestAssembleSlotsPerSlot: a Pi 4 A/B layout has a boot partition per
// slot, each with the firmware, kernel and a cmdline.txt naming its own
// root, and a select partition whose autoboot.txt boots slot A and tries
// slot B.
func TestAssembleSlotsPerSlot(t *testing.T) {
	b := layout(t, "rpi4", boards.LayoutOptions{AB: true, Data: "grow"})
	k := withModules(t, piKernel(t), "overlay")
	overlay := fstree.New()
	overlay.Put("extra.txt", fstree.NewFile(0o644, 2, fstree.Bytes("hi")), nil)
	res, err := Assemble(b, k, Options{PartUUID: partUUIDs(b), Firmware: piFirmware(t, "usr/lib/raspi-firmware", ""),
		BootOverlay: overlay, ConfigAppend: "dtparam=audio=on", Time: time.Unix(1_700_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Partitions) != 3 || res.Partitions["boot-a"] != res.Boot || res.Partitions["select"] == nil {
		t.Fatalf("partitions %v: want select, boot-a, boot-b", res.Partitions)
	}
	want := "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
	if got := read(t, res.Partitions["select"], "autoboot.txt"); got != want {
		t.Errorf("autoboot.txt =\n%s\nwant\n%s", got, want)
	}
	if es := res.Partitions["select"].Root.Entries(); len(es) != 1 {
		t.Errorf("select partition holds %d files, want autoboot.txt alone", len(es))
	}
	for i, slot := range []string{"a", "b"} {
		boot := res.Partitions["boot-"+slot]
		cl := read(t, boot, "cmdline.txt")
		root := fmt.Sprintf("root=PARTUUID=1a2b3c4d-%02d ", 4+i)
		if !strings.Contains(cl, root) || !strings.Contains(cl, " ocidisk.slot="+slot+" ") ||
			!strings.HasSuffix(cl, " ocidisk.data=PARTUUID=1a2b3c4d-06 ocidisk.grow ocidisk.overlay=PARTUUID=1a2b3c4d-06\n") {
			t.Errorf("slot %s cmdline.txt %q", slot, cl)
		}
		if cl != res.Cmdlines[i]+"\n" {
			t.Errorf("slot %s cmdline.txt %q, Cmdlines[%d] %q", slot, cl, i, res.Cmdlines[i])
		}
		for _, f := range []string{"start4.elf", "fixup4.dat", "kernel8.img", "initramfs8", "bcm2711-rpi-4-b.dtb", "extra.txt"} {
			if _, err := boot.Lookup(f); err != nil {
				t.Errorf("slot %s boot partition lacks %s", slot, f)
			}
		}
		if conf := read(t, boot, "config.txt"); !strings.HasSuffix(conf, "[all]\ndtparam=audio=on\n") {
			t.Errorf("slot %s config.txt lacks the user's lines:\n%s", slot, conf)
		}
	}
	// The slots' trees share no node: a FAT writer must see two copies.
	seen := map[*fstree.Node]bool{}
	res.Partitions["boot-a"].Walk(func(_ string, n *fstree.Node) error { seen[n] = true; return nil })
	res.Partitions["boot-b"].Walk(func(p string, n *fstree.Node) error {
		if seen[n] {
			t.Errorf("%s is the same node in both boot partitions", p)
		}
		return nil
	})
}

// TestAssembleSlotsErrors: the init's parameters need PARTUUIDs, and a
// read-only root needs overlayfs from the kernel.
func TestAssembleSlotsErrors(t *testing.T) {
	b := layout(t, "qemu-virt-arm64", boards.LayoutOptions{AB: true})
	if _, err := Assemble(b, withModules(t, fakeKernel(t, ""), "overlay"), Options{PartUUID: rootPartUUID("1a2b3c4d-02")}); err == nil ||
		!strings.Contains(err.Error(), `no PARTUUID for the root partition of slot "b"`) {
		t.Errorf("no PartUUID: %v", err)
	}
	if _, err := Assemble(b, fakeKernel(t, ""), Options{PartUUID: partUUIDs(b)}); err == nil ||
		!strings.Contains(err.Error(), "module overlay not found") {
		t.Errorf("no overlay module: %v", err)
	}
}

// TestBootMountModules: a board whose root mounts its FAT boot partition
// gets the kernel's FAT modules in the initramfs (those it has), since a
// root without kmod cannot load them when it mounts the partition.
func TestBootMountModules(t *testing.T) {
	for _, tc := range []struct {
		mount string
		want  string
	}{
		{"/boot/firmware", "vfat nls_cp437"},
		{"", ""},
	} {
		b := layout(t, "qemu-virt-arm64", boards.LayoutOptions{})
		board := *b.Board
		board.BootMount = tc.mount
		b.Board = &board
		// This kernel has no nls_ascii: it is left out.
		k := withModules(t, fakeKernel(t, ""), "vfat", "nls_cp437")
		res, err := Assemble(b, k, Options{PartUUID: partUUIDs(b), Time: time.Unix(1_700_000_000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range res.Modules {
			if strings.HasPrefix(m.Name, "nls") || m.Name == "vfat" {
				got = append(got, m.Name)
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("boot-mount %q: modules %q, want %q", tc.mount, got, tc.want)
		}
	}
}
