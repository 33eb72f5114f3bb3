package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// The end-to-end tests of a real distribution made ready for devices: the
// configured Debian bookworm root with systemd, sshd and sudo
// (debian.SystemdRoot), built with a host name, a user with an SSH key and
// root's password hash, booted to systemd's "running" on qemu-virt-arm64
// and, through the README's own commands, on the Pi 3's raspi3b. The
// judges are systemd itself (is-system-running), ssh logging in with the
// key through a published port and sudo, the guests' reports of their
// keys and machine IDs, and sfdisk, dumpe2fs and e2fsck on what a card
// holds after its boots and a power cut.

// debianPassword is root's password on the console; the builds get its
// hash only.
const debianPassword = "ocidisk-test-pw"

// debianAccess is what the builds give access with: a user's SSH key
// pair and root's password hash.
type debianAccess struct {
	key, pub string // the private key and the .pub file
	hash     string
}

func newDebianAccess(t *testing.T) debianAccess {
	t.Helper()
	keygen := hosttool.Require(t, "ssh-keygen", "openssh-client")
	mkpasswd := hosttool.Require(t, "mkpasswd", "whois")
	dir := t.TempDir()
	a := debianAccess{key: filepath.Join(dir, "id_ed25519")}
	a.pub = a.key + ".pub"
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "alice@host", "-f", a.key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	cmd := exec.Command(mkpasswd, "-m", "yescrypt", "--stdin")
	cmd.Stdin = strings.NewReader(debianPassword + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mkpasswd: %v", err)
	}
	a.hash = strings.TrimSpace(string(out))
	return a
}

// needLogin skips (fails, in CI) a test that logs in on the console when
// ocidisk test cannot yet: --login, --run, --net and --publish come with
// the qemunet work.
func needLogin(t *testing.T) {
	t.Helper()
	_, out, _ := runCLI(t, "test", "--help")
	for _, f := range []string{"--login", "--run", "--net", "--publish"} {
		if !strings.Contains(out, f) {
			hosttool.Missing(t, "ocidisk test has no "+f+" yet: it comes with ocidisk test's console login (qemunet)")
		}
	}
}

// syncBuffer is a console that a test reads while QEMU writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ocidiskTest runs `ocidisk test --console ARGS` in this process until it
// ends or ctx is cancelled (which stops QEMU), while during, if set, runs
// beside it with the console so far. It returns the exit status and the
// console with ocidisk's own output.
func ocidiskTest(t *testing.T, ctx context.Context, during func(ctx context.Context, console *syncBuffer), args ...string) (int, string) {
	t.Helper()
	hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if during != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			during(ctx, &out)
		}()
	}
	code := run(ctx, append([]string{"test", "--console"}, args...), strings.NewReader(""), &out, &errOut, false)
	cancel()
	wg.Wait()
	return code, out.String() + errOut.String()
}

// report reads the "provtest: KEY VALUE" lines a guest printed, each
// once: ocidisk test prints a command's output again after the console.
func report(console string) map[string][]string {
	r := map[string][]string{}
	for _, m := range regexp.MustCompile(`(?m)^provtest: (\S+) ?(.*?)\r?$`).FindAllStringSubmatch(console, -1) {
		if !slices.Contains(r[m[1]], m[2]) {
			r[m[1]] = append(r[m[1]], m[2])
		}
	}
	return r
}

// identityCommands print the card's machine ID and host key fingerprints.
var identityCommands = []string{
	"--run", "echo provtest: machine-id $(cat /etc/machine-id)",
	"--run", "for k in /etc/ssh/ssh_host_*_key.pub; do echo provtest: key $(ssh-keygen -lf $k); done",
}

// cardIdentity is what identityCommands printed.
func cardIdentity(t *testing.T, console string) (id string, keys []string) {
	t.Helper()
	r := report(console)
	if len(r["machine-id"]) != 1 || len(r["machine-id"][0]) != 32 || len(r["key"]) != 3 {
		t.Fatalf("the guest reported machine ID %q, keys %q:\n%s", r["machine-id"], r["key"], tail(console, 40))
	}
	return r["machine-id"][0], r["key"]
}

