package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// The end-to-end tests of images prepared for devices, on the busybox
// root: each card of one image makes its own SSH host keys and machine ID
// on its first boot and keeps them; a root that grows fills the card.
// The judges are the guest's own report, sfdisk, e2fsck, dumpe2fs, and
// ssh-keygen on the keys the guest left behind.

// identityOverlay returns a directory to give --overlay: what the root of
// a build system carries that each device must have its own of (an SSH
// host key, a machine ID, which the build must take out), an
// sshd_config whose HostKey lines the init reads (hostKeys, or Debian's
// default when none), and an /sbin/init that reports the root's mount,
// its host key files and keys, machine ID and size, prints marker, and
// powers off with every filesystem unmounted or read-only.
func identityOverlay(t *testing.T, marker string, hostKeys ...string) string {
	t.Helper()
	dir := t.TempDir()
	conf := "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n"
	for _, k := range hostKeys {
		conf += "HostKey " + k + "\n"
	}
	script := `#!/bin/busybox sh
# ocidisk identity test root: report, print the marker, power off.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
bb=/bin/busybox
$bb mount -t proc proc /proc 2>/dev/null
echo "idtest: root $($bb grep ' / ' /proc/mounts | $bb tail -n 1)"
for f in /etc/ssh/ssh_host_*; do echo "idtest: file $($bb stat -c '%a %u:%g %n' $f)"; done
for f in /etc/ssh/ssh_host_*_key.pub; do echo "idtest: key $($bb cat $f)"; done
echo "idtest: machine-id $($bb cat /etc/machine-id)"
echo "idtest: df $($bb df -k / | $bb tail -n 1)"
echo '` + marker + `'
$bb umount /etc /var 2>/dev/null
$bb umount /data 2>/dev/null
$bb mount -o remount,ro /
$bb sync
$bb poweroff -f
`
	for p, body := range map[string]string{
		"sbin/init":                    script,
		"etc/ssh/sshd_config":          conf,
		"etc/ssh/sshd_config.d/.keep":  "",
		"etc/ssh/ssh_host_ed25519_key": "the build system's key\n",
		"etc/machine-id":               "0123456789abcdef0123456789abcdef\n",
	} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// identity is what a boot of identityOverlay's init reported.
type identity struct {
	root      string
	files     []string
	keys      []string
	machineID string
}

var idLine = regexp.MustCompile(`(?m)^idtest: (\S+) (.*?)\r?$`)

func readIdentity(t *testing.T, console string) identity {
	t.Helper()
	var id identity
	for _, m := range idLine.FindAllStringSubmatch(console, -1) {
		switch m[1] {
		case "root":
			id.root = m[2]
		case "file":
			id.files = append(id.files, m[2])
		case "key":
			id.keys = append(id.keys, m[2])
		case "machine-id":
			id.machineID = m[2]
		}
	}
	if len(id.keys) == 0 || len(id.machineID) != 32 {
		t.Fatalf("the guest reported keys %q, machine ID %q:\n%s", id.keys, id.machineID, tail(console, 30))
	}
	return id
}

// TestFirstBootIdentity: one image, copied to two cards, each booted
// twice. Each card makes its own SSH host keys (Debian's three, as
// sshd_config names none) and machine ID on its first boot and keeps
// them on the second; the two cards' differ, and the build system's key
// and ID are gone. The image asks for the root to grow and for the init
// to mount it read-only (ro, as for a root whose systemd checks it), so
// the init writes the first boot's files and grows the root on a root it
// remounts read-write for the moment, then hands it over read-only. The
// grown card's root fills it, e2fsck finds it clean, and ssh-keygen reads
// the keys the guest wrote.
func TestFirstBootIdentity(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	const marker = "IDENTITY-TEST-ROOT"
	img := buildImage(t, "--root-size", "grow", "--cmdline-append", "ro", "--kernel", "deb:"+kernel,
		"--overlay", identityOverlay(t, marker), "oci:"+root)
	const card = 4 << 30
	cards := []string{copyToDisk(t, img, card), copyToDisk(t, img, 2<<30)}
	var ids []identity
	for i, c := range cards {
		first := bootWritable(t, "qemu-virt-arm64", c, false,
			`ocidisk-init: mounted /dev/vda2 \S+ on /root as ext4, read-only`,
			`ocidisk-init: grew /dev/vda2 \(partition 2 of vda, mbr\) from \d+ MiB to \d+ MiB, the end of the disk`,
			`ocidisk-init: made SSH host keys rsa, ecdsa, ed25519 in /etc/ssh`,
			`ocidisk-init: made machine ID [0-9a-f]{32}`, marker)
		t.Logf("card %d: %s", i+1, regexp.MustCompile(`ocidisk-init: made SSH host keys .*`).FindString(first))
		id := readIdentity(t, first)
		if !strings.HasPrefix(id.root, "/dev/vda2 / ext4 ro,") {
			t.Errorf("card %d: the root's init got the root %q, want it read-only", i+1, id.root)
		}
		want := []string{"600 0:0 /etc/ssh/ssh_host_ecdsa_key", "644 0:0 /etc/ssh/ssh_host_ecdsa_key.pub",
			"600 0:0 /etc/ssh/ssh_host_ed25519_key", "644 0:0 /etc/ssh/ssh_host_ed25519_key.pub",
			"600 0:0 /etc/ssh/ssh_host_rsa_key", "644 0:0 /etc/ssh/ssh_host_rsa_key.pub"}
		if !slices.Equal(id.files, want) {
			t.Errorf("card %d: host key files\n%s\nwant\n%s", i+1, strings.Join(id.files, "\n"), strings.Join(want, "\n"))
		}
		if id.machineID == "0123456789abcdef0123456789abcdef" {
			t.Errorf("card %d kept the build system's machine ID", i+1)
		}
		second := bootWritable(t, "qemu-virt-arm64", c, false, marker)
		if strings.Contains(second, "ocidisk-init: grew") || strings.Contains(second, "ocidisk-init: made") {
			t.Errorf("card %d: the second boot did the first boot's work again:\n%s", i+1, tail(second, 20))
		}
		if again := readIdentity(t, second); !slices.Equal(again.keys, id.keys) || again.machineID != id.machineID {
			t.Errorf("card %d: the second boot has keys %q, ID %s; the first had %q, %s", i+1, again.keys, again.machineID, id.keys, id.machineID)
		}
		ids = append(ids, id)
	}
	for k := range ids[0].keys {
		if ids[0].keys[k] == ids[1].keys[k] {
			t.Errorf("both cards have the host key %s", ids[0].keys[k])
		}
	}
	if ids[0].machineID == ids[1].machineID {
		t.Errorf("both cards have the machine ID %s", ids[0].machineID)
	}

	// The first card's root fills it, clean, and holds keys ssh-keygen
	// reads.
	sfdiskClean(t, cards[0])
	d := readDisk(t, cards[0])
	p := d.Partitions[1]
	if end := int64(card) / 512 / 2048 * 2048; p.Start+p.Size != end {
		t.Errorf("root partition at %d, %d sectors; want it to end at sector %d", p.Start, p.Size, end)
	}
	if fs := e2fsckPart(t, cards[0], p.Start*512, p.Size*512); fs != p.Size*512 {
		t.Errorf("root filesystem of %d bytes in a %d-byte partition", fs, p.Size*512)
	}
	checkHostKeys(t, hosttool.Partition(t, cards[0], p.Start*512, p.Size*512), "/etc/ssh", ids[0].keys)
}

// checkHostKeys has ssh-keygen read each private key in dir of the ext4
// in part: it must give back the public key the guest reported, of
// ssh-keygen's own sizes.
func checkHostKeys(t *testing.T, part, dir string, keys []string) {
	t.Helper()
	debugfs := hosttool.Require(t, "debugfs", "e2fsprogs")
	keygen := hosttool.Require(t, "ssh-keygen", "openssh-client")
	sizes := map[string]string{"rsa": "3072", "ecdsa": "256", "ed25519": "256"}
	for _, typ := range []string{"rsa", "ecdsa", "ed25519"} {
		key := dir + "/ssh_host_" + typ + "_key"
		local := filepath.Join(t.TempDir(), "key")
		if out, err := exec.Command(debugfs, "-R", "dump "+key+" "+local, part).CombinedOutput(); err != nil {
			t.Fatalf("debugfs dump %s: %v\n%s", key, err, out)
		}
		if err := os.Chmod(local, 0o600); err != nil {
			t.Fatal(err)
		}
		pub, err := exec.Command(keygen, "-y", "-f", local).Output()
		if err != nil {
			t.Fatalf("ssh-keygen -y -f %s: %v", key, err)
		}
		if !slices.Contains(keys, strings.TrimSpace(string(pub))) {
			t.Errorf("%s: ssh-keygen derives %q, which the guest did not report (%q)", key, pub, keys)
		}
		fp, err := exec.Command(keygen, "-l", "-f", local).Output()
		if err != nil || !strings.HasPrefix(string(fp), sizes[typ]+" SHA256:") {
			t.Errorf("ssh-keygen -l -f %s: %s %v; want %s bits", key, fp, err, sizes[typ])
		}
	}
}

// TestHostKeysOnReadOnlyRoot: a read-only root keeps its host key in the
// overlay's upper directory on the data partition, across boots; with the
// overlay on a tmpfs, each boot makes a new one. The sshd_config names
// one ed25519 key, and no other is made.
func TestHostKeysOnReadOnlyRoot(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	const marker = "RO-KEYS-TEST-ROOT"
	overlay := identityOverlay(t, marker, "/etc/ssh/ssh_host_ed25519_key")
	for _, tc := range []struct {
		name  string
		flags []string
		keep  bool
	}{
		{"data partition", []string{"--data", "64MiB"}, true},
		{"tmpfs", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := buildImage(t, append(tc.flags, "--root-fs", "squashfs", "--kernel", "deb:"+kernel, "--overlay", overlay, "oci:"+root)...)
			var keys [][]string
			for range 2 {
				out := bootWritable(t, "qemu-virt-arm64", img, false, `ocidisk-init: made SSH host keys ed25519 in /etc/ssh`, marker)
				id := readIdentity(t, out)
				if !slices.Equal(id.files, []string{"600 0:0 /etc/ssh/ssh_host_ed25519_key", "644 0:0 /etc/ssh/ssh_host_ed25519_key.pub"}) {
					t.Errorf("host key files %q", id.files)
				}
				keys = append(keys, id.keys)
				if tc.keep {
					break // the second boot makes none: below
				}
			}
			if tc.keep {
				out := bootWritable(t, "qemu-virt-arm64", img, false, marker)
				if strings.Contains(out, "ocidisk-init: made") {
					t.Errorf("the second boot made keys again:\n%s", tail(out, 20))
				}
				if again := readIdentity(t, out); !slices.Equal(again.keys, keys[0]) {
					t.Errorf("second boot's key %q, the first's %q", again.keys, keys[0])
				}
				d := readDisk(t, img)
				data := hosttool.Partition(t, img, d.Partitions[2].Start*512, d.Partitions[2].Size*512)
				out2, err := exec.Command(hosttool.Require(t, "debugfs", "e2fsprogs"), "-R", "cat /overlay/upper/etc/ssh/ssh_host_ed25519_key.pub", data).Output()
				if err != nil || strings.TrimSpace(string(out2)) != keys[0][0] {
					t.Errorf("the data partition's overlay holds %q (%v), want the key %q", out2, err, keys[0][0])
				}
				return
			}
			if slices.Equal(keys[0], keys[1]) {
				t.Errorf("two boots with a tmpfs overlay have the same key %q", keys[0])
			}
		})
	}
}

