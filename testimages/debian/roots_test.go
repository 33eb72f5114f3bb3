package debian

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// checkBootLayers checks a bootable root's layout: five layers, and
// go-containerregistry's flattening equal to the expected tree, entry for
// entry (the boot recipes make no change that go-containerregistry gets
// wrong, see TestTreeAgainstGoContainerregistry).
func checkBootLayers(t *testing.T, d *DebianTree) {
	t.Helper()
	img := readLayout(t, d.Layout)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != numLayers {
		t.Errorf("%d layers, want %d", len(layers), numLayers)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	got, _, dangling := readRecords(t, rc)
	if len(dangling) > 0 {
		t.Errorf("go-containerregistry's flattening has dangling hardlinks: %v", dangling)
	}
	want := expectedMap(d)
	for p, w := range want {
		if g, ok := got[p]; !ok || !sameRecord(g, w) {
			t.Errorf("/%s: go-containerregistry gives %s, expected %s", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("/%s: in go-containerregistry's flattening, not expected", p)
		}
	}
}

// flatFiles reads the regular files of a tree's flat tar whose paths keep
// says to, hardlinks resolved.
func flatFiles(t *testing.T, d *DebianTree, keep func(string) bool) map[string][]byte {
	t.Helper()
	f, err := os.Open(d.FlatTar)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := fstree.Clean(h.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !keep(p) {
			continue
		}
		switch h.Typeflag {
		case tar.TypeReg:
			if out[p], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		case tar.TypeLink:
			target, _ := fstree.Clean(h.Linkname)
			if b, ok := out[target]; ok {
				out[p] = b
			}
		}
	}
}

// checkELF checks that the ELF files under the root's program directories
// are all of machine (and that there are some).
func checkELF(t *testing.T, d *DebianTree, machine elf.Machine) {
	t.Helper()
	bins := flatFiles(t, d, func(p string) bool {
		return strings.HasPrefix(p, "usr/bin/") || strings.HasPrefix(p, "usr/sbin/") || strings.HasPrefix(p, "usr/lib/systemd/")
	})
	n := 0
	for p, b := range bins {
		if !bytes.HasPrefix(b, []byte(elf.ELFMAG)) {
			continue
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Errorf("/%s: %v", p, err)
			continue
		}
		if f.Machine != machine {
			t.Errorf("/%s: ELF machine %v, want %v", p, f.Machine, machine)
		}
		n++
	}
	if n < 100 {
		t.Errorf("only %d ELF files in /usr/bin, /usr/sbin and /usr/lib/systemd", n)
	}
}

// dpkgAdmin writes the tree's /var/lib/dpkg to a directory for dpkg-query
// --admindir, the reference reader of dpkg's database.
func dpkgAdmin(t *testing.T, d *DebianTree) string {
	t.Helper()
	dir := t.TempDir()
	for p, b := range flatFiles(t, d, func(p string) bool { return under(p, dpkgDir) }) {
		file := filepath.Join(dir, strings.TrimPrefix(p, dpkgDir+"/"))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dpkgStates returns each package's status abbreviation (ii, iU, ...) as
// dpkg-query reads the tree's database.
func dpkgStates(t *testing.T, d *DebianTree) map[string]string {
	t.Helper()
	query := hosttool.Require(t, "dpkg-query", "dpkg")
	out, err := exec.Command(query, "--admindir="+dpkgAdmin(t, d), "-W", "-f", "${Package} ${db:Status-Abbrev}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, st, ok := strings.Cut(l, " "); ok {
			m[name] = strings.TrimSpace(st)
		}
	}
	return m
}

// entryCheck is one expected entry of a root.
type entryCheck struct {
	path   string
	typ    fstree.Type
	target string // symlinks
	mode   uint32 // 0: any
	body   string // regular files: "" for any content
}

func checkEntries(t *testing.T, d *DebianTree, checks []entryCheck) {
	t.Helper()
	want := expectedMap(d)
	var bodies map[string][]byte
	for _, c := range checks {
		r, ok := want[c.path]
		switch {
		case !ok && c.typ == 0:
			continue
		case !ok:
			t.Errorf("/%s missing", c.path)
			continue
		case c.typ == 0:
			t.Errorf("/%s is there (%s), want none", c.path, r)
			continue
		}
		if r.Type != c.typ || r.Target != c.target || c.mode != 0 && r.Mode != c.mode {
			t.Errorf("/%s is %s, want a %s %q mode %o", c.path, r, c.typ, c.target, c.mode)
		}
		if c.body != "" {
			if bodies == nil {
				bodies = flatFiles(t, d, func(p string) bool {
					return slices.ContainsFunc(checks, func(c entryCheck) bool { return c.path == p && c.body != "" })
				})
			}
			if got := string(bodies[c.path]); got != c.body {
				t.Errorf("/%s holds %q, want %q", c.path, got, c.body)
			}
		}
	}
}

// The systemd root is a configured arm64 Debian: systemd as init, sshd
// with host keys, fsck for ext4, networkd enabled with DHCP on wired NICs,
// every package installed, and the layers flatten to the expected tree.
func TestSystemdRoot(t *testing.T) {
	d := SystemdRoot(t)
	checkBootLayers(t, d)
	checkResplit(t, d)
	checkELF(t, d, elf.EM_AARCH64)
	const lib = "/lib/systemd/system/"
	checkEntries(t, d, []entryCheck{
		{path: "sbin", typ: fstree.TypeSymlink, target: "usr/sbin"},
		{path: "usr/sbin/init", typ: fstree.TypeSymlink, target: "/lib/systemd/systemd"},
		{path: "usr/lib/systemd/systemd", typ: fstree.TypeRegular, mode: 0o755},
		{path: "usr/sbin/sshd", typ: fstree.TypeRegular, mode: 0o755},
		{path: "etc/ssh/ssh_host_ed25519_key", typ: fstree.TypeRegular, mode: 0o600},
		{path: "etc/systemd/system/multi-user.target.wants/ssh.service", typ: fstree.TypeSymlink, target: lib + "ssh.service"},
		{path: "usr/sbin/e2fsck", typ: fstree.TypeRegular},
		{path: "usr/sbin/fsck.ext4", typ: fstree.TypeSymlink, target: "e2fsck"},
		{path: "usr/bin/sudo", typ: fstree.TypeRegular, mode: 0o4755},
		{path: "usr/bin/dbus-daemon", typ: fstree.TypeRegular},
		{path: "etc/systemd/network/50-dhcp.network", typ: fstree.TypeRegular, body: networkUnit},
		{path: "etc/systemd/system/multi-user.target.wants/systemd-networkd.service", typ: fstree.TypeSymlink, target: lib + "systemd-networkd.service"},
		{path: "etc/systemd/system/sockets.target.wants/systemd-networkd.socket", typ: fstree.TypeSymlink, target: lib + "systemd-networkd.socket"},
		{path: "etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service"}, // absent
		{path: "etc/systemd/system/sysinit.target.wants/systemd-resolved.service", typ: fstree.TypeSymlink, target: lib + "systemd-resolved.service"},
		{path: "etc/resolv.conf", typ: fstree.TypeSymlink, target: "../run/systemd/resolve/stub-resolv.conf"},
		{path: "etc/hostname", typ: fstree.TypeRegular, body: "debian\n"},
		{path: "etc/hosts", typ: fstree.TypeRegular, body: hosts},
		{path: "usr/share/doc", typ: fstree.TypeDir},
		{path: "usr/share/doc/systemd"}, // hidden by the opaque layer
		{path: "usr/share/man"},         // whited out
	})
	states := dpkgStates(t, d)
	for _, p := range append(bootPackages(), "base-files", "dpkg", "libc6", "usr-is-merged") {
		if states[p] == "" {
			t.Errorf("package %s is not installed", p)
		}
	}
	for p, st := range states {
		if st != "ii" {
			t.Errorf("package %s is %q, want ii (installed)", p, st)
		}
	}
	// The merged-/usr hook replaces the usrmerge package, and with it perl.
	for _, p := range []string{"usrmerge", "perl", "ifupdown", "isc-dhcp-client"} {
		if states[p] != "" {
			t.Errorf("package %s is installed; the root should not need it", p)
		}
	}
	t.Logf("%d entries, %d bytes, %d packages, %d changes", d.Entries, d.Bytes, len(states), len(d.Changes))
}

// The extract root holds every package unpacked and none configured, as
// dpkg-query reads its database: each with the list of its files, which
// are all there, its conffiles waiting as .dpkg-new, and no /etc/passwd
// yet (base-passwd makes it when configured).
func TestExtractRoot(t *testing.T) {
	d := ExtractRoot(t)
	checkBootLayers(t, d)
	checkResplit(t, d)
	checkELF(t, d, elf.EM_AARCH64)
	states := dpkgStates(t, d)
	for _, p := range append(bootPackages(), "base-passwd", "base-files", "dpkg", "libc6", "usr-is-merged", "apt") {
		if states[p] == "" {
			t.Errorf("package %s is missing from dpkg's database", p)
		}
	}
	for p, st := range states {
		if st != "iU" {
			t.Errorf("package %s is %q, want iU (unpacked, not configured)", p, st)
		}
	}
	checkEntries(t, d, []entryCheck{
		{path: "etc/passwd"},
		{path: "usr/share/base-passwd/passwd.master", typ: fstree.TypeRegular},
		{path: "etc/ssh/ssh_host_ed25519_key"},
		{path: "etc/adduser.conf"},
		{path: "etc/adduser.conf.dpkg-new", typ: fstree.TypeRegular},
		{path: "etc/resolv.conf"},
		{path: "etc/hostname", typ: fstree.TypeRegular, body: "debian\n"},
		{path: "var/lib/dpkg/triggers/ldconfig", typ: fstree.TypeRegular, body: "libc-bin\n"},
		{path: "usr/sbin/init", typ: fstree.TypeSymlink, target: "/lib/systemd/systemd"},
	})

	// Every path dpkg lists is in the tree, through the merged-/usr links,
	// conffiles under their .dpkg-new names.
	want := expectedMap(d)
	db, err := readDpkgTar(d.DpkgTar)
	if err != nil {
		t.Fatal(err)
	}
	if db.packages != len(states) {
		t.Errorf("dpkg.tar has %d packages, dpkg-query %d", db.packages, len(states))
	}
	lists := 0
	for f, b := range db.files {
		if !strings.HasSuffix(f, ".list") {
			continue
		}
		lists++
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			p := resolveMerged(want, strings.TrimPrefix(l, "/"))
			if l == "/." || want[p].Path != "" || slices.Contains(db.conffiles, p) && want[p+".dpkg-new"].Path != "" {
				continue
			}
			t.Errorf("%s: %s (/%s) is not in the tree", path.Base(f), l, p)
		}
	}
	if lists != len(states) {
		t.Errorf("%d .list files for %d packages", lists, len(states))
	}
	for _, c := range db.conffiles {
		if _, ok := want[c]; ok {
			t.Errorf("conffile /%s is in place before dpkg --configure", c)
		}
	}
	if len(db.conffiles) < 50 {
		t.Errorf("only %d conffiles", len(db.conffiles))
	}
	t.Logf("%d entries, %d bytes, %d packages, %d conffiles", d.Entries, d.Bytes, len(states), len(db.conffiles))
}

// resolveMerged maps a path a package lists (bin/sh) to where a merged-/usr
// tree has it (usr/bin/sh), following the root's top-level symlinks.
func resolveMerged(tree map[string]fstree.Record, p string) string {
	top, rest, ok := strings.Cut(p, "/")
	if r := tree[top]; ok && r.Type == fstree.TypeSymlink && !strings.HasPrefix(r.Target, "/") {
		return path.Join(r.Target, rest)
	}
	return p
}

// Both roots hold the same packages: the extract root is the systemd root
// before configuration.
func TestRootsSamePackages(t *testing.T) {
	a, b := dpkgStates(t, SystemdRoot(t)), dpkgStates(t, ExtractRoot(t))
	for p := range a {
		if b[p] == "" {
			t.Errorf("package %s is in the systemd root only", p)
		}
	}
	for p := range b {
		if a[p] == "" {
			t.Errorf("package %s is in the extract root only", p)
		}
	}
}
