package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// commitRun runs "ocidisk commit ARGS" in-process and returns its exit
// status, stdout and stderr.
func commitRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	var out, errw io.Writer = &stdout, &stderr
	if testing.Verbose() {
		out, errw = io.MultiWriter(&stdout, os.Stderr), io.MultiWriter(&stderr, os.Stderr)
		args = append([]string{"-v"}, args...)
	}
	code := run(t.Context(), append([]string{"commit"}, args...), nil, out, errw, false)
	return code, stdout.String(), stderr.String()
}

// commitInputs are the busybox test root and Debian's kernel; the shared
// cache is kept (the kernel package is slow to unpack), the machine's
// SOURCE_DATE_EPOCH and credentials are not.
func commitInputs(t *testing.T) (root, kernel string) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	t.Setenv("SOURCE_DATE_EPOCH", "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	return "oci:" + debian.BusyboxRoot(t), "deb:" + debian.KernelDeb(t)
}

// Malformed command lines are exit status 2, before anything boots.
func TestCommitUsage(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	out := filepath.Join(t.TempDir(), "out")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"oci:x"}, "-o DEST is required"},
		{[]string{"--run", "true", "-o", "dir:" + out, "oci:x"}, "oci:, oci-archive:, docker-archive: or a registry"},
		{[]string{"--run", "true", "-o", "docker-archive:" + out + ":Bad Name", "oci:x"}, "image name"},
		{[]string{"--copy", "relative", "-o", "oci:" + out, "oci:x"}, "HOSTPATH:GUESTPATH"},
		{[]string{"--env", "NOVALUE", "-o", "oci:" + out, "oci:x"}, "want K=V"},
		{[]string{"--net", "bridge", "-o", "oci:" + out, "oci:x"}, "want one of user, none"},
		{[]string{"--compress", "xz", "-o", "oci:" + out, "oci:x"}, "want one of gzip, zstd"},
		{[]string{"--script", "a", "--script", "b", "-o", "oci:" + out, "oci:x"}, "give one --script"},
		{[]string{"-o", "oci:" + out, "oci:x"}, "nothing to do"},
		{[]string{"--run", "true", "-o", "oci:" + out}, "one SOURCE"},
	} {
		code, _, stderr := commitRun(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("commit %q: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a usage error left an output")
	}
}

// roundTripScript changes the busybox root in every way a layer can say,
// then has the guest list its merged root.
const roundTripScript = `set -e
tool=/ocidisk-guestlist
# Deletions: a file, a directory, a symlink of the lower layers.
rm /etc/hostname
rm -r /usr/sbin
rm /bin/vi
# A directory replaced by a file, and a file by a directory.
rmdir /var
echo "now a file" > /var
rm /etc/os-release
mkdir /etc/os-release
echo inside > /etc/os-release/x
# An opaque directory: deleted with its entries and made again.
rm -rf /sbin
mkdir /sbin
ln -s ../bin/busybox /sbin/poweroff
# Hardlinks: between new names, and to a lower file changed afterwards.
echo data > /root/file
ln /root/file /root/file-link
ln /etc/group /root/group-link
echo "users:x:100:" >> /etc/group
# Symlinks, a FIFO, devices.
ln -s /root/file /root/symlink
ln -s ../nowhere /root/dangling
mknod /root/fifo p
mknod /root/tty c 4 64
mknod /root/loop0 b 7 0
# Modes and owners: setuid, setgid, sticky, another owner, a chmod of a
# lower file (copied up).
echo '#!/bin/sh' > /root/suid
chmod 4755 /root/suid
mkdir /root/shared
chmod 3775 /root/shared
chown 1000:100 /root/file /root/shared
chmod 600 /etc/passwd
# xattrs: a capability (cap_net_raw=ep) and a user attribute.
$tool setxattr /root/suid security.capability 0100000200200000000000000000000000000000
$tool setxattr /root/file user.note 68656c6c6f
$tool list / /proc /sys /dev $tool
rm $tool
`

