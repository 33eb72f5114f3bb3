package qemu

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func TestDefaultEnvSynthetic(t *testing.T) {
	blob := []byte("junk\x00%s: not an env\x00bootdelay=2\x00bootcmd=run distro_bootcmd\x00boot_targets=qfw virtio0 \x00\x00trailing=x\x00" +
		"help text bootcmd=not this\x00")
	env, err := DefaultEnv(blob)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bootdelay=2", "bootcmd=run distro_bootcmd", "boot_targets=qfw virtio0 "}
	if !slices.Equal(env, want) {
		t.Fatalf("DefaultEnv = %q, want %q", env, want)
	}
	got := SetEnv(env, map[string]string{"bootdelay": "0", "boot_targets": "virtio0", "zz": "1", "aa": "2"})
	want = []string{"bootdelay=0", "bootcmd=run distro_bootcmd", "boot_targets=virtio0", "aa=2", "zz=1"}
	if !slices.Equal(got, want) {
		t.Fatalf("SetEnv = %q, want %q", got, want)
	}
	if _, err := DefaultEnv([]byte("no environment here")); err == nil {
		t.Fatal("found an environment in a blob without one")
	}
}

// TestEnvImageMatchesMkenvimage builds the flash environment from Debian's
// real u-boot.bin and checks it byte for byte against u-boot-tools'
// mkenvimage given the same variables.
func TestEnvImageMatchesMkenvimage(t *testing.T) {
	mkenvimage := hosttool.Require(t, "mkenvimage", "u-boot-tools")
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	fw := b.QEMU.Firmware
	uboot, err := os.ReadFile(fw.BIOS)
	if err != nil {
		hosttool.Missing(t, fw.BIOS+": apt-get install "+fw.Package)
	}
	env, err := DefaultEnv(uboot)
	if err != nil {
		t.Fatal(err)
	}
	has := func(prefix string) bool {
		return slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, prefix) })
	}
	for _, k := range []string{"bootcmd=", "bootdelay=", "boot_targets=", "distro_bootcmd=", "kernel_addr_r=", "ramdisk_addr_r="} {
		if !has(k) {
			t.Errorf("default environment lacks %s", k)
		}
	}
	env = SetEnv(env, fw.Env)
	if !slices.Contains(env, "bootdelay=0") || !slices.Contains(env, "boot_targets=virtio0") {
		t.Fatalf("overrides not applied: %q", env)
	}
	ours, err := EnvImage(env, int(fw.EnvSize))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "env.txt")
	for _, kv := range env {
		if strings.Contains(kv, "\n") {
			t.Skipf("variable %q has a newline, which mkenvimage's text input cannot carry", kv)
		}
	}
	os.WriteFile(text, []byte(strings.Join(env, "\n")+"\n"), 0o644)
	out := filepath.Join(dir, "env.img")
	if b, err := exec.Command(mkenvimage, "-s", "0x40000", "-o", out, text).CombinedOutput(); err != nil {
		t.Fatalf("mkenvimage: %v: %s", err, b)
	}
	theirs, _ := os.ReadFile(out)
	if !bytes.Equal(ours, theirs) {
		i := 0
		for i < len(ours) && i < len(theirs) && ours[i] == theirs[i] {
			i++
		}
		t.Fatalf("env image differs from mkenvimage's at byte %d (sizes %d, %d)", i, len(ours), len(theirs))
	}
	if _, err := EnvImage(env, 64); err == nil {
		t.Error("an environment larger than its size was accepted")
	}
}