// TestDebianOnVirt: the configured Debian root, built for qemu-virt-arm64
// with --root-size grow, copied to two cards. Card A (4 GiB) boots to
// running, grows, and lets alice in over ssh through a published port with
// her key, where sudo -n works; its sshd offers the host key the card made.
// Each card keeps its keys and machine ID across its boots, and the two
// cards' differ. A power cut while the guest writes is checked by
// systemd-fsck-root on the next boot, and after a clean shutdown e2fsck
// finds the grown root clean and filling the card.
func TestDebianOnVirt(t *testing.T) {
	needLogin(t)
	kernel := debian.KernelDeb(t)
	root := debian.SystemdRoot(t)
	acc := newDebianAccess(t)
	img := buildImage(t, "--board", "qemu-virt-arm64", "--kernel", "deb:"+kernel, "--hostname", "deb-test",
		"--user", "alice", "--ssh-authorized-key", "alice:"+acc.pub, "--password-hash", "root:"+acc.hash,
		"--root-size", "grow", "oci:"+root.Layout)
	const cardA = 4 << 30
	a, b := copyToDisk(t, img, cardA), copyToDisk(t, img, 2<<30)
	login := []string{"--board", "qemu-virt-arm64", "--writable", "--timeout", "30m", "--login", "root:" + debianPassword}
	running := []string{"--run", "systemctl is-system-running --wait"}

	// Card A's first boot: grown, running, alice in over ssh.
	port := freePort(t)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	var sshOut string
	ssh := hosttool.Require(t, "ssh", "openssh-client")
	sshIn := func(ctx context.Context, _ *syncBuffer) {
		sshOut = sshUntil(ctx, ssh, acc.key, knownHosts, port)
	}
	args := append(append(append([]string{}, login...), "--net", "user", "--publish", "127.0.0.1:"+port+":22",
		"--expect", `ocidisk-init: grew /dev/vda2 \(partition 2 of vda, mbr\)`,
		"--expect", `ocidisk-init: made SSH host keys rsa, ecdsa, ed25519`,
		"--expect", `Finished .*systemd-fsck-root`), running...)
	args = append(append(args, identityCommands...),
		"--run", "for i in $(seq 900); do [ -e /run/provtest-ssh ] && break; sleep 1; done; [ -e /run/provtest-ssh ]", a)
	code, console := ocidiskTest(t, t.Context(), sshIn, args...)
	if code != exitOK {
		t.Fatalf("card A's first boot: exit %d\n%s\nssh: %s", code, tail(console, 60), sshOut)
	}
	idA, keysA := cardIdentity(t, console)
	if !strings.Contains(sshOut, "provtest-ssh: alice deb-test sudo") {
		t.Errorf("ssh as alice: %s", sshOut)
	}
	checkKnownHost(t, knownHosts, keysA)

	// Each card keeps its identity; the cards' differ. Card A's second boot
	// ends in a power cut while the guest writes.
	type identity struct {
		id   string
		keys []string
	}
	first := map[string]identity{"A": {idA, keysA}}
	for i, c := range []struct {
		name string
		card string
		cut  bool
	}{{"B", b, false}, {"B", b, false}, {"A", a, true}} {
		args := append(append(append([]string{}, login...), running...), identityCommands...)
		var during func(ctx context.Context, console *syncBuffer)
		ctx, cancel := context.WithCancel(t.Context())
		if c.cut {
			args = append(args, "--run", "echo provtest: writing; while :; do dd if=/dev/urandom of=/var/tmp/spill bs=1M count=16 conv=fsync status=none; done")
			during = func(ctx context.Context, console *syncBuffer) {
				for ctx.Err() == nil && !strings.Contains(console.String(), "\nprovtest: writing") {
					time.Sleep(200 * time.Millisecond)
				}
				time.Sleep(5 * time.Second) // into the writes
				cancel()                    // QEMU is killed: the power cut
			}
		}
		code, console := ocidiskTest(t, ctx, during, append(args, c.card)...)
		cancel()
		if !c.cut && code != exitOK {
			t.Fatalf("card %s, boot %d: exit %d\n%s", c.name, i, code, tail(console, 60))
		}
		if c.cut && !strings.Contains(console, "\nprovtest: writing") {
			t.Fatalf("card A: the guest never started writing:\n%s", tail(console, 40))
		}
		id, keys := cardIdentity(t, console)
		was, ok := first[c.name]
		if !ok {
			if id == idA || slices.ContainsFunc(keys, func(k string) bool { return slices.Contains(keysA, k) }) {
				t.Errorf("card %s has card A's machine ID %s or one of its keys %q: %q", c.name, idA, keysA, keys)
			}
			first[c.name] = identity{id, keys}
			continue
		}
		if id != was.id || !slices.Equal(keys, was.keys) {
			t.Errorf("card %s's next boot: machine ID %s, keys %q; its first had %s, %q", c.name, id, keys, was.id, was.keys)
		}
	}

	// After the cut: the root is checked before it is written, and a
	// clean shutdown leaves it clean.
	code, console = ocidiskTest(t, t.Context(), nil, append(append(append([]string{}, login...), "--expect", `Finished .*systemd-fsck-root`), append(running,
		"--run", "journalctl -b -u systemd-fsck-root -o cat --no-pager | sed 's/^/provtest: fsck /'",
		"--run", "findmnt -no OPTIONS / | sed 's/^/provtest: root /'", a)...)...)
	if code != exitOK {
		t.Fatalf("card A after the power cut: exit %d\n%s", code, tail(console, 60))
	}
	r := report(console)
	if len(r["fsck"]) == 0 || !strings.HasPrefix(r["fsck"][len(r["fsck"])-1], "root: ") {
		t.Errorf("systemd-fsck-root logged %q after the power cut", r["fsck"])
	}
	if len(r["root"]) != 1 || !strings.HasPrefix(r["root"][0], "rw,") {
		t.Errorf("the root is mounted %q after systemd-remount-fs, want rw", r["root"])
	}
	t.Logf("after the power cut: %s", strings.Join(r["fsck"], "; "))

	sfdiskClean(t, a)
	d := readDisk(t, a)
	p := d.Partitions[1]
	if end := int64(cardA) / 512 / 2048 * 2048; p.Start+p.Size != end {
		t.Errorf("root partition at %d, %d sectors; want it to end at sector %d", p.Start, p.Size, end)
	}
	if fs := e2fsckPart(t, a, p.Start*512, p.Size*512); fs != p.Size*512 {
		t.Errorf("root filesystem of %d bytes in a %d-byte partition", fs, p.Size*512)
	}
}

