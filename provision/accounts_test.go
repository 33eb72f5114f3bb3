package provision

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/ocidisk/ocidisk/fstree"
)

// A Debian root's account files, as base-passwd, sudo and openssh-server
// leave them (shortened).
const (
	debPasswd  = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
	debShadow  = "root:*:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nsshd:!:19700::::::\n"
	debGroup   = "root:x:0:\nshadow:x:42:\nsudo:x:27:\nusers:x:100:\n"
	debGshadow = "root:*::\nshadow:*::\nsudo:*::\nusers:*::\n"
)

// debianRoot is a root with Debian's account files, bash, sudo and a
// skeleton.
func debianRoot(t *testing.T, extra ...ent) *fstree.Tree {
	es := []ent{
		file("etc/passwd", debPasswd), file("etc/shadow", debShadow).perm(0o640).own(0, 42),
		file("etc/group", debGroup), file("etc/gshadow", debGshadow).perm(0o640).own(0, 42),
		dir("usr/bin"), link("bin", "usr/bin"), exe("usr/bin/bash"), exe("usr/bin/sh"),
		dir("etc/sudoers.d").perm(0o750),
		dir("etc/skel"), file("etc/skel/.bashrc", "# bashrc\n"), file("etc/skel/.profile", "# profile\n"),
		file("etc/skel/.bashrc.dpkg-old", "# old\n"), dir("etc/skel/.config").perm(0o700),
		dir("home"), dir("root").perm(0o700),
	}
	return newTree(t, append(es, extra...)...)
}

func TestAddUsers(t *testing.T) {
	day := fmt.Sprint(when.Unix() / 86400)
	for _, tc := range []struct {
		name  string
		root  []ent // replaces debianRoot's files of the same path
		users []string
		// want are lines each file must end with, in order.
		passwd, shadow, group, gshadow []string
		sudoers                        []string
		err                            string
	}{
		{name: "first user", users: []string{"alice"},
			passwd:  []string{"alice:x:1000:1000:,,,:/home/alice:/bin/bash"},
			shadow:  []string{"alice:*:" + day + ":0:99999:7:::"},
			group:   []string{"sudo:x:27:alice", "users:x:100:", "alice:x:1000:"},
			gshadow: []string{"sudo:*::alice", "users:*::", "alice:!::"},
			sudoers: []string{"/etc/sudoers.d/ocidisk-alice"}},
		{name: "two users, in order", users: []string{"bob", "alice"},
			passwd: []string{"bob:x:1000:1000:,,,:/home/bob:/bin/bash", "alice:x:1001:1001:,,,:/home/alice:/bin/bash"},
			group:  []string{"sudo:x:27:bob,alice", "users:x:100:", "bob:x:1000:", "alice:x:1001:"}},
		{name: "1000 taken as a uid, 1001 as a gid: adduser takes 1002",
			root: []ent{
				file("etc/passwd", debPasswd+"pi:x:1000:100::/home/pi:/bin/sh\n"),
				file("etc/group", debGroup+"gpio:x:1001:pi\n"),
			},
			users:  []string{"alice"},
			passwd: []string{"pi:x:1000:100::/home/pi:/bin/sh", "alice:x:1002:1002:,,,:/home/alice:/bin/bash"},
			group:  []string{"gpio:x:1001:pi", "alice:x:1002:"}},
		{name: "adduser.conf's FIRST_UID and DSHELL",
			root:   []ent{file("etc/adduser.conf", "# conf\nFIRST_UID=2000\nDSHELL=/bin/zsh\n"), exe("usr/bin/zsh")},
			users:  []string{"alice"},
			passwd: []string{"alice:x:2000:2000:,,,:/home/alice:/bin/zsh"}},
		{name: "no bash: /bin/sh", root: []ent{file("usr/bin/bash", "not a program")}, users: []string{"alice"},
			passwd: []string{"alice:x:1000:1000:,,,:/home/alice:/bin/sh"}},
		{name: "an existing user only joins sudo",
			root:   []ent{file("etc/passwd", debPasswd+"pi:x:1000:1000::/home/pi:/bin/sh\n"), file("etc/group", debGroup+"pi:x:1000:\n")},
			users:  []string{"pi"},
			passwd: []string{"pi:x:1000:1000::/home/pi:/bin/sh"}, shadow: []string{"sshd:!:19700::::::"},
			group: []string{"sudo:x:27:pi", "users:x:100:", "pi:x:1000:"}, sudoers: []string{}},
		{name: "empty shadow files, no sudo group",
			root:   []ent{file("etc/group", "root:x:0:\n"), file("etc/gshadow", "").perm(0o640).own(0, 42), file("etc/shadow", "").perm(0o640).own(0, 42)},
			users:  []string{"alice"},
			passwd: []string{"alice:x:1000:1000:,,,:/home/alice:/bin/bash"},
			shadow: []string{"alice:*:" + day + ":0:99999:7:::"},
			group:  []string{"root:x:0:", "alice:x:1000:"}, gshadow: []string{"alice:!::"}},
		{name: "a group of the user's name", root: []ent{file("etc/group", debGroup+"alice:x:500:\n")}, users: []string{"alice"},
			err: "the root has a group of that name"},
		{name: "a bad name", users: []string{"Alice"}, err: "user name \"Alice\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := debianRoot(t, tc.root...)
			r, err := Apply(tr, Spec{Users: tc.users, Time: when, KeepIdentity: true})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				path string
				want []string
			}{{"etc/passwd", tc.passwd}, {"etc/shadow", tc.shadow}, {"etc/group", tc.group}, {"etc/gshadow", tc.gshadow}} {
				got := strings.Split(strings.TrimSuffix(bodyOf(t, tr, f.path), "\n"), "\n")
				if len(got) < len(f.want) || !slices.Equal(got[len(got)-len(f.want):], f.want) {
					t.Errorf("%s:\n%s\nwant it to end with:\n%s", f.path, strings.Join(got, "\n"), strings.Join(f.want, "\n"))
				}
			}
			if tc.sudoers != nil && !slices.Equal(r.Sudoers, tc.sudoers) && !(len(tc.sudoers) == 0 && len(r.Sudoers) == 0) {
				t.Errorf("sudoers files %q, want %q", r.Sudoers, tc.sudoers)
			}
			// The files keep their modes and owners.
			if m := metaOf(t, tr, "etc/shadow"); m.mode != 0o640 || m.gid != 42 {
				t.Errorf("/etc/shadow is %+v, want 0640 root:shadow", m)
			}
		})
	}
}

