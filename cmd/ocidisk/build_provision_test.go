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

// debugfsCat returns a file of the ext4 in part, as debugfs reads it.
func debugfsCat(t *testing.T, part, p string) string {
	t.Helper()
	out, err := exec.Command(hosttool.Require(t, "debugfs", "e2fsprogs"), "-R", "cat "+p, part).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", p, err)
	}
	return string(out)
}

// debugfsStat returns "TYPE MODE UID:GID" of p in the ext4 in part.
func debugfsStat(t *testing.T, part, p string) string {
	t.Helper()
	out, err := exec.Command(hosttool.Require(t, "debugfs", "e2fsprogs"), "-R", "stat "+p, part).Output()
	if err != nil {
		t.Fatalf("debugfs stat %s: %v", p, err)
	}
	m := regexp.MustCompile(`Type: (\S+)\s+Mode:\s+(\d+)\s.*\n.*\n\s*User:\s+(\d+)\s+Group:\s+(\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("debugfs stat %s:\n%s", p, out)
	}
	return m[1] + " " + m[2] + " " + m[3] + ":" + m[4]
}

// TestBuildAccess: a build file's host name, users, password hash and
// SSH key (its path relative to the file) end up in the root, and the
// root's /etc/fstab names the image's partitions as sfdisk reads them.
func TestBuildAccess(t *testing.T) {
	kernel, root := debian.KernelDeb(t), debian.BusyboxRoot(t)
	mkpasswd := hosttool.Require(t, "mkpasswd", "whois")
	keygen := hosttool.Require(t, "ssh-keygen", "openssh-client")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", filepath.Join(dir, "keys", "alice")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "keys", "alice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	hash, err := exec.Command(mkpasswd, "-m", "yescrypt", "correct horse").Output()
	if err != nil {
		t.Fatal(err)
	}
	file := `board: qemu-virt-arm64
source: oci:` + root + `
kernel: deb:` + kernel + `
hostname: pi-test
users: [alice, bob]
password-hashes: ["bob:` + strings.TrimSpace(string(hash)) + `"]
ssh-authorized-keys: ["alice:keys/alice.pub"]
output: {path: out.img}
`
	if err := os.WriteFile(filepath.Join(dir, "ocidisk.yaml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if code, stdout, stderr := runCLI(t, "build", "-f", dir); code != exitOK {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	img := filepath.Join(dir, "out.img")
	d := readDisk(t, img)
	part := hosttool.Partition(t, img, d.Partitions[1].Start*512, d.Partitions[1].Size*512)
	day := "19675" // 1700000000 / 86400
	for p, want := range map[string][]string{
		"/etc/hostname":                    {"pi-test"},
		"/etc/hosts":                       {"127.0.0.1\tlocalhost", "127.0.1.1\tpi-test"},
		"/etc/passwd":                      {"root:x:0:0:root:/root:/bin/sh", "alice:x:1000:1000:,,,:/home/alice:/bin/sh", "bob:x:1001:1001:,,,:/home/bob:/bin/sh"},
		"/etc/group":                       {"root:x:0:", "alice:x:1000:", "bob:x:1001:"},
		"/etc/shadow":                      {"alice:*:" + day + ":0:99999:7:::", "bob:" + strings.TrimSpace(string(hash)) + ":" + day + ":0:99999:7:::"},
		"/home/alice/.ssh/authorized_keys": {strings.TrimSpace(string(pub))},
	} {
		got := strings.Split(strings.TrimSuffix(debugfsCat(t, part, p), "\n"), "\n")
		if !slices.Equal(got[:min(len(got), len(want))], want) {
			t.Errorf("%s:\n%s\nwant it to start with\n%s", p, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	for p, want := range map[string]string{
		"/home/alice": "directory 0700 1000:1000", "/home/alice/.ssh": "directory 0700 1000:1000",
		"/home/alice/.ssh/authorized_keys": "regular 0600 1000:1000", "/home/bob": "directory 0700 1001:1001",
		"/etc/shadow": "regular 0600 0:0", "/boot/firmware": "directory 0755 0:0",
	} {
		if got := debugfsStat(t, part, p); got != want {
			t.Errorf("%s is %s, want %s", p, got, want)
		}
	}
	// fstab, as util-linux parses it, names the image's partitions.
	fstab := filepath.Join(t.TempDir(), "fstab")
	if err := os.WriteFile(fstab, []byte(debugfsCat(t, part, "/etc/fstab")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(hosttool.Require(t, "findmnt", "util-linux"), "--fstab", "--tab-file", fstab, "-n", "-r", "-o", "SOURCE,TARGET,FSTYPE,OPTIONS,PASSNO").CombinedOutput()
	if err != nil {
		t.Fatalf("findmnt: %v\n%s", err, out)
	}
	sig := strings.TrimPrefix(readDiskID(t, img), "0x")
	want := "PARTUUID=" + sig + "-02 / ext4 errors=remount-ro 1\nPARTUUID=" + sig + "-01 /boot/firmware vfat defaults 2\n"
	if string(out) != want {
		t.Errorf("fstab, as findmnt reads it:\n%s\nwant\n%s", out, want)
	}
}

// readDiskID is an MBR image's disk identifier, as sfdisk reports it.
func readDiskID(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command(hosttool.Require(t, "sfdisk", "fdisk"), "--disk-id", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --disk-id: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestBuildAccessErrors: what the command line asks of a root that
// cannot have it is a usage error that says so, and a password given
// where its hash belongs never shows.
func TestBuildAccessErrors(t *testing.T) {
	kernel, root := debian.KernelDeb(t), debian.BusyboxRoot(t)
	dir := t.TempDir()
	notKey := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(notKey, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const hash = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"
	out := filepath.Join(dir, "t.img")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--password-hash", "root:hunter2"}, exitUsage, "--password-hash: user root: not a crypt(3) hash"},
		{[]string{"--password-hash", "bob:" + hash}, exitUsage, "--password-hash: root image oci:" + root + ": user bob: the root has no such user"},
		{[]string{"--ssh-authorized-key", "alice:" + notKey}, exitUsage, "--ssh-authorized-key: " + notKey + ": line 1: not an SSH public key"},
		{[]string{"--ssh-authorized-key", "bob:/dev/null"}, exitUsage, "--ssh-authorized-key: /dev/null: no SSH public key"},
		{[]string{"--root-size", "grow", "--data", "64MiB"}, exitFailure, "the root cannot grow to fill the card (--root-size grow): only a writable root last on the disk can, and partition data follows it"},
	} {
		args := append([]string{"build", "-o", out, "--kernel", "deb:" + kernel}, append(tc.args, "oci:"+root)...)
		code, _, stderr := runCLI(t, args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || strings.Contains(stderr, "hunter2") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, %q; want exit %d, one line mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%q left %s behind", tc.args, out)
		}
	}
}
