package tar

import (
	archive "archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// sample builds a tree with every kind of node and attribute a tar can
// carry, and a socket, which it cannot.
func sample(t *testing.T) *fstree.Tree {
	t.Helper()
	tr := fstree.New()
	tr.Root.Mtime = time.Unix(1_000_000_000, 0)
	put := func(p string, n *fstree.Node) {
		t.Helper()
		if n.Mtime.IsZero() {
			n.Mtime = time.Unix(1_700_000_000, 0)
		}
		if err := tr.Put(p, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	bin := fstree.NewDir(0o755)
	put("bin", bin)
	bb := fstree.NewFile(0o4755, 7, fstree.Bytes("busybox"))
	bb.Mtime = time.Unix(1_600_000_000, 123456789)
	put("bin/busybox", bb)
	put("bin/sh", bb) // a hardlink; "busybox" < "sh", so busybox is first
	put("bin/ls", bb)
	put("init", fstree.NewSymlink("/bin/sh"))
	put("dev", fstree.NewDir(0o755))
	null := fstree.NewDevice(fstree.TypeCharDev, 0o666, 1, 3)
	put("dev/null", null)
	vda := fstree.NewDevice(fstree.TypeBlockDev, 0o660, 254, 0)
	vda.GID = 6
	put("dev/vda", vda)
	put("dev/initctl", fstree.NewDevice(fstree.TypeFIFO, 0o600, 0, 0))
	put("dev/log", fstree.NewDevice(fstree.TypeSocket, 0o666, 0, 0))
	tmp := fstree.NewDir(0o1777)
	put("tmp", tmp)
	ping := fstree.NewFile(0o755, 4, fstree.Bytes("ping"))
	ping.Xattrs = map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00" + strings.Repeat("\x00", 12), "user.b": "2", "user.a": "1"}
	ping.UID, ping.GID = 1000, 100
	put("bin/ping", ping)
	put("empty", fstree.NewFile(0o600, 0, nil))
	zero := fstree.NewFile(0o644, 1, fstree.Bytes("z"))
	put("zero-mtime", zero)
	zero.Mtime = time.Time{}
	put(strings.Repeat("long-", 30), fstree.NewFile(0o644, 4, fstree.Bytes("long")))
	return tr
}

func write(t *testing.T, tr *fstree.Tree) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tr); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestWriteHeaders reads the output back with archive/tar: walk order,
// hardlinks to the first name, PAX xattrs and nanoseconds, empty names,
// no socket, the epoch for a zero time.
func TestWriteHeaders(t *testing.T) {
	b := write(t, sample(t))
	tr := archive.NewReader(bytes.NewReader(b))
	var names []string
	hs := map[string]*archive.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		hs[h.Name] = h
	}
	wantNames := []string{"./", "bin/", "bin/busybox", "bin/ls", "bin/ping", "bin/sh", "dev/", "dev/initctl", "dev/null", "dev/vda",
		"empty", "init", strings.Repeat("long-", 30), "tmp/", "zero-mtime"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("entries:\n%q\nwant\n%q", names, wantNames)
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"root mtime", hs["./"].ModTime.Equal(time.Unix(1_000_000_000, 0))},
		{"busybox nanoseconds", hs["bin/busybox"].ModTime.Equal(time.Unix(1_600_000_000, 123456789))},
		{"busybox setuid", hs["bin/busybox"].Mode == 0o4755},
		{"ls is a link to busybox", hs["bin/ls"].Typeflag == archive.TypeLink && hs["bin/ls"].Linkname == "bin/busybox"},
		{"sh is a link to busybox", hs["bin/sh"].Typeflag == archive.TypeLink && hs["bin/sh"].Linkname == "bin/busybox"},
		{"ping xattr", hs["bin/ping"].PAXRecords["SCHILY.xattr.user.a"] == "1"},
		{"ping owner", hs["bin/ping"].Uid == 1000 && hs["bin/ping"].Gid == 100},
		{"no user or group names", hs["bin/ping"].Uname == "" && hs["bin/ping"].Gname == ""},
		{"sticky tmp", hs["tmp/"].Mode == 0o1777},
		{"zero time is the epoch", hs["zero-mtime"].ModTime.Equal(time.Unix(0, 0))},
		{"vda", hs["dev/vda"].Typeflag == archive.TypeBlock && hs["dev/vda"].Devmajor == 254 && hs["dev/vda"].Gid == 6},
	} {
		if !tc.ok {
			t.Errorf("%s: wrong", tc.name)
		}
	}
}