// TestBuildArchitectureCheck: a root whose init is for another machine
// than the board's fails the build, naming the file and both machines,
// unless --force-arch.
func TestBuildArchitectureCheck(t *testing.T) {
	host, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip(err)
	}
	if len(host) < 20 || host[18] == 183 || host[18] == 40 { // EM_AARCH64, EM_ARM
		t.Skip("the host runs Arm programs")
	}
	overlay := t.TempDir()
	if err := os.MkdirAll(filepath.Join(overlay, "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(overlay, "sbin", "init"), host, 0o755); err != nil {
		t.Fatal(err)
	}
	kernel, root := debian.KernelDeb(t), debian.BusyboxRoot(t)
	out := filepath.Join(t.TempDir(), "t.img")
	args := []string{"build", "-o", out, "--kernel", "deb:" + kernel, "--overlay", overlay, "oci:" + root}
	code, _, stderr := runCLI(t, args...)
	if code != exitFailure || !regexp.MustCompile(`/sbin/init is a program for x86-64, but the board runs arm64: .*--force-arch`).MatchString(stderr) {
		t.Errorf("exit %d, %q; want a failure naming /sbin/init, x86-64, arm64 and --force-arch", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("the failed build left an image")
	}
	if code, _, stderr := runCLI(t, append([]string{"build", "--force-arch"}, args[1:]...)...); code != exitOK {
		t.Errorf("--force-arch: exit %d, %s", code, stderr)
	}
}