// The round trip: a commit whose script changes the root in every way a
// layer can say gives an image whose flattened root is, entry by entry,
// the merged root the guest listed at the end of the script; and its new
// layer holds just the changes and their whiteouts.
func TestCommitRoundTrip(t *testing.T) {
	root, kernel := commitInputs(t)
	tool := testimages.GuestTool(t, "arm64")
	dir := t.TempDir()
	script := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(script, []byte(roundTripScript), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "layout")
	code, stdout, stderr := commitRun(t, "--kernel", kernel, "--copy", tool+":/ocidisk-guestlist",
		"--script", script, "--timeout", "10m", "-o", "oci:"+dest+":committed", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	guest, err := testimages.ParseGuestListing(stdout)
	if err != nil {
		t.Fatal(err)
	}

	got := flattenListing(t, "oci:"+dest+":committed")
	// The guest's mount points (and what the lower layers have under
	// them) are not part of its listing; times are its clock's.
	got = slices.DeleteFunc(got, func(r fstree.Record) bool {
		for _, m := range []string{"proc", "sys", "dev"} {
			if r.Path == m || strings.HasPrefix(r.Path, m+"/") {
				return true
			}
		}
		return false
	})
	for i := range got {
		got[i].Mtime = guest[0].Mtime
	}
	if d := testimages.DiffListings(guest, got); d != "" {
		t.Errorf("the flattened image differs from the guest's merged root:\n%s", d)
	}
	if len(guest) < 50 {
		t.Errorf("the guest listed %d entries", len(guest))
	}
	// Both listings agree; make sure they hold what the script made.
	for _, w := range []string{
		`"/root/suid" file 4755 0:0 size=10 sha256=`, "xattr:security.capability=0100000200200000000000000000000000000000",
		`"/root/shared" directory 3775 1000:100`, `"/root/file-link" file 0644 1000:100`, `link="/root/file"`,
		`"/root/tty" char device 0644 0:0 dev=4,64`, `"/root/fifo" fifo`, `"/sbin/poweroff" symlink`,
	} {
		if !slices.ContainsFunc(guest, func(r fstree.Record) bool { return strings.Contains(r.String(), w) }) {
			t.Errorf("the guest's listing has no entry with %q", w)
		}
	}

	// The new layer: the changes and their whiteouts, nothing else.
	want := []string{"", "bin", "bin/.wh.vi", "etc", "etc/.wh.hostname", "etc/group", "etc/os-release",
		"etc/os-release/.wh..wh..opq", "etc/os-release/x", "etc/passwd", "root", "root/dangling", "root/fifo",
		"root/file", "root/file-link", "root/group-link", "root/loop0", "root/shared", "root/suid", "root/symlink",
		"root/tty", "sbin", "sbin/.wh..wh..opq", "sbin/poweroff", "usr", "usr/.wh.sbin", "var"}
	var paths []string
	for _, r := range newLayer(t, dest) {
		paths = append(paths, r.Path)
	}
	if !slices.Equal(paths, want) {
		t.Errorf("the new layer holds %q,\nwant %q", paths, want)
	}
}

// newLayer lists the last layer of the image in the layout at dir.
func newLayer(t *testing.T, dir string) []fstree.Record {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[len(m.Manifests)-1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ls[len(ls)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rs, err := testimages.TarListing(rc)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// A step that fails, a guest that runs out of time and a guest kernel
// that panics each fail the commit: exit status 1, a message naming the
// step with the end of its output, and nothing at DEST (an existing
// layout's index untouched).
func TestCommitFailures(t *testing.T) {
	root, kernel := commitInputs(t)
	existing := filepath.Join(t.TempDir(), "layout")
	img, err := testimages.ImageOf()
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.WriteLayout(existing, "old", img); err != nil {
		t.Fatal(err)
	}
	index, _ := os.ReadFile(filepath.Join(existing, "index.json"))
	for _, tc := range []struct {
		name  string
		args  []string
		dest  func(dir string) string
		want  []string
		never string // output of a step that must not run
	}{
		{"exit status", []string{"--run", "echo first", "--run", "echo about to fail; exit 3", "--run", "echo never ran"},
			func(dir string) string { return "oci:" + filepath.Join(dir, "new") },
			[]string{"step 2 of 3 (echo about to fail; exit 3) failed with exit status 3", "about to fail"}, "never ran"},
		{"timeout", []string{"--timeout", "60s", "--run", "echo sleeping; sleep 3600"},
			func(string) string { return "oci:" + existing + ":old" },
			[]string{"step 1 of 1 (echo sleeping; sleep 3600): timed out after 1m0s", "sleeping"}, ""},
		{"kernel panic", []string{"--run", "echo crashing; echo c > /proc/sysrq-trigger; sleep 60", "--run", "echo never ran"},
			func(dir string) string { return "docker-archive:" + filepath.Join(dir, "image.tar") },
			[]string{"step 1 of 2 (echo crashing; echo c > /proc/sysrq-trigger; sleep 60): Kernel panic - not syncing", "crashing"}, "never ran"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := tc.dest(dir)
			code, stdout, stderr := commitRun(t, append(append([]string{"--kernel", kernel}, tc.args...), "-o", dest, root)...)
			if code != exitFailure {
				t.Errorf("exit %d, want 1", code)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "ocidisk: commit: ") {
				t.Errorf("stderr does not end with an ocidisk: commit: line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("error %q does not say %q", last, w)
				}
			}
			if tc.never != "" && strings.Contains(stdout, tc.never) {
				t.Errorf("a step after the failure ran: %q", stdout)
			}
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				t.Errorf("a failed commit left %v", ents)
			}
			if b, _ := os.ReadFile(filepath.Join(existing, "index.json")); !bytes.Equal(b, index) {
				t.Errorf("a failed commit changed the existing layout's index:\n%s", b)
			}
		})
	}
}

// The same commit twice is the same layer and the same image, here
// written into one layout under two tags (the second into a layout that
// exists).
func TestCommitTwice(t *testing.T) {
	root, kernel := commitInputs(t)
	dest := filepath.Join(t.TempDir(), "layout")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "motd"), []byte("committed twice\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, tag := range []string{"one", "two"} {
		code, stdout, stderr := commitRun(t, "--kernel", kernel, "--copy", host+":/etc/motd.d/",
			"--run", "rm /etc/hostname; mkdir -p /opt/app; echo built > /opt/app/stamp; date > /tmp/now; rm /tmp/now",
			"-o", "oci:"+dest+":"+tag, root)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		digests = append(digests, strings.Fields(stdout)[2])
	}
	if digests[0] != digests[1] || !strings.HasPrefix(digests[0], "sha256:") {
		t.Errorf("two commits: images %q", digests)
	}
	p, err := layout.FromPath(dest)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	m, _ := idx.IndexManifest()
	var tags []string
	for _, d := range m.Manifests {
		tags = append(tags, d.Annotations["org.opencontainers.image.ref.name"]+"="+d.Digest.String())
	}
	if want := []string{"one=" + digests[0], "two=" + digests[0]}; !slices.Equal(tags, want) {
		t.Errorf("index names %q, want %q", tags, want)
	}
	var paths []string
	for _, r := range newLayer(t, dest) {
		paths = append(paths, r.Path)
	}
	if want := []string{"", "etc", "etc/.wh.hostname", "etc/motd.d", "etc/motd.d/motd", "opt", "opt/app", "opt/app/stamp", "tmp"}; !slices.Equal(paths, want) {
		t.Errorf("the new layer holds %q, want %q", paths, want)
	}
}