// sshUntil tries, until it works or ctx ends, to log in as alice with key
// through the published port, run sudo without a password and leave the
// mark the guest waits for. It returns what the last try printed.
func sshUntil(ctx context.Context, ssh, key, knownHosts, port string) string {
	var out []byte
	for ctx.Err() == nil {
		cmd := exec.CommandContext(ctx, ssh, "-i", key, "-p", port, "-o", "BatchMode=yes",
			"-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile="+knownHosts, "-o", "ConnectTimeout=20",
			"-o", "IdentitiesOnly=yes", "alice@127.0.0.1",
			"sudo -n true && sudo -n touch /run/provtest-ssh && echo provtest-ssh: $(id -un) $(hostname) $(id -Gn | grep -ow sudo)")
		var err error
		if out, err = cmd.CombinedOutput(); err == nil {
			return string(out)
		}
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
	}
	return string(out)
}

// checkKnownHost: the host key sshd offered is one the card reported.
func checkKnownHost(t *testing.T, knownHosts string, keys []string) {
	t.Helper()
	out, err := exec.Command(hosttool.Require(t, "ssh-keygen", "openssh-client"), "-l", "-f", knownHosts).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -l -f known_hosts: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || !slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, f[1]) }) {
		t.Errorf("sshd offered the host key %s, which is none of the card's %q", out, keys)
	}
}

// readmeBlocks returns the ```sh blocks of the README section headed
// heading, in order.
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q", heading)
	}
	s = s[i+len(heading)+2:]
	if j := strings.Index(s, "\n#"); j >= 0 {
		s = s[:j]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestReadmeDebianOnPi runs the README's "Real Debian on a Raspberry Pi"
// commands as they are written, in a directory of their own, with its
// inputs in the variables the README's first block sets, the password on
// standard input and ocidisk on the PATH: the card builds, and ocidisk
// test logs in as root on raspi3b and sees systemd running.
func TestReadmeDebianOnPi(t *testing.T) {
	needLogin(t)
	blocks := readmeBlocks(t, "### Real Debian on a Raspberry Pi")
	if len(blocks) != 2 || !strings.Contains(blocks[1], "ocidisk build --board rpi3") || !strings.Contains(blocks[1], "ocidisk test --board rpi3 --login") {
		t.Fatalf("the README's walk-through is not an inputs block and a build-and-test block:\n%q", blocks)
	}
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	acc := newDebianAccess(t)
	pub, err := os.ReadFile(acc.pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := ocidiskBinary(t)
	cmd := exec.Command(hosttool.Require(t, "bash", "bash"), "-euo", "pipefail", "-c", blocks[1])
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(debianPassword + "\n")
	cmd.Env = append(os.Environ(), "HOME="+home, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"),
		"OCIDISK_DEBIAN_ROOT="+debian.SystemdRoot(t).Layout,
		"OCIDISK_KERNEL_DEB="+debian.KernelDeb(t),
		"OCIDISK_RASPI_FIRMWARE_DEB="+debian.Package(t, "raspi-firmware"),
		"SOURCE_DATE_EPOCH=1700000000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's commands: %v\n%s", err, tail(string(out), 60))
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "pi.img.bmap")); err != nil {
		t.Errorf("no pi.img.bmap: %v", err)
	}
	t.Log(tail(string(out), 5))
}
