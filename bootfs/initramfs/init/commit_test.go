package main

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseCmdlineCommit(t *testing.T) {
	c, err := parseCmdline("root=LABEL=lower rootfstype=erofs ro ocidisk.commit=LABEL=scratch ocidisk.commitcopy=/dev/vdc")
	if err != nil {
		t.Fatal(err)
	}
	if c.commit != "LABEL=scratch" || c.commitCopy != "/dev/vdc" || !c.readOnly {
		t.Errorf("commit %q copy %q ro %v", c.commit, c.commitCopy, c.readOnly)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, s := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadCommitSpec(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		check func(*commitSpec) bool
		err   string
	}{
		{name: "empty", files: map[string]string{}, check: func(s *commitSpec) bool {
			return len(s.steps) == 0 && s.workdir == "/" && s.net == nil && s.resolv == ""
		}},
		{name: "all", files: map[string]string{
			"steps/001.run": "echo one", "steps/002.script": "#!/bin/sh\n", "steps/010.run": "true",
			"env": "A=1\x00B=two words\x00", "workdir": "/srv\n", "copies": "0\x00/etc/x\x001\x00/opt/\x00",
			"net": "10.0.2.15/24 10.0.2.2\n", "resolv.conf": "nameserver 10.0.2.3\n",
		}, check: func(s *commitSpec) bool {
			kinds := []bool{}
			for _, st := range s.steps {
				kinds = append(kinds, st.script)
			}
			return slices.Equal(kinds, []bool{false, true, false}) && strings.HasSuffix(s.steps[2].file, "010.run") &&
				slices.Equal(s.env, []string{"A=1", "B=two words"}) && s.workdir == "/srv" &&
				slices.Equal(s.copies, [][2]string{{"0", "/etc/x"}, {"1", "/opt/"}}) &&
				s.net != nil && s.net.addr == netip.MustParsePrefix("10.0.2.15/24") && s.net.gateway == netip.MustParseAddr("10.0.2.2") &&
				strings.HasSuffix(s.resolv, "/resolv.conf")
		}},
		{name: "bad step", files: map[string]string{"steps/001.sh": "x"}, err: "001.sh"},
		{name: "odd copies", files: map[string]string{"copies": "0\x00"}, err: "pairs"},
		{name: "bad net", files: map[string]string{"net": "10.0.2.15/24 192.168.1.1"}, err: "gateway"},
		{name: "net without prefix", files: map[string]string{"net": "10.0.2.15 10.0.2.2"}, err: "ADDR/PREFIX"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			s, err := readCommitSpec(dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(s) {
				t.Errorf("spec %+v", s)
			}
		})
	}
}

// listDir lists a host directory as "path type mode content" lines.
func listDir(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		r, _ := filepath.Rel(root, p)
		line := r + " " + fi.Mode().String()
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyIn's rules, on host directories: the merged root has the merged-/usr
// link lib -> /usr/lib, which copies must follow inside the root.
func TestCopyIn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: copies keep their owners")
	}
	for _, tc := range []struct {
		name     string
		src      map[string]string // host files of the copy, under its own name
		dirs     []string          // more host directories in the copy
		to       string
		want     []string // new lines in the root's listing
		err      string
		existing map[string]string
	}{
		{name: "file to a path", src: map[string]string{"app.conf": "a=1"}, to: "/etc/app/app.conf",
			want: []string{"etc/app drwxr-xr-x", "etc/app/app.conf -rw-r--r-- a=1"}},
		{name: "file renamed", src: map[string]string{"app.conf": "a=1"}, to: "/etc/other.conf",
			want: []string{"etc/other.conf -rw-r--r-- a=1"}},
		{name: "file into a directory", src: map[string]string{"app.conf": "a=1"}, to: "/etc",
			want: []string{"etc/app.conf -rw-r--r-- a=1"}},
		{name: "file into a new directory", src: map[string]string{"tool": "#!"}, to: "/opt/bin/",
			want: []string{"opt drwxr-xr-x", "opt/bin drwxr-xr-x", "opt/bin/tool -rw-r--r-- #!"}},
		{name: "file through an absolute link", src: map[string]string{"libx.so": "elf"}, to: "/lib/",
			want: []string{"usr/lib/libx.so -rw-r--r-- elf"}},
		{name: "file over a file", src: map[string]string{"hostname": "new"}, to: "/etc/hostname",
			want: []string{"etc/hostname -rw-r--r-- new"}},
		{name: "directory merged", src: map[string]string{"conf/a": "1", "conf/sub/b": "2"}, to: "/etc",
			want: []string{"etc/a -rw-r--r-- 1", "etc/sub drwxr-xr-x", "etc/sub/b -rw-r--r-- 2"}},
		{name: "directory to a new path", src: map[string]string{"web/index.html": "hi"}, dirs: []string{"web/empty"}, to: "/srv/www",
			want: []string{"srv drwxr-xr-x", "srv/www drwxr-xr-x", "srv/www/empty drwxr-xr-x", "srv/www/index.html -rw-r--r-- hi"}},
		{name: "file over a directory", src: map[string]string{"x/etc": "oops"}, to: "/", err: "directory is in the way"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, map[string]string{"etc/hostname": "old", "usr/lib/libc.so": "libc"})
			if err := os.Symlink("/usr/lib", filepath.Join(root, "lib")); err != nil {
				t.Fatal(err)
			}
			before := listDir(t, root)
			from := t.TempDir()
			writeFiles(t, from, tc.src)
			for _, d := range tc.dirs {
				os.MkdirAll(filepath.Join(from, d), 0o755)
			}
			r, err := openRoot(root)
			if err != nil {
				t.Fatal(err)
			}
			defer r.close()
			err = copyIn(r, from, tc.to)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var added []string
			for _, l := range listDir(t, root) {
				if !slices.Contains(before, l) {
					added = append(added, l)
				}
			}
			if !slices.Equal(added, tc.want) {
				t.Errorf("added %q, want %q", added, tc.want)
			}
			if _, err := os.Stat("/usr/lib/libx.so"); err == nil {
				t.Fatal("a copy escaped the root through its /lib link")
			}
		})
	}
}

