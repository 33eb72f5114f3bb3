package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/inspect"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

func TestParseBuildFile(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"ROOT": "/srv/root", "DEB": "k.deb"}[k]
		return v, ok
	}
	for _, tc := range []struct {
		name, yaml, want string // want: "" for success
	}{
		{"good", "board: rpi4\nsource: oci:${ROOT}\nkernel: deb:${DEB}\noutput: {path: x.img, bmap: true}\n", ""},
		{"unknown key", "board: rpi4\n\ncolour: blue\n", "build file f.yaml: line 3: unknown key colour"},
		{"unknown nested key", "board: rpi4\noutput:\n  path: x.img\n  compresion: zstd\n", "line 4: unknown key output.compresion (did you mean output.compress?)"},
		{"unset variable", "board: rpi4\nsource: oci:${NOPE}\n", "build file f.yaml: line 2: source: ${NOPE} is not set in the environment"},
		{"wrong type", "board: rpi4\noverlays: {a: b}\n", "line 2: overlays: want a list of values, got a mapping"},
		{"bad bool", "output:\n  bmap: perhaps\n", `line 2: output.bmap: "perhaps": want true or false`},
		{"bad size", "partitions:\n  root: {size: lots}\n", `line 2: partitions.root.size: "lots": want a size such as 512MiB or 2GiB, auto or grow`},
		{"nested not a mapping", "partitions: 4\n", "line 1: partitions: want a mapping of keys, got a value"},
		// A password given where its hash belongs never shows.
		{"password, not a hash", "users: [alice]\npassword-hashes: [\"alice:hunter2\"]\n", "line 2: password-hashes: user alice: not a crypt(3) hash"},
		{"bad user", "users: [Alice]\n", `line 1: users: "Alice": user name "Alice"`},
		{"empty", "", "empty"},
		{"not yaml", "board: [\n", "build file f.yaml"},
	} {
		var a buildArgs
		opts := buildOptions(&a)
		fs := pflag.NewFlagSet("build", pflag.ContinueOnError)
		declare(fs, opts)
		bf, err := parseBuildFile("f.yaml", []byte(tc.yaml), opts, env)
		if err == nil {
			err = bf.apply(fs)
		}
		if tc.want == "" {
			if err != nil || bf.source != "oci:/srv/root" || a.cfg.Kernel != "deb:k.deb" || !a.cfg.Bmap {
				t.Errorf("%s: %+v %+v, %v", tc.name, bf, a.cfg, err)
			}
			continue
		}
		var u usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") || !errors.As(err, &u) ||
			strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v; want one line mentioning %q, a usage error", tc.name, err, tc.want)
		}
	}
}