// TestUserHome: the home is adduser's: DIR_MODE, the skeleton's files
// (less the ignored ones) owned by the user, and the sudoers file sudo
// reads.
func TestUserHome(t *testing.T) {
	tr := debianRoot(t)
	if _, err := Apply(tr, Spec{Users: []string{"alice"}, Time: when, KeepIdentity: true}); err != nil {
		t.Fatal(err)
	}
	var got []string
	_ = tr.Walk(func(p string, n *fstree.Node) error {
		if strings.HasPrefix(p, "home/") || strings.HasPrefix(p, "etc/sudoers.d/") {
			got = append(got, fmt.Sprintf("%s %s %04o %d:%d", p, n.Type, n.Mode, n.UID, n.GID))
		}
		return nil
	})
	want := []string{
		"etc/sudoers.d/ocidisk-alice file 0440 0:0",
		"home/alice directory 0700 1000:1000",
		"home/alice/.bashrc file 0644 1000:1000",
		"home/alice/.config directory 0700 1000:1000",
		"home/alice/.profile file 0644 1000:1000",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := bodyOf(t, tr, "etc/sudoers.d/ocidisk-alice"); !strings.Contains(s, "\nalice ALL=(ALL:ALL) NOPASSWD: ALL\n") {
		t.Errorf("sudoers file:\n%s", s)
	}
	if bodyOf(t, tr, "home/alice/.bashrc") != "# bashrc\n" {
		t.Error("the skeleton's .bashrc was not copied")
	}
	// The skeleton itself is untouched.
	if m := metaOf(t, tr, "etc/skel/.bashrc"); m.uid != 0 {
		t.Errorf("/etc/skel/.bashrc now %+v", m)
	}
}

func TestPasswords(t *testing.T) {
	const y = "$y$j9T$nq1ieum/0wQMWWW6V..5q0$BsICkvHwRVIO.QyOvEwKO4Kh9RYzwJ9XrqDG9PMy/c2"
	day := fmt.Sprint(when.Unix() / 86400)
	for _, tc := range []struct {
		name   string
		root   []ent
		spec   Spec
		shadow []string
		passwd string
		err    string
		usage  bool
	}{
		{name: "root", spec: Spec{Passwords: []Password{{"root", y}}},
			shadow: []string{"root:" + y + ":" + day + ":0:99999:7:::", "daemon:*:19700:0:99999:7:::"}},
		{name: "a new user with a password has no sudoers file",
			spec:   Spec{Users: []string{"alice"}, Passwords: []Password{{"alice", y}}},
			shadow: []string{"alice:" + y + ":" + day + ":0:99999:7:::"}},
		{name: "a root without /etc/shadow gets one",
			root:   []ent{file("etc/passwd", "root:*:0:0:root:/root:/bin/sh\n"), file("etc/shadow", "x")},
			spec:   Spec{Passwords: []Password{{"root", y}}},
			passwd: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "unknown user", spec: Spec{Passwords: []Password{{"bob", y}}}, err: "user bob: the root has no such user", usage: true},
		{name: "malformed hash", spec: Spec{Passwords: []Password{{"root", "$6$abc$short"}}}, err: "not a well-formed $6$ hash", usage: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := debianRoot(t, tc.root...)
			if tc.name == "a root without /etc/shadow gets one" {
				if _, err := tr.Remove("etc/shadow"); err != nil {
					t.Fatal(err)
				}
			}
			tc.spec.Time, tc.spec.KeepIdentity = when, true
			r, err := Apply(tr, tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, ErrUsage) != tc.usage {
					t.Fatalf("error %v (usage: %v), want %q (usage: %v)", err, errors.Is(err, ErrUsage), tc.err, tc.usage)
				}
				if strings.Contains(err.Error(), "short") {
					t.Errorf("the error shows the hash: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(bodyOf(t, tr, "etc/shadow"), "\n")
			for _, w := range tc.shadow {
				if !slices.Contains(got, w) {
					t.Errorf("/etc/shadow has no line %q:\n%s", w, strings.Join(got, "\n"))
				}
			}
			if tc.passwd != "" {
				if p := bodyOf(t, tr, "etc/passwd"); p != tc.passwd {
					t.Errorf("/etc/passwd %q, want %q", p, tc.passwd)
				}
				if m := metaOf(t, tr, "etc/shadow"); m.mode != 0o640 || m.gid != 42 {
					t.Errorf("new /etc/shadow is %+v, want 0640 root:shadow", m)
				}
			}
			if len(r.Sudoers) != 0 {
				t.Errorf("sudoers files %q for users with a password", r.Sudoers)
			}
		})
	}
}

// testKey is an SSH public key line made from a fixed seed.
func testKey(t *testing.T, seed byte, comment string) string {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(append(make([]byte, 31), seed))
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment
}

func TestAuthorizedKeys(t *testing.T) {
	k1, k2 := testKey(t, 1, "one@host"), testKey(t, 2, "two@host")
	for _, tc := range []struct {
		name   string
		root   []ent
		spec   Spec
		path   string
		want   string
		owner  [2]uint32
		err    string
		isUser bool
	}{
		{name: "a new user", spec: Spec{Users: []string{"alice"}, AuthorizedKeys: []AuthorizedKeys{{"alice", "a.pub", []byte(k1 + "\n")}}},
			path: "home/alice/.ssh/authorized_keys", want: k1 + "\n", owner: [2]uint32{1000, 1000}},
		{name: "root, two files, comments and a key given twice",
			spec: Spec{AuthorizedKeys: []AuthorizedKeys{
				{"root", "a.pub", []byte("# mine\n\n" + k1 + "\n")},
				{"root", "b", []byte(k2 + "\n" + k1)}}},
			path: "root/.ssh/authorized_keys", want: k1 + "\n" + k2 + "\n"},
		{name: "keys the root has are kept",
			root: []ent{dir("root/.ssh").perm(0o700), file("root/.ssh/authorized_keys", k2).perm(0o600)},
			spec: Spec{AuthorizedKeys: []AuthorizedKeys{{"root", "a.pub", []byte(k1)}}},
			path: "root/.ssh/authorized_keys", want: k2 + "\n" + k1 + "\n"},
		{name: "not a key", spec: Spec{AuthorizedKeys: []AuthorizedKeys{{"root", "id_ed25519", []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")}}},
			err: "id_ed25519: line 1: not an SSH public key", isUser: true},
		{name: "no key", spec: Spec{AuthorizedKeys: []AuthorizedKeys{{"root", "empty.pub", []byte("\n# nothing\n")}}},
			err: "empty.pub: no SSH public key", isUser: true},
		{name: "unknown user", spec: Spec{AuthorizedKeys: []AuthorizedKeys{{"bob", "a.pub", []byte(k1)}}},
			err: "user bob: the root has no such user", isUser: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := debianRoot(t, tc.root...)
			tc.spec.Time, tc.spec.KeepIdentity = when, true
			_, err := Apply(tr, tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, ErrUsage) != tc.isUser {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := bodyOf(t, tr, tc.path); got != tc.want {
				t.Errorf("%s:\n%s\nwant\n%s", tc.path, got, tc.want)
			}
			uid, gid := tc.owner[0], tc.owner[1]
			dirPath := strings.TrimSuffix(tc.path, "/authorized_keys")
			if m := metaOf(t, tr, dirPath); m != (meta{fstree.TypeDir, 0o700, uid, gid}) {
				t.Errorf("%s is %+v, want 0700 %d:%d", dirPath, m, uid, gid)
			}
			if m := metaOf(t, tr, tc.path); m != (meta{fstree.TypeRegular, 0o600, uid, gid}) {
				t.Errorf("%s is %+v, want 0600 %d:%d", tc.path, m, uid, gid)
			}
		})
	}
}
