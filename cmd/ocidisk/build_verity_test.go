package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// probeInit reads /verity-probe before handing over to the test root's
// init: a root whose probe does not read back stops there, and its
// blocks are read (and checked by dm-verity) on every boot.
const probeInit = `#!/bin/busybox sh
if /bin/busybox cat /verity-probe >/dev/null; then exec /sbin/init; fi
echo "verity-probe: read failed"
/bin/busybox poweroff -f
`

// probeOverlay returns an overlay directory with the probe (two squashfs
// blocks of random bytes, which neither squashfs nor erofs changes or
// packs into a fragment, so that the test can find them in the image) and
// the init that reads it, and the probe's bytes.
func probeOverlay(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	probe := make([]byte, 256<<10)
	rand.NewChaCha8([32]byte{'v', 'e', 'r', 'i', 't', 'y'}).Read(probe)
	if err := os.WriteFile(filepath.Join(dir, "verity-probe"), probe, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "verity-init"), []byte(probeInit), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, probe
}

// buildJSONOut runs ocidisk build with --json and returns what it says.
func buildJSONOut(t *testing.T, args ...string) buildJSON {
	t.Helper()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	args = append([]string{"build", "--json"}, args...)
	code, stdout, stderr := runCLI(t, args...)
	if code != exitOK {
		t.Fatalf("ocidisk %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	var j buildJSON
	if err := json.Unmarshal([]byte(stdout), &j); err != nil {
		t.Fatalf("build --json: %v\n%s", err, stdout)
	}
	return j
}

// veritysetupVerify has veritysetup check the root partition of img (cut
// out of it) against its tree at hashOffset and rootHash.
func veritysetupVerify(t *testing.T, img string, start, size, hashOffset int64, rootHash string) {
	t.Helper()
	vs := hosttool.Require(t, "veritysetup", "cryptsetup-bin")
	part := hosttool.Partition(t, img, start, size)
	out, err := exec.Command(vs, "verify", "--hash-offset="+strconv.FormatInt(hashOffset, 10), part, part, rootHash).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup verify --hash-offset=%d: %v\n%s", hashOffset, err, out)
	}
}

// TestBuildVerity builds the busybox test root with --verity as erofs and
// as squashfs: veritysetup verifies the root partition against the tree
// and root hash ocidisk wrote, inspect verifies it too, and the image
// boots through dm-verity to the root's marker. Then one flipped byte in
// a file's data fails inspect, naming the block, and fails ocidisk test
// with the kernel's verity error; the boot test leaves the image as it
// was.
func TestBuildVerity(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	overlay, probe := probeOverlay(t)
	for _, fs := range []string{"erofs", "squashfs"} {
		t.Run(fs, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "verity.img")
			j := buildJSONOut(t, "-o", img, "--board", "qemu-virt-arm64", "--kernel", "deb:"+kernel, "--root-fs", fs, "--verity",
				"--overlay", overlay, "--cmdline-append", "init=/verity-init", "--cmdline-append", "ocidisk.onfail=poweroff", "oci:"+root)
			v := j.Verity
			if v == nil || len(v.RootHash) != 64 || !strings.Contains(j.Cmdline, v.Args) || !strings.HasPrefix(v.Args, "ocidisk.verity="+v.RootHash+" ") {
				t.Fatalf("build --json: verity %+v, command line %q", v, j.Cmdline)
			}
			rootP := j.Partitions[1]
			hashOffset, err := strconv.ParseInt(regexp.MustCompile(`ocidisk\.verity\.hash-offset=(\d+)`).FindStringSubmatch(v.Args)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			veritysetupVerify(t, img, rootP.Start, rootP.Size, hashOffset, v.RootHash)

			code, stdout, stderr := runCLI(t, "inspect", "--json", img)
			var r struct {
				Partitions []struct {
					Verity *struct {
						RootHash string `json:"root_hash"`
						Verified bool   `json:"verified"`
					} `json:"verity"`
				} `json:"partitions"`
			}
			if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != exitOK || len(r.Partitions) != 2 ||
				r.Partitions[1].Verity == nil || r.Partitions[1].Verity.RootHash != v.RootHash || !r.Partitions[1].Verity.Verified {
				t.Fatalf("inspect --json: exit %d, %v\n%s%s", code, err, stdout, stderr)
			}

			code, out := bootTest(t, img, "--timeout", "240s",
				"--expect", fmt.Sprintf(`ocidisk-init: verity: /dev/vda2 \(PARTUUID=\S+\) checked against root hash %s\.\.\. as /dev/dm-0`, v.RootHash[:16]),
				"--expect", `ocidisk-test: root /dev/dm-0 / `+fs+` ro`,
				"--expect", regexp.QuoteMeta(debian.Marker))
			if code != exitOK {
				t.Fatalf("the verified root did not boot (exit %d):\n%s", code, tail(out, 40))
			}

			// One byte of the probe's data, in its second 4 KiB block.
			data := make([]byte, hashOffset)
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.ReadAt(data, rootP.Start); err != nil {
				t.Fatal(err)
			}
			at := int64(bytes.Index(data, probe[:64]))
			if at < 0 {
				t.Fatal("the probe's bytes are not in the root partition as they are")
			}
			at += 5000
			if _, err := f.WriteAt([]byte{data[at] ^ 1}, rootP.Start+at); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			block := at / 4096
			sum := fileHash(t, img)

			code, stdout, stderr = runCLI(t, "inspect", img)
			want := fmt.Sprintf("partition 2: verity: data block %d is corrupted", block)
			if code != exitFailure || !strings.Contains(stderr, want) || !strings.Contains(stdout, "FAILED: verity: data block") {
				t.Errorf("inspect of the corrupted image: exit %d, want %d and %q\n%s%s", code, exitFailure, want, stdout, stderr)
			}
			code, out = bootTest(t, img, "--timeout", "240s", "--expect", regexp.QuoteMeta(debian.Marker))
			kernelSays := regexp.MustCompile(fmt.Sprintf(`device-mapper: verity: \S+: data block %d is corrupted`, block))
			if code != exitFailure || !kernelSays.MatchString(out) {
				t.Errorf("ocidisk test of the corrupted image: exit %d, want %d and the kernel's %q\n%s", code, exitFailure, kernelSays, tail(out, 30))
			}
			if after := fileHash(t, img); after != sum {
				t.Errorf("ocidisk test changed the image: sha256 %s, then %s", sum, after)
			}
		})
	}
}

