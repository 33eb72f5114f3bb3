package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &o, &e, false)
	return code, o.String(), e.String()
}

func TestBoardsCommand(t *testing.T) {
	code, out, errOut := runCLI(t, "boards")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	names := boards.Names()
	if len(lines) != len(names) {
		t.Fatalf("%d lines for %d boards:\n%s", len(lines), len(names), out)
	}
	for i, n := range names {
		b, _ := boards.Load(n)
		if f := strings.Fields(lines[i]); len(f) < 2 || f[0] != n || !strings.Contains(lines[i], b.Description) {
			t.Errorf("line %q, want %s and its description", lines[i], n)
		}
	}
	if code, _, _ := runCLI(t, "boards", "extra"); code != exitUsage {
		t.Errorf("boards extra: exit %d, want %d", code, exitUsage)
	}
}

func TestTestCommandUsage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "x.img")
	os.WriteFile(img, make([]byte, 1<<20), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"test", img}, exitUsage, "--expect"},
		{[]string{"test", "--expect", "x"}, exitUsage, "one IMAGE"},
		{[]string{"test", "--expect", "(", img}, exitUsage, "--expect"},
		{[]string{"test", "--expect", "x", "--timeout", "0s", img}, exitUsage, "--timeout"},
		{[]string{"test", "--expect", "x", "--board", "no-such-board", img}, exitUsage, "unknown board"},
		{[]string{"test", "--expect", "x", "--board", "./missing.yaml", img}, exitFailure, "missing.yaml"},
		{[]string{"run", "--board", "no-such-board", img}, exitUsage, "unknown board"},
		{[]string{"run"}, exitUsage, "one IMAGE"},
		{[]string{"test", "--run", "true", img}, exitUsage, "--run needs --login"},
		{[]string{"test", "--expect", "x", "--run", "true", img}, exitUsage, "--run needs --login"},
		{[]string{"test", "--login", ":pw", img}, exitUsage, "--login"},
		{[]string{"test", "--login", "root", "--run", "", img}, exitUsage, "--run: empty command"},
		{[]string{"test", "--login", "root", "--publish", "8080:80", img}, exitUsage, "--publish: publishing 127.0.0.1:8080:80 needs the user network"},
		{[]string{"test", "--login", "root", "--net", "tap", img}, exitUsage, `--net "tap": want`},
		{[]string{"run", "--net", "none", "--publish", "2222:22", img}, exitUsage, "--publish"},
		{[]string{"run", "--publish", "22", img}, exitUsage, `--publish "22"`},
		{[]string{"run", "--publish", "localhost:2222:22", img}, exitUsage, "not an IPv4 address"},
		{[]string{"run", "--publish", "2222:22", "--publish", "2222:23", img}, exitUsage, "published twice"},
		{[]string{"run", "--mem", "0", img}, exitUsage, "--mem"},
		{[]string{"run", "--mem", "1000KiB", img}, exitUsage, "--mem"},
		{[]string{"run", "--cpus", "0", img}, exitUsage, "--cpus"},
		{[]string{"run", "--cpus", "two", img}, exitUsage, "--cpus"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.msg)
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") > 0 && tc.code == exitFailure {
			t.Errorf("%q: error is not one line: %q", tc.args, errOut)
		}
	}
}

// TestTestCommandFails boots an image whose boot partition holds no
// filesystem: U-Boot finds nothing to boot, so the test must fail at its
// timeout, exit 1 and write a JUnit report saying so.
func TestTestCommandFails(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	b, _ := boards.Load(defaultBoard)
	if _, err := os.Stat(b.QEMU.Firmware.BIOS); err != nil {
		hosttool.Missing(t, b.QEMU.Firmware.BIOS+": apt-get install "+b.QEMU.Firmware.Package)
	}
	dir := t.TempDir()
	// Temporary files (ours and QEMU's snapshot overlay) go to TMPDIR,
	// which must be empty again afterwards.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	img := filepath.Join(dir, "empty.img")
	l := &diskimage.Layout{Table: diskimage.MBR, Seed: []byte("empty"), Partitions: []diskimage.Partition{
		{Name: "boot", Kind: diskimage.KindFAT, Size: 4 << 20, Bootable: true},
	}}
	if _, err := diskimage.Write(t.Context(), img, l, diskimage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(img)
	junit := filepath.Join(dir, "report.xml")
	code, _, errOut := runCLI(t, "test", "--expect", "U-Boot", "--expect", "NEVER-PRINTED", "--timeout", "4s", "--junit", junit, img)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d: %s", code, exitFailure, errOut)
	}
	// The console's tail as it was, many lines, then the one-line error.
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "timed out after 4s") || !strings.Contains(last, "NEVER-PRINTED") || !strings.HasSuffix(last, "see the console tail above") {
		t.Errorf("stderr %q does not end with what timed out", errOut)
	}
	if lines[0] != "--- last lines of the serial console ---" || len(lines) < 5 || !strings.Contains(errOut, "\nU-Boot ") {
		t.Errorf("stderr does not show the console's tail line by line:\n%s", errOut)
	}
	doc, raw := readJUnit(t, junit)
	c := doc.Suites[0].Cases[0]
	if doc.Suites[0].Failures != 1 || c.Failure == nil || !strings.Contains(c.Failure.Message, "timed out") || !strings.Contains(c.Out, "U-Boot") {
		t.Errorf("JUnit report: %s", raw)
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Error("the image was modified")
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// junitReport is what the tests read of a JUnit report.
type junitReport struct {
	Suites []struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Out string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// readJUnit reads a JUnit report that must have one suite.
func readJUnit(t *testing.T, path string) (*junitReport, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitReport
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("JUnit report with %d suites:\n%s", len(doc.Suites), raw)
	}
	return &doc, raw
}