// The build file's paths are relative to its directory, SOURCE comes from
// it, and flags override it. Checked through the errors of sources that do
// not exist, before anything is built.
func TestBuildFileFlagsAndPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ocidisk.yaml")
	every := `board: qemu-virt-arm64
platform: linux/arm64
source: oci:root-layout
kernel: deb:kernel.deb
firmware: dir:firmware
overlays: [overlay]
boot-overlays: [boot-overlay]
cmdline-append: [quiet]
config-txt-append: ["@extra.txt"]
dtoverlays: [vc4-kms-v3d]
table: gpt
partitions:
  boot: {size: 64MiB}
  root: {size: auto, fs: ext4}
output: {path: out/x.img, bmap: true, compress: zstd, keep-raw: true}
`
	if err := os.WriteFile(file, []byte(every), 0o644); err != nil {
		t.Fatal(err)
	}
	// The output's directory, relative to the build file, exists: outputs
	// are checked before any work.
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	// @FILE in config-txt-append is read relative to the build file.
	if err := os.WriteFile(filepath.Join(dir, "extra.txt"), []byte("gpu_mem=64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		// Every key maps to a flag, and SOURCE is the file's, relative to it.
		{[]string{"build", "-f", file}, exitFailure, filepath.Join(dir, "root-layout")},
		{[]string{"build", "-f", dir}, exitFailure, filepath.Join(dir, "root-layout")},
		// SOURCE and flags on the command line win.
		{[]string{"build", "-f", file, "oci:/nowhere/else"}, exitFailure, "/nowhere/else"},
		{[]string{"build", "-f", file, "--board", "no-such-board"}, exitUsage, "no-such-board"},
		{[]string{"build", "-f", file, "--table", "apm"}, exitUsage, "--table"},
		{[]string{"build", "-f", filepath.Join(dir, "missing.yaml")}, exitFailure, "missing.yaml"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	// Without -f, ./ocidisk.yaml is used.
	t.Chdir(dir)
	if code, _, stderr := runCLI(t, "build"); code != exitFailure || !strings.Contains(stderr, "root-layout") {
		t.Errorf("build in a directory with ocidisk.yaml: exit %d, %q", code, stderr)
	}
	if err := os.WriteFile(file, []byte("board: qemu-virt-arm64\nsource: oci:x\nmystery: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "build"); code != exitUsage || !strings.Contains(stderr, "line 3: unknown key mystery") {
		t.Errorf("unknown key: exit %d, %q", code, stderr)
	}
}

// Every board in the catalog has an example; every example builds, and
// ocidisk inspect finds in each image what the board's pack says: table,
// partitions, labels, board files, blobs and a command line naming the
// real root partition (sfdisk agrees on the table). The qemu-virt-arm64
// example is built from its own directory without -f, and boots.
func TestExamples(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range boards.Names() {
		if _, err := os.Stat(filepath.Join(examples, name, "ocidisk.yaml")); err != nil {
			t.Errorf("board %s has no example: add examples/%s/ocidisk.yaml", name, name)
		}
	}
	kernel := debian.KernelDeb(t)
	env := map[string]string{
		"OCIDISK_ROOT":                 debian.BusyboxRoot(t),
		"OCIDISK_KERNEL_DEB":           kernel,
		"OCIDISK_RASPI_FIRMWARE_DEB":   debian.Package(t, "raspi-firmware"),
		"OCIDISK_UBOOT_SUNXI_DEB":      debian.Package(t, "u-boot-sunxi"),
		"OCIDISK_SYSTEMD_BOOT_EFI_DEB": debian.Package(t, "systemd-boot-efi:arm64"),
		"OCIDISK_ROOT_ARMHF":           debian.BusyboxRootArch(t, "armhf", debian.Marker),
		"OCIDISK_KERNEL_DEB_ARMHF":     debian.KernelDebFor(t, debian.KernelSpec{Arch: "armhf"}),
	}
	// Debian 12's kernel lacks the Pi 5's device tree and SD driver: the
	// rpi5 example takes the Pi 5 test kernel unless given another.
	if os.Getenv("OCIDISK_RPI5_KERNEL") == "" {
		env["OCIDISK_RPI5_KERNEL"] = "oci:" + debian.Rpi5Kernel(t)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	dirs, _ := filepath.Glob(filepath.Join(examples, "*", "ocidisk.yaml"))
	if len(dirs) == 0 {
		t.Fatal("no examples")
	}
	for _, file := range dirs {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ex buildArgs
			opts := buildOptions(&ex)
			fs := pflag.NewFlagSet("build", pflag.ContinueOnError)
			declare(fs, opts)
			bf, err := parseBuildFile(file, data, opts, os.LookupEnv)
			if err == nil {
				err = bf.apply(fs)
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := boards.Load(ex.board)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "ex.img")
			args := []string{"build", "-o", out, "--keep-raw"}
			if b.Name == "qemu-virt-arm64" {
				t.Chdir(dir)
			} else {
				args = append(args, "-f", dir)
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != exitOK {
				t.Fatalf("ocidisk %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
			}
			image := out
			if c := ex.cfg.Compress; c != "" && c != "none" {
				image += map[string]string{"zstd": ".zst", "xz": ".xz", "gz": ".gz"}[c]
			}
			r := inspectExample(t, image)
			checkExample(t, r, b, &ex)
			raw := out
			if ex.cfg.Format == "qcow2" {
				raw = filepath.Join(t.TempDir(), "raw.img")
				qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
				if o, err := exec.Command(qemuImg, "convert", "-O", "raw", out, raw).CombinedOutput(); err != nil {
					t.Fatalf("qemu-img convert: %v\n%s", err, o)
				}
			}
			checkSfdisk(t, sfdisk, raw, r)
			if b.Name == "qemu-virt-arm64" {
				code, log := bootTest(t, out, "--expect", regexp.QuoteMeta(debian.Marker), "--timeout", "120s")
				if code != exitOK {
					t.Fatalf("the qemu-virt-arm64 example did not boot (exit %d):\n%s", code, tail(log, 30))
				}
			}
		})
	}
}

func inspectExample(t *testing.T, image string) *inspect.Report {
	t.Helper()
	code, stdout, stderr := runCLI(t, "inspect", "--json", image)
	if code != exitOK {
		t.Fatalf("inspect %s: exit %d %s", image, code, stderr)
	}
	var r inspect.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// checkExample compares what inspect found with the board's pack and the
// example's settings.
func checkExample(t *testing.T, r *inspect.Report, b *boards.Board, ex *buildArgs) {
	t.Helper()
	table := b.Disk.Table
	if ex.cfg.Layout.Table != "" {
		table = ex.cfg.Layout.Table
	}
	if r.Board != b.Name || r.Table != table || len(r.Partitions) != len(b.Disk.Partitions) || r.Boot == nil {
		t.Fatalf("board %q table %q, %d partitions, boot %v; want %s, %s, %d", r.Board, r.Table, len(r.Partitions), r.Boot != nil,
			b.Name, table, len(b.Disk.Partitions))
	}
	var rootUUID string
	for i, pp := range b.Disk.Partitions {
		p := r.Partitions[i]
		label := pp.Name
		if pp.FS == "fat" {
			label = strings.ToUpper(label)
		}
		if p.Role != string(pp.Role) || p.Filesystem.Label != label || p.Filesystem.Error != "" ||
			(pp.FS == "fat") != strings.HasPrefix(p.Filesystem.Type, "FAT") {
			t.Errorf("partition %d: %+v %+v; the pack says %+v", p.Number, p, p.Filesystem, pp)
		}
		if pp.Role == boards.RoleRoot {
			rootUUID = p.PartUUID
		}
	}
	kinds := map[string]string{}
	for _, f := range r.Boot.Files {
		kinds[f.Path] = f.Kind
	}
	want := map[string]string{}
	for f, kind := range map[string]string{b.Kernel.File: "kernel", b.Initramfs.File: "initramfs"} {
		if f != "" { // a UKI board keeps them in the UKI
			want[f] = kind
		}
	}
	if b.UKI != nil {
		want[b.UKI.Path] = "uki"
	}
	for _, c := range b.Configs {
		want[c.Path] = "config"
	}
	for p, k := range want {
		if kinds[p] != k {
			t.Errorf("boot file %s: %q, want %q", p, kinds[p], k)
		}
	}
	args := strings.Fields(r.Boot.Cmdline)
	for _, a := range append([]string{"root=PARTUUID=" + rootUUID}, ex.cfg.CmdlineAppend...) {
		if !slices.Contains(args, a) {
			t.Errorf("command line %q (from %s) lacks %q", r.Boot.Cmdline, r.Boot.CmdlineFrom, a)
		}
	}
	if len(r.Blobs) != len(b.Blobs) {
		t.Errorf("blobs %+v; the pack has %d", r.Blobs, len(b.Blobs))
	}
	for _, bl := range r.Blobs {
		if !bl.Present {
			t.Errorf("blob %s at %d: no data", bl.File, bl.Offset)
		}
	}
}

// checkSfdisk compares inspect's table with sfdisk's reading of the raw
// image.
func checkSfdisk(t *testing.T, sfdisk, raw string, r *inspect.Report) {
	t.Helper()
	out, err := exec.Command(sfdisk, "-J", raw).Output()
	if err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	var d struct {
		PartitionTable struct {
			ID         string `json:"id"`
			Partitions []struct{ Start, Size int64 }
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	pt := d.PartitionTable
	if !strings.EqualFold(strings.TrimPrefix(pt.ID, "0x"), r.DiskID) || len(pt.Partitions) != len(r.Partitions) {
		t.Fatalf("sfdisk: %s", out)
	}
	for i, p := range pt.Partitions {
		if p.Start*512 != r.Partitions[i].Start || p.Size*512 != r.Partitions[i].Size {
			t.Errorf("partition %d: sfdisk %+v, inspect %+v", i+1, p, r.Partitions[i])
		}
	}
}