// TestWriteDeterministic writes the same tree twice, with its maps
// (directory entries, xattrs) built in different orders.
func TestWriteDeterministic(t *testing.T) {
	a, b := write(t, sample(t)), write(t, sample(t))
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same tree differ")
	}
}

// TestWriteContentErrors checks that content of the wrong length is an
// error naming the path.
func TestWriteContentErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		node *fstree.Node
		want string
	}{
		{"short", fstree.NewFile(0o644, 10, fstree.Bytes("short")), "content has 5 bytes, want 10"},
		{"missing", fstree.NewFile(0o644, 3, nil), "3 bytes but no content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			tr.Put("f", tc.node, nil)
			err := Write(io.Discard, tr)
			if err == nil || !strings.Contains(err.Error(), "/f") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming /f and saying %q", err, tc.want)
			}
		})
	}
}

// TestWriteGNUTar extracts the output with GNU tar, as root, and checks
// what the kernel then holds: GNU tar and the filesystem are the judges.
func TestWriteGNUTar(t *testing.T) {
	gtar := hosttool.Require(t, "tar", "tar")
	find := hosttool.Require(t, "find", "findutils")
	if os.Getuid() != 0 {
		hosttool.Missing(t, "extracting owners and device nodes needs root")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "out.tar")
	if err := os.WriteFile(file, write(t, sample(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "x")
	os.Mkdir(root, 0o755)
	cmd := exec.Command(gtar, "--numeric-owner", "--same-permissions", "--xattrs", "--xattrs-include=*", "-C", root, "-xf", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v: %s", err, out)
	}
	out, err := exec.Command(find, root, "-mindepth", "1", "-printf", `%P %y %#m %U:%G %s %l %T@ %n\n`).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, l := range lines {
		// A directory's size is the filesystem's business.
		if f := strings.Fields(l); f[1] == "d" {
			f[4] = "-"
			lines[i] = strings.Join(f, " ")
		}
	}
	slices.Sort(lines)
	want := []string{
		"bin d 0755 0:0 - 1700000000.0000000000 2",
		"bin/busybox f 04755 0:0 7  1600000000.1234567890 3",
		"bin/ls f 04755 0:0 7  1600000000.1234567890 3",
		"bin/ping f 0755 1000:100 4  1700000000.0000000000 1",
		"bin/sh f 04755 0:0 7  1600000000.1234567890 3",
		"dev d 0755 0:0 - 1700000000.0000000000 2",
		"dev/initctl p 0600 0:0 0  1700000000.0000000000 1",
		"dev/null c 0666 0:0 0  1700000000.0000000000 1",
		"dev/vda b 0660 0:6 0  1700000000.0000000000 1",
		"empty f 0600 0:0 0  1700000000.0000000000 1",
		"init l 0777 0:0 7 /bin/sh 1700000000.0000000000 1",
		strings.Repeat("long-", 30) + " f 0644 0:0 4  1700000000.0000000000 1",
		"tmp d 01777 0:0 - 1700000000.0000000000 2",
		"zero-mtime f 0644 0:0 1  0.0000000000 1",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("GNU tar extracted:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "dev/vda"), &st); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)); got != "254,0" {
		t.Errorf("dev/vda is %s, want 254,0", got)
	}
	v := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(root, "bin/ping"), "user.b", v)
	if err != nil || string(v[:n]) != "2" {
		t.Errorf("bin/ping user.b = %q, %v; want \"2\"", v[:n], err)
	}
}
