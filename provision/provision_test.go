package provision

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func TestResetIdentity(t *testing.T) {
	keys := []ent{
		dir("etc/ssh"), file("etc/ssh/sshd_config", "Port 22\n"), file("etc/ssh/ssh_host_ed25519_key", "k").perm(0o600),
		file("etc/ssh/ssh_host_ed25519_key.pub", "p"), file("etc/ssh/ssh_host_rsa_key-cert.pub", "c"),
		dir("etc/ssh/ssh_host_keys.d"), // a directory is not a key
	}
	systemd := []ent{dir("usr/lib/systemd"), link("lib", "usr/lib"), exe("usr/lib/systemd/systemd")}
	seeds := []ent{file("var/lib/systemd/random-seed", "s").perm(0o600), file("var/lib/systemd/credential.secret", "c").perm(0o400),
		file("var/lib/ocidisk/grown", "grew\n")}
	for _, tc := range []struct {
		name      string
		root      [][]ent
		removed   []string
		machineID string // "" when there must be none
		left      []string
	}{
		{name: "a systemd root with everything",
			root: [][]ent{keys, systemd, seeds, {file("etc/machine-id", "0123456789abcdef0123456789abcdef\n").perm(0o444)}},
			removed: []string{"/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
				"/etc/ssh/ssh_host_rsa_key-cert.pub", "/var/lib/ocidisk/grown", "/var/lib/systemd/credential.secret", "/var/lib/systemd/random-seed"},
			machineID: "empty", left: []string{"etc/ssh/sshd_config", "etc/ssh/ssh_host_keys.d"}},
		{name: "systemd without a machine-id gets an empty one", root: [][]ent{systemd},
			removed: []string{"/etc/machine-id"}, machineID: "empty"},
		{name: "an empty machine-id is left alone", root: [][]ent{systemd, {file("etc/machine-id", "").perm(0o444)}},
			machineID: "empty"},
		{name: "no systemd, no machine-id: none made", root: [][]ent{keys}, machineID: "",
			removed: []string{"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_rsa_key-cert.pub"}},
		{name: "no systemd, a machine-id (dbus) is emptied", root: [][]ent{{file("etc/machine-id", "x\n").perm(0o444)}},
			removed: []string{"/etc/machine-id"}, machineID: "empty"},
		{name: "/etc/ssh through a symlink", root: [][]ent{{dir("data/ssh"), link("etc/ssh", "/data/ssh"), file("data/ssh/ssh_host_rsa_key", "k")}},
			removed: []string{"/data/ssh/ssh_host_rsa_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t, slices.Concat(tc.root...)...)
			got, err := ResetIdentity(tr, when)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.removed) {
				t.Errorf("changed %q, want %q", got, tc.removed)
			}
			n, err := tr.Lookup("etc/machine-id")
			switch {
			case tc.machineID == "" && err == nil:
				t.Errorf("a machine-id was made")
			case tc.machineID == "empty" && (err != nil || n.Size != 0 || n.Mode != 0o444):
				t.Errorf("machine-id: %v %+v, want an empty file, 0444", err, n)
			}
			for _, p := range tc.left {
				if _, err := tr.Lookup(p); err != nil {
					t.Errorf("%s was removed", p)
				}
			}
			// Nothing else changed: a second pass finds nothing.
			if again, err := ResetIdentity(tr, when); err != nil || len(again) != 0 {
				t.Errorf("second pass changed %q, %v", again, err)
			}
		})
	}
}