func TestArgs(t *testing.T) {
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Args(b.QEMU, Boot{Image: "/tmp/a,b.img", BIOS: "/usr/lib/u-boot/qemu_arm64/u-boot.bin", EnvFlash: "/tmp/env.img"}), " ")
	want := "-M virt -cpu cortex-a72 -smp 1 -m 1024 -nographic -no-reboot -nic none" +
		" -bios /usr/lib/u-boot/qemu_arm64/u-boot.bin -drive if=pflash,unit=1,format=raw,file=/tmp/env.img" +
		" -drive if=virtio,format=raw,snapshot=on,file=/tmp/a,,b.img"
	if got != want {
		t.Fatalf("Args =\n%s\nwant\n%s", got, want)
	}
	sd := &boards.QEMU{Binary: "qemu-system-aarch64", Machine: "raspi3b", Accel: "tcg,thread=single", Drive: "sd", Args: []string{"-usb"}}
	direct := Boot{Image: "/tmp/sd.qcow2", Format: "qcow2", Kernel: "/tmp/kernel", Initrd: "/tmp/initrd", DTB: "/tmp/dtb", Append: "console=ttyAMA0 root=PARTUUID=1a2b3c4d-02"}
	if got := strings.Join(Args(sd, direct), " "); got !=
		"-M raspi3b -accel tcg,thread=single -nographic -no-reboot -nic none -kernel /tmp/kernel -initrd /tmp/initrd -dtb /tmp/dtb"+
			" -append console=ttyAMA0 root=PARTUUID=1a2b3c4d-02 -drive if=sd,format=qcow2,snapshot=on,file=/tmp/sd.qcow2 -usb" {
		t.Fatalf("Args of a direct boot = %s", got)
	}
}

func TestPrepareErrors(t *testing.T) {
	b, _ := boards.Load("qemu-virt-arm64")
	img := filepath.Join(t.TempDir(), "x.img")
	os.WriteFile(img, make([]byte, 4096), 0o644)
	p := *b.QEMU
	fw := *p.Firmware
	fw.BIOS = "/nonexistent/u-boot.bin"
	p.Firmware = &fw
	if _, err := exec.LookPath(p.Binary); err != nil {
		hosttool.Missing(t, p.Binary+": apt-get install "+p.Package)
	}
	_, err := Prepare(Config{Profile: &p, Image: img})
	if err == nil || !strings.Contains(err.Error(), "u-boot-qemu") || !strings.Contains(err.Error(), "--bios") {
		t.Errorf("missing bios: %v; want the package and --bios named", err)
	}
	_, err = Prepare(Config{Profile: &p, Image: img, BIOS: "/nonexistent/other.bin"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/other.bin") {
		t.Errorf("missing --bios: %v", err)
	}
	noq := *b.QEMU
	noq.Binary = "qemu-system-nonexistent"
	if _, err := Prepare(Config{Profile: &noq, Image: img}); err == nil || !strings.Contains(err.Error(), "qemu-system-arm") {
		t.Errorf("missing qemu: %v", err)
	}
	if _, err := Prepare(Config{Profile: b.QEMU, Image: img + ".missing"}); err == nil {
		t.Error("missing image accepted")
	}
}

func TestMatcher(t *testing.T) {
	re := func(s ...string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for _, x := range s {
			out = append(out, regexp.MustCompile(x))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		expect  []*regexp.Regexp
		chunks  []string
		done    bool
		failure string
		matched int
	}{
		{name: "in order across chunks", expect: re("U-Boot", "Linux version", "MARK"),
			chunks: []string{"U-Bo", "ot 2023\r\n[ 0.0] Linux ver", "sion 6.1\r\nMA", "RK\r\n"}, done: true, matched: 3},
		{name: "out of order does not count", expect: re("second", "first"),
			chunks: []string{"first\n", "second\n"}, matched: 1},
		{name: "each match starts after the previous", expect: re("A", "A"),
			chunks: []string{"xAx\n"}, matched: 1},
		{name: "marker without newline", expect: re("MARK"), chunks: []string{"MARK"}, done: true, matched: 1},
		{name: "kernel panic", expect: re("MARK"),
			chunks:  []string{"[ 1.2] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n"},
			failure: "Kernel panic - not syncing: VFS: Unable to mount root fs", matched: 0},
		{name: "init failure waits for the whole line", expect: re("MARK"),
			chunks:  []string{"ocidisk-init: error: root LABEL=x not ", "found after 3s; block devices: vda\n"},
			failure: "ocidisk-init: error: root LABEL=x not found after 3s; block devices: vda"},
		{name: "info lines are not failures", expect: re("MARK"), chunks: []string{"ocidisk-init: loaded 9 modules\n"}},
		{name: "verity corruption", expect: re("MARK"),
			chunks:  []string{"[ 3.1] device-mapper: verity: 254:2: data block 1234 is corrupted\r\n"},
			failure: "device-mapper: verity: 254:2: data block 1234 is corrupted"},
		{name: "the first failure is the cause", expect: re("MARK"),
			chunks: []string{"[ 3.1] device-mapper: verity: 254:2: metadata block 7 is corrupted\r\n" +
				"ocidisk-init: error: mount root /dev/dm-0: input/output error\r\nKernel panic - not syncing: Attempted to kill init!\r\n"},
			failure: "device-mapper: verity: 254:2: metadata block 7 is corrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &matcher{expect: tc.expect}
			var done bool
			var failure string
			for _, c := range tc.chunks {
				if done, failure = m.feed([]byte(c)); done || failure != "" {
					break
				}
			}
			if done != tc.done || failure != tc.failure || m.next != tc.matched {
				t.Errorf("done %v failure %q matched %d; want %v %q %d", done, failure, m.next, tc.done, tc.failure, tc.matched)
			}
		})
	}
	m := &matcher{}
	for i := range 50 {
		m.feed([]byte(strings.Repeat("x", i) + "\r\n"))
	}
	if got := m.tail(3); got != strings.Repeat("x", 47)+"\n"+strings.Repeat("x", 48)+"\n"+strings.Repeat("x", 49) {
		t.Errorf("tail = %q", got)
	}
}

func TestWriteJUnit(t *testing.T) {
	for _, r := range []*Result{
		{Passed: true, Duration: 2500 * time.Millisecond, Console: "boot\x1b[0m ok\n]]> <end>\n", Start: time.Unix(1_700_000_000, 0)},
		{Reason: "timed out after 1m0s", Tail: "last line", Console: "ok\nlast line\n", Duration: time.Minute},
	} {
		doc, _ := writeJUnit(t, r)
		s := doc.Suites[0]
		c := s.Cases[0]
		if s.Tests != 1 || (s.Failures == 0) != r.Passed || (c.Failure == nil) != r.Passed || c.Name != "t.img" {
			t.Errorf("JUnit %+v", doc)
		}
		if !r.Passed && (c.Failure.Message != r.Reason || c.Failure.Text != r.Tail) {
			t.Errorf("failure %+v", c.Failure)
		}
		if want := strings.ReplaceAll(r.Console, "\x1b", ""); c.SystemOut.Text != want {
			t.Errorf("system-out %q", c.SystemOut)
		}
	}
}

// writeJUnit writes r's report and reads it back.
func writeJUnit(t *testing.T, r *Result) (junitSuites, string) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJUnit(&b, "ocidisk.qemu-virt-arm64", "t.img", r); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, b.String())
	}
	return doc, b.String()
}