// TestBuildVerityRefused: --verity needs a read-only root: the board's
// ext4 root is a usage error naming the flag.
func TestBuildVerityRefused(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.img")
	for _, args := range [][]string{
		{"--verity"},
		{"--verity", "--root-fs", "ext4"},
		{"--verity", "--ab"}, // a slot's root is ext4 unless --root-fs says otherwise
	} {
		code, _, stderr := runCLI(t, append(append([]string{"build", "-o", out}, args...), "oci:"+filepath.Join(t.TempDir(), "missing"))...)
		if code != exitUsage || !strings.Contains(stderr, "--verity: a verified root needs a read-only root filesystem (erofs or squashfs); the root is ext4") {
			t.Errorf("%q: exit %d, stderr %q; want exit %d naming --verity", args, code, stderr, exitUsage)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a refused build left an image")
	}
}

// updaterSed is what the README tells an updater to run on the other
// slot's boot entry (extlinux.conf) or command line (cmdline.txt): the
// slot's verity arguments replaced by those of its new root, ARGS being
// the content of OUT.root.verity.
const updaterSed = `s/ocidisk\.verity=[^ ]*\( ocidisk\.verity\.[^ ]*\)*/ARGS/`

// TestABVerityUpdate: an A/B image with verified squashfs roots boots slot
// A; an update's slot image, written into slot B and switched to without
// its verity arguments, fails to boot (slot B is named with a root hash
// of zeros until an update names its own); with the arguments of
// OUT.root.verity written into slot B's entry as the README says, slot B
// boots verified against the update's root hash, and inspect verifies
// both slots.
func TestABVerityUpdate(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	flags := []string{"--board", "qemu-virt-arm64", "--ab", "--root-fs", "squashfs", "--root-size", "400MiB", "--verity", "--kernel", "deb:" + kernel}
	img := filepath.Join(t.TempDir(), "card.img")
	card := buildJSONOut(t, append(append([]string{"-o", img}, flags...), "--overlay", abInit(t, "SLOT-A-ROOT"), "oci:"+root)...)
	if code, out := bootTest(t, img, "--timeout", "240s",
		"--expect", fmt.Sprintf(`ocidisk-init: verity: /dev/vda2 \(PARTUUID=\S+-02\) checked against root hash %s\.\.\. as /dev/dm-0`, card.Verity.RootHash[:16]),
		"--expect", `abtest: root /dev/dm-0 / squashfs ro`, "--expect", `abtest: slot a`, "--expect", `SLOT-A-ROOT`); code != exitOK {
		t.Fatalf("slot A did not boot (exit %d):\n%s", code, tail(out, 40))
	}

	slotImg := filepath.Join(t.TempDir(), "update.root")
	update := buildJSONOut(t, append(append([]string{"--slot-image", slotImg}, flags...), "--overlay", abInit(t, "SLOT-B-ROOT"), "oci:"+root)...)
	args, err := os.ReadFile(slotImg + ".verity")
	if err != nil || update.Verity == nil || update.Verity.ArgsFile != slotImg+".verity" || string(args) != update.Verity.Args+"\n" {
		t.Fatalf("update: verity %+v, %s.verity holds %q (%v)", update.Verity, slotImg, args, err)
	}
	if update.Verity.RootHash == card.Verity.RootHash {
		t.Fatal("the update has the card's root hash")
	}
	d := readDisk(t, img)
	bootP, rootB := d.Partitions[0], d.Partitions[2]
	writeSlot(t, img, slotImg, rootB.Start*512, rootB.Size*512)
	editFAT(t, img, bootP.Start*512, "extlinux/extlinux.conf", func(s string) string {
		return strings.Replace(s, "\ndefault slot-a\n", "\ndefault slot-b\n", 1)
	})
	// An updater that forgets the arguments: slot B still names no tree
	// (the init finds the update's tree does not have the salt the
	// command line pins, and would then find its root hash is not zeros).
	if code, out := bootTest(t, img, "--timeout", "240s", "--expect", `SLOT-B-ROOT`); code != exitFailure ||
		!regexp.MustCompile(`ocidisk-init: error: verity: the superblock on /dev/vda3 at byte \d+ has salt [0-9a-f]+, the command line [0-9a-f]+`).MatchString(out) {
		t.Fatalf("slot B without its verity arguments: exit %d, want %d and the init's verity error\n%s", code, exitFailure, tail(out, 30))
	}

	sed := hosttool.Require(t, "sed", "sed")
	editFAT(t, img, bootP.Start*512, "extlinux/extlinux.conf", func(s string) string {
		cmd := exec.Command(sed, "/^label slot-b/,/append/ "+strings.Replace(updaterSed, "ARGS", strings.TrimSpace(string(args)), 1))
		cmd.Stdin = strings.NewReader(s)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sed: %v", err)
		}
		return string(out)
	})
	if code, out := bootTest(t, img, "--timeout", "240s",
		"--expect", fmt.Sprintf(`ocidisk-init: verity: /dev/vda3 \(PARTUUID=\S+-03\) checked against root hash %s\.\.\. as /dev/dm-0`, update.Verity.RootHash[:16]),
		"--expect", `abtest: root /dev/dm-0 / squashfs ro`, "--expect", `abtest: slot b`, "--expect", `SLOT-B-ROOT`); code != exitOK {
		t.Fatalf("the updated slot B did not boot (exit %d):\n%s", code, tail(out, 40))
	}
	code, stdout, stderr := runCLI(t, "inspect", img)
	for _, want := range []string{
		"root partition 2 (slot a): dm-verity root hash " + card.Verity.RootHash + ": verified",
		"root partition 3 (slot b): dm-verity root hash " + update.Verity.RootHash + ": verified",
	} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("inspect: exit %d, want %q\n%s%s", code, want, stdout, stderr)
		}
	}
}
