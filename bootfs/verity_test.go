package bootfs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/kernel"
)

// TestAssembleVerity: with Options.Verity, every slot's command line asks
// the init for a verified root, naming the slot's own root hash; the
// hashes are asked for only when the configs are read (as the boot
// partition's writer does, after the root's), and the configs keep the
// size they were assembled with. dm-verity goes into the initramfs.
func TestAssembleVerity(t *testing.T) {
	hashes := map[string][]byte{"": bytes.Repeat([]byte{0xab}, 32), "a": bytes.Repeat([]byte{0xaa}, 32), "b": bytes.Repeat([]byte{0xbb}, 32)}
	for _, tc := range []struct {
		name  string
		board string
		opts  boards.LayoutOptions
		k     func(t *testing.T) *kernel.Kernel
		fw    func(t *testing.T) *fstree.Tree
		root  func(t *testing.T) *fstree.Tree
		// the config holding each slot's command line, by boot partition
		files map[string]string // slot: partition:path
	}{
		{name: "one root", board: "qemu-virt-arm64", opts: boards.LayoutOptions{RootFS: boards.Erofs},
			k: func(t *testing.T) *kernel.Kernel {
				return withModules(t, fakeKernel(t, ""), "overlay", "erofs", "dm-verity")
			},
			files: map[string]string{"": "boot:extlinux/extlinux.conf"}},
		{name: "A/B shared", board: "qemu-virt-arm64", opts: boards.LayoutOptions{RootFS: boards.Squashfs, AB: true},
			k: func(t *testing.T) *kernel.Kernel {
				return withModules(t, fakeKernel(t, ""), "overlay", "squashfs", "dm-verity")
			},
			files: map[string]string{"a": "boot:extlinux/extlinux.conf", "b": "boot:extlinux/extlinux.conf"}},
		{name: "A/B per slot", board: "rpi4", opts: boards.LayoutOptions{RootFS: boards.Squashfs, AB: true},
			k: func(t *testing.T) *kernel.Kernel {
				return withModules(t, piKernel(t), "overlay", "squashfs", "dm-verity")
			},
			fw:    func(t *testing.T) *fstree.Tree { return piFirmware(t, "usr/lib/raspi-firmware", "") },
			files: map[string]string{"a": "boot-a:cmdline.txt", "b": "boot-b:cmdline.txt"}},
		// The command line is a section of the UKI, resolved when the UKI
		// is read.
		{name: "UKI", board: "efi-arm64", opts: boards.LayoutOptions{RootFS: boards.Erofs},
			k: func(t *testing.T) *kernel.Kernel {
				return withModules(t, efiKernel(t), "overlay", "erofs", "dm-verity")
			},
			fw:    func(t *testing.T) *fstree.Tree { fw, _, _ := efiInputs(t); return fw },
			root:  func(t *testing.T) *fstree.Tree { _, root, _ := efiInputs(t); return root },
			files: map[string]string{"": "esp:EFI/BOOT/BOOTAA64.EFI"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := layout(t, tc.board, tc.opts)
			asked := 0
			v := &Verity{HashOffset: 40960, DataBlocks: 10, Salt: []byte{1, 2, 0xfe},
				RootHash: func(slot string) ([]byte, error) { asked++; return hashes[slot], nil }}
			var fw, root *fstree.Tree
			if tc.fw != nil {
				fw = tc.fw(t)
			}
			if tc.root != nil {
				root = tc.root(t)
			}
			res, err := Assemble(l, tc.k(t), Options{PartUUID: partUUIDs(l), Firmware: fw, Root: root, Verity: v,
				CmdlineAppend: []string{"quiet"}, Time: time.Unix(1_700_000_000, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if asked != 0 {
				t.Errorf("Assemble asked for root hashes %d times: they are not known before the root is written", asked)
			}
			if !hasModule(res.Modules, "dm_verity") {
				t.Error("no dm-verity in the initramfs")
			}
			for i, slot := range l.Slots() {
				want := fmt.Sprintf("ocidisk.verity=%x ocidisk.verity.hash-offset=40960 ocidisk.verity.salt=0102fe ocidisk.verity.data-blocks=10 quiet", hashes[slot])
				cl, err := res.Resolve(res.Cmdlines[i])
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasSuffix(cl, " "+want) {
					t.Errorf("slot %q: command line %q, want it to end %q", slot, cl, want)
				}
				part, file, _ := strings.Cut(tc.files[slot], ":")
				n, err := res.Partitions[part].Lookup(file)
				if err != nil {
					t.Fatal(err)
				}
				b, err := fstree.ReadAll(n)
				if err != nil {
					t.Fatal(err)
				}
				text := string(b)
				if int64(len(text)) != n.Size {
					t.Errorf("%s: %d bytes read, %d assembled", tc.files[slot], len(text), n.Size)
				}
				if !strings.Contains(text, cl) {
					t.Errorf("%s does not hold slot %q's command line %q:\n%s", tc.files[slot], slot, cl, text)
				}
			}
			if asked == 0 {
				t.Error("reading the configs never asked for a root hash")
			}
		})
	}
}

// TestAssembleVerityErrors: a root hash that cannot be had fails the
// read of the config that names it (and so the boot partition's write),
// with the reason.
func TestAssembleVerityErrors(t *testing.T) {
	l := layout(t, "qemu-virt-arm64", boards.LayoutOptions{RootFS: boards.Erofs})
	k := withModules(t, fakeKernel(t, ""), "overlay", "erofs", "dm-verity")
	for _, tc := range []struct {
		name string
		root func(string) ([]byte, error)
		want string
	}{
		{"not written yet", func(string) ([]byte, error) { return nil, errors.New("the root is not written yet") }, `root hash of slot "": the root is not written yet`},
		{"short hash", func(string) ([]byte, error) { return []byte{1, 2}, nil }, `root hash of slot "": 2 bytes, want 32`},
	} {
		res, err := Assemble(l, k, Options{PartUUID: partUUIDs(l), Verity: &Verity{HashOffset: 4096, DataBlocks: 1, RootHash: tc.root}})
		if err != nil {
			t.Fatal(err)
		}
		n, err := res.Boot.Lookup("extlinux/extlinux.conf")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Content.Open(); err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Assemble(l, k, Options{PartUUID: partUUIDs(l), Verity: &Verity{}}); err == nil {
		t.Error("Assemble took a Verity without RootHash")
	}
	// No verity: no dm-verity, and no verity argument.
	res, err := Assemble(l, k, Options{PartUUID: partUUIDs(l)})
	if err != nil {
		t.Fatal(err)
	}
	if hasModule(res.Modules, "dm_verity") || strings.Contains(res.Cmdline, "verity") {
		t.Errorf("without Verity: modules %v, command line %q", res.Modules, res.Cmdline)
	}
}

func hasModule(ms []*kernel.Module, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}
