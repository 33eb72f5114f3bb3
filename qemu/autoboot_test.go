package qemu

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func TestReadAutoboot(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		tryboot    bool
		want       *autoboot
		err        string
	}{
		{name: "none", want: nil},
		{name: "a/b", text: "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n", want: &autoboot{2, true}},
		{name: "a/b tryboot", text: "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n", tryboot: true, want: &autoboot{3, true}},
		{name: "committed b", text: "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n", want: &autoboot{3, true}},
		{name: "none filter", text: "boot_partition=2\n[none]\nboot_partition=4\n[all]\n# comment\n", want: &autoboot{2, false}},
		{name: "past 512 bytes", text: "boot_partition=2\n" + strings.Repeat("#", 600) + "\nboot_partition=4\n", want: &autoboot{2, false}},
		{name: "bad filter", text: "[pi4]\nboot_partition=2\n", err: "filter [pi4]"},
		{name: "bad number", text: "boot_partition=two\n", err: "boot_partition=two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"config.txt": ""}
			if tc.text != "" {
				files["autoboot.txt"] = tc.text
			}
			got, err := readAutoboot(mapFS(files), tc.tryboot)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("readAutoboot = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// abImage makes an A/B Pi card with util-linux and mtools, not our
// writers: a GPT with a small FAT holding autoboot.txt, then one FAT per
// slot whose cmdline.txt names the slot's root.
func abImage(t *testing.T, autobootTxt string) string {
	t.Helper()
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	mkfs := hosttool.Require(t, "mkfs.fat", "dosfstools")
	mcopy := hosttool.Require(t, "mcopy", "mtools")
	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	parts := []map[string]string{{"autoboot.txt": autobootTxt}}
	for _, slot := range []string{"a", "b"} {
		parts = append(parts, map[string]string{
			"config.txt":  "kernel=kernel8.img\ninitramfs initramfs8 followkernel\n[tryboot]\ncmdline=cmdline-tried.txt\n",
			"tryboot.txt": "kernel=kernel8.img\ncmdline=cmdline-file.txt\n",
			"cmdline.txt": "root=PARTUUID=slot-" + slot + "\n", "cmdline-tried.txt": "tried " + slot + "\n",
			"cmdline-file.txt": "tryboot.txt of " + slot + "\n",
			"kernel8.img":      "kernel " + slot, "initramfs8": "initramfs " + slot,
		})
	}
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const part = 16 << 20
	if err := f.Truncate(1<<20 + 3*part + 1<<20); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("label: gpt\n")
	for i, files := range parts {
		fatImg := filepath.Join(dir, fmt.Sprintf("fat%d.img", i))
		run(mkfs, "-C", "-F", "16", fatImg, fmt.Sprint(part>>10))
		for name, data := range files {
			host := filepath.Join(dir, "f")
			os.WriteFile(host, []byte(data), 0o644)
			run(mcopy, "-i", fatImg, host, "::"+name)
		}
		fat, err := os.Open(fatImg)
		if err != nil {
			t.Fatal(err)
		}
		off := int64(1<<20 + i*part)
		if _, err := io.Copy(io.NewOffsetWriter(f, off), fat); err != nil {
			t.Fatal(err)
		}
		fat.Close()
		fmt.Fprintf(&script, "start=%d, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n", off/512, part/512)
	}
	cmd := exec.Command(sfdisk, "-q", "--no-reread", img)
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	return img
}

// TestAutobootDirectBoot boots as the Pi bootloader would pick the slot:
// autoboot.txt's boot_partition, its [tryboot] one with the tryboot flag,
// and, without tryboot_a_b, tryboot.txt in place of config.txt.
func TestAutobootDirectBoot(t *testing.T) {
	b, err := boards.Load("rpi4")
	if err != nil {
		t.Fatal(err)
	}
	hosttool.Require(t, b.QEMU.Binary, b.QEMU.Package)
	ab := "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
	committed := "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n"
	byFile := "[all]\nboot_partition=2\n"
	for _, tc := range []struct {
		name, autoboot string
		tryboot        bool
		kernel, append string
		loaded         string
	}{
		{"slot a", ab, false, "kernel a", "root=PARTUUID=slot-a",
			"kernel8.img, initramfs8, cmdline.txt from config.txt [pi4] of partition 2 (autoboot.txt on partition 1)"},
		{"try slot b", ab, true, "kernel b", "tried b",
			"kernel8.img, initramfs8, cmdline-tried.txt from config.txt [pi4] of partition 3 (autoboot.txt on partition 1 with the tryboot flag)"},
		{"committed b", committed, false, "kernel b", "root=PARTUUID=slot-b",
			"kernel8.img, initramfs8, cmdline.txt from config.txt [pi4] of partition 3 (autoboot.txt on partition 1)"},
		{"tryboot.txt", byFile, true, "kernel a", "tryboot.txt of a",
			"kernel8.img, cmdline-file.txt from tryboot.txt [pi4] of partition 2 (autoboot.txt on partition 1 with the tryboot flag)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := abImage(t, tc.autoboot)
			v, err := Prepare(Config{Profile: b.QEMU, Image: img, BootPartition: 1, Tryboot: tc.tryboot})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if i := indexOf(v.Args, "-kernel"); i < 0 || string(fileBytes(t, v.Args[i+1])) != tc.kernel {
				t.Errorf("kernel: want %q in %s", tc.kernel, v.Args)
			}
			if i := indexOf(v.Args, "-append"); i < 0 || v.Args[i+1] != tc.append {
				t.Errorf("command line: want %q in %s", tc.append, v.Args)
			}
			if v.Loaded != tc.loaded {
				t.Errorf("Loaded = %q\nwant      %q", v.Loaded, tc.loaded)
			}
		})
	}
}

// TestWritable: a writable boot attaches the image itself; an SD card's
// image must then already have a power-of-two size.
func TestWritable(t *testing.T) {
	p := &boards.QEMU{Machine: "virt", Drive: "virtio"}
	if a := strings.Join(Args(p, Boot{Image: "/x/disk.img", Writable: true}), " "); !strings.HasSuffix(a, "-drive if=virtio,format=raw,file=/x/disk.img") {
		t.Errorf("writable drive: %s", a)
	}
	if a := strings.Join(Args(p, Boot{Image: "/x/disk.img"}), " "); !strings.HasSuffix(a, "-drive if=virtio,format=raw,snapshot=on,file=/x/disk.img") {
		t.Errorf("snapshot drive: %s", a)
	}
	b, err := boards.Load("rpi3")
	if err != nil {
		t.Fatal(err)
	}
	hosttool.Require(t, b.QEMU.Binary, b.QEMU.Package)
	img := filepath.Join(t.TempDir(), "odd.img")
	if err := os.WriteFile(img, make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(Config{Profile: b.QEMU, Image: img, Writable: true}); err == nil || !strings.Contains(err.Error(), "power-of-two size") {
		t.Errorf("writable SD card of 3 MiB: %v", err)
	}
}

// TestWaitExit runs a stand-in for QEMU that prints the marker, then more,
// then exits, or hangs: waiting for the exit sees everything the guest
// printed, and a guest that never powers off fails the test.
func TestWaitExit(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := func(name, script string) *boards.QEMU {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
		return &boards.QEMU{Binary: p, Machine: "virt", Drive: "virtio"}
	}
	marker := []*regexp.Regexp{regexp.MustCompile("MARKER")}
	exits := fake("exits", "echo MARKER\nsleep 0.2\necho unmounted, powering off\n")
	res, err := Test(t.Context(), Config{Profile: exits, Image: img}, TestOptions{Expect: marker, WaitExit: true, Timeout: 30 * time.Second})
	if err != nil || !strings.Contains(res.Console, "powering off") {
		t.Errorf("a guest that powers off: %v; console %q", err, res.Console)
	}
	hangs := fake("hangs", "echo MARKER\nexec sleep 60\n")
	res, err = Test(t.Context(), Config{Profile: hangs, Image: img}, TestOptions{Expect: marker, WaitExit: true, Timeout: time.Second})
	if err == nil || res.Passed || !strings.Contains(res.Reason, "did not power off") {
		t.Errorf("a guest that does not power off: %v, %+v", err, res)
	}
}