// TestWriteJUnitCommands reports a test that logged in: the boot passed,
// one command passed, one failed and one was not reached.
func TestWriteJUnitCommands(t *testing.T) {
	r := &Result{
		Reason: `command 2 "false" exited with status 1`, Console: "login: root\n", Tail: "tail",
		Duration: 9 * time.Second, BootDuration: 7 * time.Second, LoggedIn: true,
		Commands: []CommandResult{
			{Command: "uname -m", Ran: true, Output: "aarch64\n", Duration: time.Second},
			{Command: "false", Ran: true, Status: 1, Failure: "exited with status 1", Output: "no\x01pe"},
			{Command: "echo <never>", Status: -1},
		},
	}
	doc, raw := writeJUnit(t, r)
	s := doc.Suites[0]
	if s.Tests != 4 || s.Failures != 1 || s.Skipped != 1 || len(s.Cases) != 4 {
		t.Fatalf("suite: %d tests, %d failures, %d skipped, %d cases\n%s", s.Tests, s.Failures, s.Skipped, len(s.Cases), raw)
	}
	boot, ok, failed, skipped := s.Cases[0], s.Cases[1], s.Cases[2], s.Cases[3]
	if boot.Name != "t.img" || boot.Failure != nil || boot.Time != "7.000" || boot.SystemOut.Text != r.Console {
		t.Errorf("boot case %+v", boot)
	}
	if ok.Name != "$ uname -m" || ok.Failure != nil || ok.Skipped != nil || ok.SystemOut.Text != "aarch64\n" || ok.Time != "1.000" {
		t.Errorf("passed command %+v", ok)
	}
	if failed.Name != "$ false" || failed.Failure == nil || failed.Failure.Message != "exited with status 1" || failed.Failure.Text != "nope" {
		t.Errorf("failed command %+v", failed)
	}
	if skipped.Name != "$ echo <never>" || skipped.Skipped == nil || skipped.Failure != nil {
		t.Errorf("command not run %+v", skipped)
	}
}
