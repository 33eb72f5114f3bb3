package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/testimages"
)

// Issue 13.3: outputs go only to regular files or new paths, never to an
// input, and -o - streams where the format allows. Each refusal comes
// before any work (the source here has no kernel, which a build would
// find only later), leaves the path as it was, and names the path and
// what it is.
func TestOutputsAreOnlyRegularFilesAndNotInputs(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	in := writeTar(t, []testimages.Entry{testimages.File("etc/motd", "hi\n", 0o644)})
	inBytes, _ := os.ReadFile(in)
	link := filepath.Join(dir, "stdout")
	os.Symlink("/proc/self/fd/1", link)
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	inLink := filepath.Join(dir, "in-link.tar")
	os.Symlink(in, inLink)
	type refusal struct {
		args []string
		code int
		want string
	}
	cases := []refusal{
		{[]string{"flatten", "-o", link, "tar:" + in}, exitFailure, link + " is a symlink (to /proc/self/fd/1)"},
		{[]string{"build", "-o", link, "tar:" + in}, exitFailure, link + " is a symlink"},
		{[]string{"flatten", "-o", fifo, "tar:" + in}, exitFailure, fifo + " is a FIFO"},
		{[]string{"build", "--slot-image", fifo, "tar:" + in}, exitFailure, fifo + " is a FIFO"},
		{[]string{"flatten", "-o", dir, "tar:" + in}, exitFailure, dir + " is a directory"},
		{[]string{"flatten", "-o", in, "tar:" + in}, exitFailure, "output " + in + " is the input " + in},
		{[]string{"flatten", "-o", in, "tar:" + inLink}, exitFailure, "is the input " + inLink},
		{[]string{"build", "-o", in, "tar:" + in}, exitFailure, "output " + in + " is the input"},
		{[]string{"build", "--slot-image", in, "tar:" + in}, exitFailure, "is the input"},
		{[]string{"build", "-o", filepath.Join(dir, "a.img"), "--slot-image", filepath.Join(dir, "a.img"), "tar:" + in}, exitFailure, "is also the disk image's path"},
		{[]string{"flatten", "-o", filepath.Join(dir, "no", "such", "x.tar"), "tar:" + filepath.Join(dir, "missing.tar")}, exitFailure,
			"directory " + filepath.Join(dir, "no", "such") + " does not exist"},
		{[]string{"build", "-o", filepath.Join(dir, "nodir", "x.img"), "tar:" + in}, exitFailure, "directory " + filepath.Join(dir, "nodir") + " does not exist"},
		{[]string{"flatten", "--format", "ext4", "-o", "-", "tar:" + in}, exitUsage, "-o -: --format ext4 needs a file"},
		{[]string{"build", "-o", "-", "tar:" + in}, exitUsage, "written with seeks, not streamed"},
	}
	if os.Getuid() == 0 {
		// As root, a device node was replaced by a regular file. This
		// one is a null device of the test's own.
		null := filepath.Join(dir, "null")
		if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		cases = append(cases,
			refusal{[]string{"flatten", "-o", null, "tar:" + in}, exitFailure, null + " is a character device"},
			refusal{[]string{"build", "-o", null, "tar:" + in}, exitFailure, null + " is a character device"})
	}
	for _, tc := range cases {
		before := listing(t, dir)
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("ocidisk %s: exit %d, %q; want exit %d and one line saying %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
		if after := listing(t, dir); after != before {
			t.Errorf("ocidisk %s changed %s:\n%s\nwas:\n%s", strings.Join(tc.args, " "), dir, after, before)
		}
		if b, _ := os.ReadFile(in); !bytes.Equal(b, inBytes) {
			t.Fatalf("ocidisk %s changed its input", strings.Join(tc.args, " "))
		}
	}
}

// listing describes dir's entries by name, type and size.
func listing(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %d\n", fi.Mode(), e.Name(), fi.Size())
	}
	return b.String()
}

// -o - writes the tar to stdout, not to a file named "-".
func TestFlattenToStdout(t *testing.T) {
	isolate(t)
	in := writeTar(t, []testimages.Entry{testimages.File("etc/motd", "hi\n", 0o644)})
	t.Chdir(t.TempDir())
	code, stdout, stderr := runCLI(t, "flatten", "-o", "-", "tar:"+in)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := testimages.TarListing(strings.NewReader(stdout))
	if err != nil || len(got) != 3 || got[2].Path != "etc/motd" || got[2].Size != 3 {
		t.Errorf("stdout is not the flattened tar (%v): %v", err, got)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Error("flatten -o - wrote a file named -")
	}
}
