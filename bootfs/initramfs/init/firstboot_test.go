package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// mkRoot makes a directory standing in for a mounted root: files by
// path ("" body and a trailing / for a directory, "->target" for a
// symlink).
func mkRoot(t *testing.T, files map[string]string) inRoot {
	t.Helper()
	dir := t.TempDir()
	for p, body := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o755)
		case strings.HasPrefix(body, "->"):
			err = os.Symlink(body[2:], full)
		default:
			err = os.WriteFile(full, []byte(body), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return inRoot(dir)
}

func TestHostKeyFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{name: "no sshd", files: map[string]string{"etc/ssh/ssh_config": "Host *\n"}},
		{name: "Debian's config: the defaults", files: map[string]string{
			"etc/ssh/sshd_config":    "Include /etc/ssh/sshd_config.d/*.conf\n#HostKey /etc/ssh/ssh_host_rsa_key\nUsePAM yes\n",
			"etc/ssh/sshd_config.d/": ""},
			want: []string{"/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ed25519_key"}},
		{name: "HostKey lines, included files in order, a relative include, Match ends them", files: map[string]string{
			"etc/ssh/sshd_config":           "hostkey /etc/ssh/ssh_host_ed25519_key\nInclude sshd_config.d/*.conf\nMatch User x\nHostKey /etc/ssh/late\n",
			"etc/ssh/sshd_config.d/b.conf":  "HostKey \"/etc/ssh/keys/b_rsa\"\n",
			"etc/ssh/sshd_config.d/a.conf":  "  HostKey /etc/ssh/keys/a_ecdsa  \n",
			"etc/ssh/sshd_config.d/c.other": "HostKey /no\n"},
			want: []string{"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/keys/a_ecdsa", "/etc/ssh/keys/b_rsa"}},
		{name: "an absolute symlink stays in the root", files: map[string]string{
			"etc/ssh":                "->/data/ssh",
			"data/ssh/sshd_config":   "Include /etc/ssh/extra.conf\n",
			"data/ssh/extra.conf":    "HostKey /etc/ssh/ssh_host_ed25519_key\n",
			"etc/ssh-not-this/dummy": ""},
			want: []string{"/etc/ssh/ssh_host_ed25519_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hostKeyFiles(mkRoot(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("host keys %q, want %q", got, tc.want)
			}
		})
	}
}

// TestMakeHostKey: the keys the init writes are what ssh-keygen reads:
// the private key gives back the public one, of ssh-keygen's types and
// sizes, with the files' modes.
func TestMakeHostKey(t *testing.T) {
	keygen := hosttool.Require(t, "ssh-keygen", "openssh-client")
	r := mkRoot(t, map[string]string{"etc/ssh/": "", "etc/hostname": "pi\n"})
	for _, tc := range []struct{ typ, file, want string }{
		{"ed25519", "/etc/ssh/ssh_host_ed25519_key", "256 SHA256:"},
		{"ecdsa", "/etc/ssh/ssh_host_ecdsa_key", "256 SHA256:"},
		{"rsa", "/etc/ssh/ssh_host_rsa_key", "3072 SHA256:"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			if typ := keyType(tc.file); typ != tc.typ {
				t.Fatalf("keyType(%s) = %q", tc.file, typ)
			}
			if err := makeHostKey(r, tc.file, tc.typ, "root@"+hostname(r)); err != nil {
				t.Fatal(err)
			}
			priv := filepath.Join(string(r), tc.file)
			for p, mode := range map[string]os.FileMode{priv: 0o600, priv + ".pub": 0o644} {
				if st, err := os.Stat(p); err != nil || st.Mode() != mode {
					t.Errorf("%s: %v, mode %v; want %v", p, err, st.Mode(), mode)
				}
			}
			derived, err := exec.Command(keygen, "-y", "-f", priv).Output()
			if err != nil {
				t.Fatalf("ssh-keygen -y: %v", err)
			}
			pub, _ := os.ReadFile(priv + ".pub")
			// ssh-keygen -y prints the comment the private key holds.
			if f := strings.Fields(string(pub)); len(f) != 3 || string(pub) != string(derived) || f[2] != "root@pi" {
				t.Errorf("%s.pub %q; ssh-keygen derives %q from the private key", tc.file, pub, derived)
			}
			fp, err := exec.Command(keygen, "-l", "-f", priv+".pub").Output()
			if err != nil || !strings.HasPrefix(string(fp), tc.want) || !strings.Contains(string(fp), "root@pi ("+strings.ToUpper(tc.typ)+")") {
				t.Errorf("ssh-keygen -l: %s, %v; want %s...", fp, err, tc.want)
			}
		})
	}
	if ents, _ := os.ReadDir(filepath.Join(string(r), "etc/ssh")); len(ents) != 6 {
		t.Errorf("/etc/ssh has %d entries, want the 3 keys and their .pub files", len(ents))
	}
}

func TestParseGrowRoot(t *testing.T) {
	for in, want := range map[string]bool{
		"root=/dev/vda2 ocidisk.growroot":   true,
		"root=/dev/vda2 ocidisk.growroot=0": false,
		"root=/dev/vda2 ocidisk.grow=1":     false,
	} {
		c, err := parseCmdline(in)
		if strings.Contains(in, "ocidisk.grow=") {
			if err == nil {
				t.Errorf("%q: growing data without a data partition was accepted", in)
			}
			continue
		}
		if err != nil || c.growRoot != want {
			t.Errorf("parseCmdline(%q): growRoot %v, %v; want %v", in, c.growRoot, err, want)
		}
	}
}
