package qemu

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/boards"
)

func TestArgsMachine(t *testing.T) {
	virt, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	pi, err := boards.Load("rpi3")
	if err != nil {
		t.Fatal(err)
	}
	fw := Boot{Image: "/tmp/d.img", BIOS: "/u-boot.bin", EnvFlash: "/tmp/env.img"}
	direct := Boot{Image: "/tmp/sd.qcow2", Format: "qcow2", Kernel: "/tmp/kernel", Append: "console=ttyAMA0"}
	with := func(b Boot, f func(*Boot)) Boot { f(&b); return b }
	pub := []Publish{
		{HostPort: 8080, GuestPort: 80},
		{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 2222, GuestPort: 22},
	}
	for _, tc := range []struct {
		name    string
		profile *boards.QEMU
		boot    Boot
		want    string
	}{
		{"virt, no network", virt.QEMU, fw,
			"-M virt -cpu cortex-a72 -smp 1 -m 1024 -nographic -no-reboot -nic none -bios /u-boot.bin" +
				" -drive if=pflash,unit=1,format=raw,file=/tmp/env.img -drive if=virtio,format=raw,snapshot=on,file=/tmp/d.img"},
		{"virt, user network with ports", virt.QEMU, with(fw, func(b *Boot) { b.Net, b.Publish = NetUser, pub }),
			"-M virt -cpu cortex-a72 -smp 1 -m 1024 -nographic -no-reboot" +
				" -netdev user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:0.0.0.0:2222-:22 -device virtio-net-pci,netdev=n0,romfile=" +
				" -bios /u-boot.bin -drive if=pflash,unit=1,format=raw,file=/tmp/env.img -drive if=virtio,format=raw,snapshot=on,file=/tmp/d.img"},
		{"virt under KVM, memory, CPUs and extra arguments last", virt.QEMU,
			with(fw, func(b *Boot) { b.KVM, b.Memory, b.CPUs, b.Extra = true, 2048, 4, []string{"-d", "guest_errors"} }),
			"-M virt -cpu host -smp 4 -m 2048 -accel kvm -nographic -no-reboot -nic none -bios /u-boot.bin" +
				" -drive if=pflash,unit=1,format=raw,file=/tmp/env.img -drive if=virtio,format=raw,snapshot=on,file=/tmp/d.img -d guest_errors"},
		{"raspi3b, USB network", pi.QEMU, with(direct, func(b *Boot) { b.Net, b.Publish = NetUser, pub[:1] }),
			"-M raspi3b -accel tcg,thread=single -nographic -no-reboot -netdev user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80 -device usb-net,netdev=n0" +
				" -kernel /tmp/kernel -append console=ttyAMA0 -drive if=sd,format=qcow2,snapshot=on,file=/tmp/sd.qcow2" +
				// The Pi 3's console is its mini UART, QEMU's second serial port.
				" -serial null -serial mon:stdio"},
	} {
		if got := strings.Join(Args(tc.profile, tc.boot), " "); got != tc.want {
			t.Errorf("%s: Args =\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

func TestParsePublish(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"8080:80", "127.0.0.1:8080:80", ""},
		{"0.0.0.0:2222:22", "0.0.0.0:2222:22", ""},
		{"192.168.1.5:65535:1", "192.168.1.5:65535:1", ""},
		{"80", "", "want [HOSTIP:]HOSTPORT:GUESTPORT"},
		{"a:b:c:d", "", "want [HOSTIP:]HOSTPORT:GUESTPORT"},
		{"localhost:80:80", "", "not an IPv4 address"},
		{"::1:80:80", "", "want [HOSTIP:]HOSTPORT:GUESTPORT"},
		{"0:80", "", "from 1 to 65535"},
		{"80:65536", "", "from 1 to 65535"},
		{"80:http", "", "from 1 to 65535"},
	} {
		p, err := ParsePublish(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("ParsePublish(%q): %v, want an error naming it and saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("ParsePublish(%q) = %s, %v; want %s", tc.in, p, err, tc.want)
		}
		if back, err := ParsePublish(p.String()); err != nil || back.String() != p.String() {
			t.Errorf("%s does not read back: %s, %v", p, back, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	virt, _ := boards.Load("qemu-virt-arm64")
	odd := &boards.QEMU{Binary: "qemu-system-aarch64", Machine: "sabrelite", Drive: "sd"}
	p := Publish{HostPort: 8080, GuestPort: 80}
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"defaults", Config{Profile: virt.QEMU}, ""},
		{"user network with ports", Config{Profile: virt.QEMU, Net: NetUser, Publish: []Publish{p, {HostPort: 8081, GuestPort: 80}}}, ""},
		{"ports without network", Config{Profile: virt.QEMU, Publish: []Publish{p}}, "Publish"},
		{"ports with none", Config{Profile: virt.QEMU, Net: NetNone, Publish: []Publish{p}}, "Publish"},
		{"port published twice", Config{Profile: virt.QEMU, Net: NetUser, Publish: []Publish{p, p}}, "Publish"},
		{"port 0", Config{Profile: virt.QEMU, Net: NetUser, Publish: []Publish{{HostPort: 1}}}, "Publish"},
		{"unknown network", Config{Profile: virt.QEMU, Net: "tap"}, "Net"},
		{"machine without a known card", Config{Profile: odd, Net: NetUser}, "Net"},
		{"machine without a known card, no network", Config{Profile: odd, Net: NetNone}, ""},
		{"negative memory", Config{Profile: virt.QEMU, Memory: -1}, "Memory"},
		{"negative CPUs", Config{Profile: virt.QEMU, CPUs: -2}, "CPUs"},
	} {
		err := tc.cfg.Validate()
		field, _ := IsConfigError(err)
		if field != tc.field || (err == nil) != (tc.field == "") {
			t.Errorf("%s: %v (field %q), want field %q", tc.name, err, field, tc.field)
		}
	}
}

// TestUseKVM chooses the accelerator with stand-ins for /dev/kvm: a file
// that opens read-write, one that is missing and a directory (which
// exists but does not open read-write).
func TestUseKVM(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "kvm")
	if err := os.WriteFile(dev, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	virt := &boards.QEMU{Binary: "qemu-system-aarch64", Machine: "virt", CPU: "cortex-a72"}
	pi := &boards.QEMU{Binary: "qemu-system-aarch64", Machine: "raspi3b", Accel: "tcg,thread=single"}
	armhf := &boards.QEMU{Binary: "/usr/bin/qemu-system-arm", Machine: "virt", CPU: "cortex-a15"}
	for _, tc := range []struct {
		name    string
		profile *boards.QEMU
		arch    string
		dev     string
		want    bool
	}{
		{"arm64 host, device opens", virt, "arm64", dev, true},
		{"amd64 host", virt, "amd64", dev, false},
		{"no device", virt, "arm64", filepath.Join(dir, "missing"), false},
		{"device does not open read-write", virt, "arm64", dir, false},
		{"profile pins TCG", pi, "arm64", dev, false},
		{"32-bit guest", armhf, "arm64", dev, false},
	} {
		if got := useKVM(tc.profile, tc.arch, tc.dev); got != tc.want {
			t.Errorf("%s: useKVM = %v, want %v", tc.name, got, tc.want)
		}
	}
}