func TestSetHostname(t *testing.T) {
	const debHosts = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"
	for _, tc := range []struct {
		name, hosts, host, want string
		noHosts                 bool
	}{
		{name: "Debian's hosts", hosts: debHosts, host: "pi",
			want: "127.0.0.1\tlocalhost\n127.0.1.1\tpi\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"},
		{name: "a 127.0.1.1 line is replaced where it is", hosts: "127.0.0.1 localhost\n# mine\n127.0.1.1 old.example old\n10.0.0.1 gw", host: "pi.example.org",
			want: "127.0.0.1 localhost\n127.0.1.1\tpi.example.org pi\n# mine\n10.0.0.1 gw\n"},
		{name: "no localhost line", hosts: "10.0.0.1 gw\n", host: "pi", want: "127.0.1.1\tpi\n10.0.0.1 gw\n"},
		{name: "no hosts file", noHosts: true, host: "pi",
			want: "127.0.0.1\tlocalhost\n127.0.1.1\tpi\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := []ent{file("etc/hostname", "localhost\n")}
			if !tc.noHosts {
				es = append(es, file("etc/hosts", tc.hosts))
			}
			tr := newTree(t, es...)
			if err := SetHostname(tr, tc.host, when); err != nil {
				t.Fatal(err)
			}
			if got := bodyOf(t, tr, "etc/hostname"); got != tc.host+"\n" {
				t.Errorf("/etc/hostname %q", got)
			}
			if got := bodyOf(t, tr, "etc/hosts"); got != tc.want {
				t.Errorf("/etc/hosts\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "-pi", "pi_3", "a..b", strings.Repeat("a", 64), "pi 3"} {
		if err := CheckHostname(bad); err == nil || !errors.Is(err, ErrUsage) {
			t.Errorf("CheckHostname(%q) = %v, want a usage error", bad, err)
		}
	}
}

// TestCheckHash: what mkpasswd makes with each method passes, and the
// same hash damaged does not; no error repeats what it was given.
func TestCheckHash(t *testing.T) {
	mkpasswd := hosttool.Require(t, "mkpasswd", "whois")
	var hashes []string
	for _, m := range [][]string{{"-m", "yescrypt"}, {"-m", "sha-512"}, {"-m", "sha-512", "-R", "10000"}, {"-m", "sha-256"}, {"-m", "md5"}} {
		out, err := exec.Command(mkpasswd, append(m, "correct horse")...).Output()
		if err != nil {
			t.Fatalf("mkpasswd %q: %v", m, err)
		}
		hashes = append(hashes, strings.TrimSpace(string(out)))
	}
	for _, h := range hashes {
		if err := CheckHash(h); err != nil {
			t.Errorf("CheckHash(%q): %v", h, err)
		}
		if p, err := ParsePassword("alice:" + h); err != nil || p != (Password{"alice", h}) {
			t.Errorf("ParsePassword(alice:%s) = %+v, %v", h, p, err)
		}
		for _, bad := range []string{h[:len(h)-1], h + "x", strings.Replace(h, "$", ":", 3), h[:len(h)-2] + "!!"} {
			if err := CheckHash(bad); err == nil {
				t.Errorf("CheckHash(%q) accepted a damaged hash", bad)
			}
		}
	}
	for _, in := range []string{"alice:correct horse", "correct horse", "alice:", ":" + hashes[0], "Bob:" + hashes[0], "alice:$2b$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE"} {
		_, err := ParsePassword(in)
		if err == nil || !errors.Is(err, ErrUsage) {
			t.Errorf("ParsePassword(%q) = %v, want a usage error", in, err)
			continue
		}
		if strings.Contains(err.Error(), "horse") || strings.Contains(err.Error(), "abcdefgh") {
			t.Errorf("ParsePassword's error shows its input: %v", err)
		}
	}
	if p, err := ParsePassword("root:" + hashes[0]); err != nil || p.User != "root" {
		t.Errorf("root: %+v, %v", p, err)
	}
}

func TestWriteFstab(t *testing.T) {
	f := Fstab{Header: []string{"written by a test"}, Mounts: []Mount{
		{Spec: "PARTUUID=1a2b3c4d-02", Dir: "/", Type: "ext4", Options: "errors=remount-ro", Pass: 1},
		{Spec: "PARTUUID=1a2b3c4d-01", Dir: "/boot/firmware", Type: "vfat", Pass: 2},
		{Spec: "PARTUUID=1a2b3c4d-03", Dir: "/data", Type: "ext4", Options: "noatime", Comment: "mounted by the init"},
	}}
	want := "# written by a test\n" +
		"# <file system>       <mount point>   <type>  <options>          <dump>  <pass>\n" +
		"PARTUUID=1a2b3c4d-02  /               ext4    errors=remount-ro  0       1\n" +
		"PARTUUID=1a2b3c4d-01  /boot/firmware  vfat    defaults           0       2\n" +
		"# mounted by the init\n" +
		"PARTUUID=1a2b3c4d-03  /data           ext4    noatime            0       0\n"
	for _, tc := range []struct {
		name    string
		root    []ent
		written bool
		root1   bool
	}{
		{name: "none", written: true, root1: true},
		{name: "Debian's placeholder", root: []ent{file("etc/fstab", "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n")}, written: true, root1: true},
		{name: "an empty file", root: []ent{file("etc/fstab", "\n\n")}, written: true, root1: true},
		{name: "the root's own, with /", root: []ent{file("etc/fstab", "# mine\nLABEL=r / ext4 rw 0 1\n")}, root1: true},
		{name: "the root's own, without /", root: []ent{file("etc/fstab", "tmpfs /tmp tmpfs defaults 0 0\n")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t, append(tc.root, dir("boot"))...)
			var before string
			if n, err := tr.Lookup("etc/fstab"); err == nil {
				b, _ := fstree.ReadAll(n)
				before = string(b)
			}
			res, err := WriteFstab(tr, f, when)
			if err != nil {
				t.Fatal(err)
			}
			if res != (FstabResult{Written: tc.written, Root: tc.root1}) {
				t.Errorf("result %+v, want written %v, root %v", res, tc.written, tc.root1)
			}
			got := bodyOf(t, tr, "etc/fstab")
			if tc.written && got != want {
				t.Errorf("/etc/fstab:\n%s\nwant\n%s", got, want)
			}
			if !tc.written && got != before {
				t.Errorf("the root's own fstab changed:\n%s", got)
			}
			for _, d := range []string{"boot/firmware", "data"} {
				if _, err := tr.Lookup(d); (err == nil) != tc.written {
					t.Errorf("mount point %s: %v (fstab written: %v)", d, err, tc.written)
				}
			}
		})
	}
}

// TestFstabParses: findmnt, util-linux's own fstab parser, reads the
// rendered file back entry by entry.
func TestFstabParses(t *testing.T) {
	findmnt := hosttool.Require(t, "findmnt", "util-linux")
	f := Fstab{Header: []string{"a test"}, Mounts: []Mount{
		{Spec: "PARTUUID=1a2b3c4d-02", Dir: "/", Type: "squashfs", Options: "ro"},
		{Spec: "PARTUUID=1a2b3c4d-01", Dir: "/boot/firmware", Type: "vfat", Pass: 2, Comment: "the boot partition"},
	}}
	tmp := t.TempDir() + "/fstab"
	if err := os.WriteFile(tmp, f.Render(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(findmnt, "--fstab", "--tab-file", tmp, "-n", "-r", "-o", "SOURCE,TARGET,FSTYPE,OPTIONS,PASSNO").CombinedOutput()
	if err != nil {
		t.Fatalf("findmnt: %v\n%s", err, out)
	}
	want := "PARTUUID=1a2b3c4d-02 / squashfs ro 0\nPARTUUID=1a2b3c4d-01 /boot/firmware vfat defaults 2\n"
	if string(out) != want {
		t.Errorf("findmnt reads\n%s\nwant\n%s", out, want)
	}
}
