package qemu

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ocidisk/ocidisk/boards"
)

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return m
}

func TestConfigTxt(t *testing.T) {
	pi3 := &boards.PiFirmware{Filters: []string{"pi3"}, Kernel: "kernel8.img", DTB: "bcm2837-rpi-3-b.dtb", DTBDownstream: "bcm2710-rpi-3-b.dtb"}
	pi02 := &boards.PiFirmware{Filters: []string{"pi0", "pi0w", "pi02"}, Kernel: "kernel8.img", DTB: "bcm2837-rpi-zero-2-w.dtb"}
	virt4 := &boards.PiFirmware{Filters: []string{"pi4"}, Kernel: "kernel8.img"}
	dtbs := "bcm2837-rpi-3-b.dtb bcm2710-rpi-3-b.dtb bcm2837-rpi-zero-2-w.dtb"
	for _, tc := range []struct {
		name   string
		pi     *boards.PiFirmware
		config string
		files  string // more files on the boot partition, space-separated; -NAME removes one
		extra  map[string]string
		want   piBoot
		err    string
	}{
		{name: "ocidisk's own", pi: pi3,
			config: "# x\narm_64bit=1\nenable_uart=1\nupstream_kernel=1\nkernel=kernel8.img\ninitramfs initramfs8 followkernel\n",
			want:   piBoot{Kernel: "kernel8.img", Initramfs: []string{"initramfs8"}, DTB: "bcm2837-rpi-3-b.dtb", Cmdline: "cmdline.txt"}},
		{name: "defaults", pi: pi3, config: "arm_64bit=1\n",
			want: piBoot{Kernel: "kernel8.img", DTB: "bcm2710-rpi-3-b.dtb", Cmdline: "cmdline.txt"}},
		{name: "model sections", pi: pi3,
			config: "kernel=all.img\n[pi4]\nkernel=k4.img\n[pi3]\nkernel=k3.img\n[pi3+]\nkernel=k3plus.img\n[pi02]\nkernel=k02.img\n[all]\ncmdline=c.txt\n",
			want:   piBoot{Kernel: "k3.img", DTB: "bcm2710-rpi-3-b.dtb", Cmdline: "c.txt"}},
		{name: "a Zero 2 W sees [pi0] and [pi02], not [pi3]", pi: pi02,
			config: "upstream_kernel=1\n[pi3]\nkernel=k3.img\n[pi0]\ninitramfs zero.img\n[pi02]\nkernel=k02.img\n[all]\n",
			want:   piBoot{Kernel: "k02.img", Initramfs: []string{"zero.img"}, DTB: "bcm2837-rpi-zero-2-w.dtb", Cmdline: "cmdline.txt"}},
		{name: "[none] and hardware filters", pi: pi3,
			config: "[none]\nkernel=none.img\n[all]\n[EDID=DEL-DELL_U2422H]\nkernel=edid.img\n[all]\n[pi3]\n[gpio4=1]\nkernel=gpio.img\n[all]\n[HDMI:0]\ncmdline=hdmi.txt\n",
			want:   piBoot{Kernel: "kernel8.img", DTB: "bcm2710-rpi-3-b.dtb", Cmdline: "hdmi.txt"}},
		{name: "include, overlays and an initramfs list", pi: pi3,
			config: "include extra.txt\ndtoverlay=disable-bt\n[pi4]\ndtoverlay=vc4-kms-v3d\n[all]\n",
			extra:  map[string]string{"extra.txt": "initramfs a.img,b.img followkernel\ndtparam=audio=on\n"},
			want: piBoot{Kernel: "kernel8.img", Initramfs: []string{"a.img", "b.img"}, DTB: "bcm2710-rpi-3-b.dtb", Cmdline: "cmdline.txt",
				Overlays: []string{"dtparam=audio=on", "dtoverlay=disable-bt"}}},
		{name: "ramfsfile", pi: pi3, config: "ramfsfile=r.img\n",
			want: piBoot{Kernel: "kernel8.img", Initramfs: []string{"r.img"}, DTB: "bcm2710-rpi-3-b.dtb", Cmdline: "cmdline.txt"}},
		{name: "upstream_kernel looks in upstream/", pi: pi3, config: "upstream_kernel=1\ninitramfs rd followkernel\n",
			files: "upstream/kernel8.img upstream/bcm2837-rpi-3-b.dtb",
			want:  piBoot{Kernel: "upstream/kernel8.img", Initramfs: []string{"upstream/rd"}, DTB: "upstream/bcm2837-rpi-3-b.dtb", Cmdline: "upstream/cmdline.txt"}},
		{name: "os_prefix without its kernel is dropped", pi: pi3, config: "os_prefix=next/\n",
			want: piBoot{Kernel: "kernel8.img", DTB: "bcm2710-rpi-3-b.dtb", Cmdline: "cmdline.txt"}},
		{name: "os_prefix", pi: pi3, config: "os_prefix=next/\nkernel=Image\n", files: "next/Image next/bcm2710-rpi-3-b.dtb",
			want: piBoot{Kernel: "next/Image", DTB: "next/bcm2710-rpi-3-b.dtb", Cmdline: "next/cmdline.txt"}},
		{name: "device_tree", pi: pi3, config: "device_tree=custom.dtb\n", files: "custom.dtb",
			want: piBoot{Kernel: "kernel8.img", DTB: "custom.dtb", Cmdline: "cmdline.txt"}},
		{name: "upstream device tree missing", pi: pi3, config: "upstream_kernel=1\n", files: "-bcm2837-rpi-3-b.dtb",
			want: piBoot{Kernel: "kernel8.img", DTB: "bcm2710-rpi-3-b.dtb", Cmdline: "cmdline.txt"}},
		{name: "no device tree", pi: pi3, config: "upstream_kernel=1\n", files: "-bcm2837-rpi-3-b.dtb -bcm2710-rpi-3-b.dtb",
			err: "device tree bcm2837-rpi-3-b.dtb or bcm2710-rpi-3-b.dtb, which is not on the boot partition"},
		{name: "virt takes no device tree", pi: virt4, config: "[pi4]\nkernel=k4.img\n[all]\n", files: "-bcm2837-rpi-3-b.dtb",
			want: piBoot{Kernel: "k4.img", Cmdline: "cmdline.txt"}},
		{name: "no config.txt", pi: pi3, config: "-", err: "no config.txt on the boot partition"},
		{name: "include loop", pi: pi3, config: "include config.txt\n", err: "nested too deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"config.txt": tc.config}
			for _, d := range strings.Fields(dtbs) {
				files[d] = "dtb"
			}
			for _, f := range strings.Fields(tc.files) {
				if n, ok := strings.CutPrefix(f, "-"); ok {
					delete(files, n)
				} else {
					files[f] = f
				}
			}
			maps.Copy(files, tc.extra)
			if tc.config == "-" {
				delete(files, "config.txt")
			}
			got, err := configTxt(mapFS(files), tc.pi)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kernel != tc.want.Kernel || got.DTB != tc.want.DTB || got.Cmdline != tc.want.Cmdline ||
				!slices.Equal(got.Initramfs, tc.want.Initramfs) || !slices.Equal(got.Overlays, tc.want.Overlays) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestExtlinux(t *testing.T) {
	for _, tc := range []struct {
		name, path, conf string
		want             extlinuxEntry
		err              string
	}{
		{name: "ocidisk's own", path: "extlinux/extlinux.conf",
			conf: "# Generated\ndefault ocidisk\ntimeout 0\nlabel ocidisk\n  kernel /Image\n  initrd /initrd.img\n  fdtdir /dtbs\n  append console=ttyS0,115200n8 root=PARTUUID=1a2b3c4d-02 rootwait\n",
			want: extlinuxEntry{Conf: "extlinux/extlinux.conf", Label: "ocidisk", Kernel: "/Image", Initrd: []string{"/initrd.img"},
				Append: "console=ttyS0,115200n8 root=PARTUUID=1a2b3c4d-02 rootwait"}},
		{name: "default picks its label", path: "boot/extlinux/extlinux.conf",
			conf: "MENU TITLE x\nDEFAULT b\nLABEL a\nLINUX /a\nLABEL b\nLINUX /b\nINITRD /r1,/r2\nAPPEND x=1\n",
			want: extlinuxEntry{Conf: "boot/extlinux/extlinux.conf", Label: "b", Kernel: "/b", Initrd: []string{"/r1", "/r2"}, Append: "x=1"}},
		{name: "first label without default", path: "extlinux/extlinux.conf", conf: "label a\nkernel /a\nlabel b\nkernel /b\n",
			want: extlinuxEntry{Conf: "extlinux/extlinux.conf", Label: "a", Kernel: "/a"}},
		{name: "undefined default", path: "extlinux/extlinux.conf", conf: "default c\nlabel a\nkernel /a\n", err: `default label "c" is not defined`},
		{name: "label without kernel", path: "extlinux/extlinux.conf", conf: "label a\nappend x\n", err: "label a has no kernel"},
		{name: "no config", path: "syslinux.cfg", conf: "label a\n", err: "no extlinux/extlinux.conf or boot/extlinux/extlinux.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := extlinux(mapFS(map[string]string{tc.path: tc.conf}))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Conf != tc.want.Conf || got.Label != tc.want.Label || got.Kernel != tc.want.Kernel ||
				got.Append != tc.want.Append || !slices.Equal(got.Initrd, tc.want.Initrd) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestPointConsoles(t *testing.T) {
	for _, tc := range []struct {
		in, console, want string
		moved             int
	}{
		{"console=tty1 console=serial0,115200 root=PARTUUID=x-02 rootwait", "ttyAMA0",
			"console=tty1 console=ttyAMA0,115200 root=PARTUUID=x-02 rootwait", 1},
		{"console=ttyS2,1500000n8 console=ttyS0 earlycon", "ttyAMA0", "console=ttyAMA0,1500000n8 console=ttyAMA0 earlycon", 2},
		{"console=ttyAMA0 console=tty0 console=null", "ttyAMA0", "console=ttyAMA0 console=tty0 console=null", 0},
		{"console=serial0,115200", "", "console=serial0,115200", 0},
		{"root=/dev/vda2  quiet", "ttyAMA0", "root=/dev/vda2 quiet", 0},
	} {
		got, moved := pointConsoles(tc.in, tc.console)
		if got != tc.want || len(moved) != tc.moved {
			t.Errorf("pointConsoles(%q, %q) = %q, %q; want %q and %d changes", tc.in, tc.console, got, moved, tc.want, tc.moved)
		}
	}
}