// The resolv.conf of a commit with network goes over the root's
// /etc/resolv.conf, over what it links to, or over a file made for the
// purpose and recorded for removal.
func TestBindResolvConf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: bind mounts")
	}
	for _, tc := range []struct {
		name    string
		setup   func(root string)
		at      string // where the bind lands, in the root
		created []string
	}{
		{"file", func(root string) { writeFiles(t, root, map[string]string{"etc/resolv.conf": "old"}) }, "etc/resolv.conf", nil},
		{"missing", func(root string) { os.MkdirAll(filepath.Join(root, "etc"), 0o755) }, "etc/resolv.conf", []string{"/etc/resolv.conf"}},
		{"link", func(root string) {
			writeFiles(t, root, map[string]string{"run/real.conf": "old"})
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			os.Symlink("/run/real.conf", filepath.Join(root, "etc/resolv.conf"))
		}, "run/real.conf", nil},
		{"dangling link", func(root string) {
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			os.MkdirAll(filepath.Join(root, "run"), 0o755)
			os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
		}, "run/systemd/resolve/stub-resolv.conf", []string{"/run/systemd", "/run/systemd/resolve", "/run/systemd/resolve/stub-resolv.conf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(root)
			src := filepath.Join(t.TempDir(), "resolv.conf")
			os.WriteFile(src, []byte("nameserver 10.0.2.3\n"), 0o644)
			r, err := openRoot(root)
			if err != nil {
				t.Fatal(err)
			}
			defer r.close()
			var m mountStack
			var created []string
			err = m.bindResolvConf(r, src, &created)
			if err == unix.EPERM || (err != nil && strings.Contains(err.Error(), "operation not permitted")) {
				t.Skip("no mounts here:", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(filepath.Join(root, tc.at))
			if err := m.unmountAll(); err != nil {
				t.Fatal(err)
			}
			if string(got) != "nameserver 10.0.2.3\n" {
				t.Errorf("%s reads %q", tc.at, got)
			}
			if !slices.Equal(created, tc.created) {
				t.Errorf("created %q, want %q", created, tc.created)
			}
		})
	}
}

// The netlink requests, sent to a kernel in a network namespace of the
// test's own, on its loopback interface.
func TestSetupInterface(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a network namespace")
	}
	done := make(chan error)
	var addrs []string
	var routes []byte
	go func() {
		runtime.LockOSThread() // the thread is left in the namespace and dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		nc, _ := parseNetConfig("10.9.8.7/24 10.9.8.1")
		err := setupInterface("lo", nc)
		if err == nil {
			var lo *net.Interface
			if lo, err = net.InterfaceByName("lo"); err == nil {
				as, _ := lo.Addrs()
				for _, a := range as {
					addrs = append(addrs, a.String())
				}
			}
			routes, _ = os.ReadFile("/proc/thread-self/net/route")
		}
		done <- err
	}()
	err := <-done
	if err == unix.EPERM {
		t.Skip("no network namespaces here")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(addrs, "10.9.8.7/24") {
		t.Errorf("lo has %q, want 10.9.8.7/24", addrs)
	}
	// Destination 0.0.0.0 through gateway 10.9.8.1, in /proc's
	// little-endian hex.
	if !bytes.Contains(routes, []byte("\t00000000\t0108090A\t")) {
		t.Errorf("no default route through 10.9.8.1:\n%s", routes)
	}
}
