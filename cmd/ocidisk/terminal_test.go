package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/testimages/debian"
)

// openPTY opens a pseudo-terminal pair: the master to read what a
// program writes, the slave to give it as its terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// screen renders what a terminal shows for out: carriage returns go back
// to the start of the line, ESC [ K clears to its end, newlines start a
// new line. It returns the lines a user would see scrolled past.
func screen(out []byte) []string {
	var lines []string
	var cur []rune
	col := 0
	s := []rune(string(out))
	for i := 0; i < len(s); i++ {
		switch r := s[i]; {
		case r == '\r':
			col = 0
		case r == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
		case r == 0x1b && i+2 < len(s) && s[i+1] == '[' && s[i+2] == 'K':
			cur = cur[:min(col, len(cur))]
			i += 2
		default:
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
		}
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

func TestScreen(t *testing.T) {
	got := screen([]byte("write root: 10%\rwrite root: 55% x\r\x1b[Kocidisk: log line\r\nsummary\r\n"))
	if want := []string{"ocidisk: log line", "summary"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("screen = %q, want %q", got, want)
	}
}

// TestProgressStages: stages running at once share the line, a stage
// that reaches its total is drawn complete and leaves, and log lines are
// written above the line.
func TestProgressStages(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out)
	p.update("reading root image", 0, 100)
	p.update("reading kernel", 5, 10)
	p.update("reading kernel", 10, 10)
	fmt.Fprintf(p, "ocidisk: a log line\n")
	p.update("reading root image", 100, 100)
	p.done()
	var draws []string
	for _, d := range strings.Split(out.String(), "\r") {
		draws = append(draws, strings.ReplaceAll(d, "\x1b[K", ""))
	}
	want := []string{"",
		"reading root image:   0% 0 bytes/100 bytes",
		"reading root image:   0% 0 bytes/100 bytes | reading kernel:  50% 5 bytes/10 bytes",
		"reading root image:   0% 0 bytes/100 bytes | reading kernel: 100% 10 bytes/10 bytes",
		"ocidisk: a log line\n", // the line cleared first
		// drawn again as it was, until the next update
		"reading root image:   0% 0 bytes/100 bytes | reading kernel: 100% 10 bytes/10 bytes",
		"reading root image: 100% 100 bytes/100 bytes",
		""}
	if strings.Join(draws, "\n") != strings.Join(want, "\n") {
		t.Errorf("drawn:\n%q\nwant:\n%q", draws, want)
	}
}

// TestTerminalProgressAndLogs builds an image with stdout and stderr on a
// pseudo-terminal, as a user at a terminal would: progress is drawn, log
// lines are human-readable, and no line the user sees mixes the progress
// with a log line or the summary.
func TestTerminalProgressAndLogs(t *testing.T) {
	bin := ocidiskBinary(t)
	kernel, root := debian.KernelDeb(t), debian.BusyboxRoot(t)
	m, s := openPTY(t)
	img := filepath.Join(t.TempDir(), "t.img")
	cmd := exec.Command(bin, "build", "-v", "--bmap", "-o", img, "--kernel", "deb:"+kernel, "oci:"+root)
	cmd.Stdout, cmd.Stderr = s, s
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000", "XDG_CACHE_HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var raw bytes.Buffer
	io.Copy(&raw, m) // ends with EIO when the program's end closes the slave
	if err := cmd.Wait(); err != nil {
		t.Fatalf("build on a terminal: %v\n%s", err, raw.String())
	}
	if !bytes.Contains(raw.Bytes(), []byte("%")) || !bytes.Contains(raw.Bytes(), []byte("\x1b[K")) {
		t.Errorf("no progress drawn on the terminal:\n%q", raw.String())
	}
	// The kernel package decompresses beside the root's layers, and shows.
	for _, stage := range []string{"reading root image: ", "reading kernel: ", "write root: "} {
		if !bytes.Contains(raw.Bytes(), []byte(stage)) {
			t.Errorf("no progress of %q drawn on the terminal:\n%q", stage, raw.String())
		}
	}
	lines := screen(raw.Bytes())
	var logs, summary int
	for _, l := range lines {
		isLog := strings.HasPrefix(l, "ocidisk: ")
		isSummary := strings.HasPrefix(l, img) || strings.HasPrefix(l, "  ")
		if strings.Contains(l, "%") && (isLog || isSummary) || strings.Contains(l, "time=") {
			t.Errorf("a line mixes progress and output, or is not human-readable: %q", l)
		}
		if isLog {
			logs++
		}
		if isSummary {
			summary++
		}
		if !isLog && !isSummary && l != "" {
			t.Errorf("a progress line was left on the screen: %q", l)
		}
	}
	if logs == 0 || summary == 0 {
		t.Errorf("%d log lines and %d summary lines on the screen:\n%s", logs, summary, strings.Join(lines, "\n"))
	}
}

// TestLogFormats: off a terminal, logs are logfmt or JSON as asked.
func TestLogFormats(t *testing.T) {
	for _, tc := range []struct {
		format, want string
	}{
		{"", "level=INFO msg=\"loading root image\""},
		{"logfmt", "level=INFO msg=\"loading root image\""},
		{"json", `"msg":"loading root image"`},
		{"human", "ocidisk: loading root image (source "},
	} {
		args := []string{"flatten", "-v", "-o", filepath.Join(t.TempDir(), "x.tar"), "/no/such/root.tar"}
		if tc.format != "" {
			args = append(args, "--log-format", tc.format)
		}
		_, _, stderr := runCLI(t, args...)
		if !strings.Contains(stderr, "no such file") {
			t.Errorf("--log-format %s: %q", tc.format, stderr)
		}
		if tc.format == "" {
			continue
		}
		_, _, stderr = runCLI(t, "build", "-v", "--log-format", tc.format, "-o", filepath.Join(t.TempDir(), "x.img"), "/no/such/root.tar")
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("--log-format %s: %q, want %q", tc.format, stderr, tc.want)
		}
	}
	if code, _, stderr := runCLI(t, "build", "--log-format", "xml", "x"); code != exitUsage || !strings.Contains(stderr, "--log-format") {
		t.Errorf("--log-format xml: exit %d, %q", code, stderr)
	}
}

// TestBuildJSON: --json prints the outputs, partitions and inputs.
func TestBuildJSON(t *testing.T) {
	kernel, root := debian.KernelDeb(t), debian.BusyboxRoot(t)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	img := filepath.Join(t.TempDir(), "t.img")
	code, stdout, stderr := runCLI(t, "build", "--json", "--bmap", "-o", img, "--kernel", "deb:"+kernel, "oci:"+root)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var j buildJSON
	if err := json.Unmarshal([]byte(stdout), &j); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	st, err := os.Stat(img)
	if err != nil || j.Image != img || j.Bmap != img+".bmap" || j.Size != st.Size() || len(j.Partitions) != 2 ||
		!strings.Contains(j.Cmdline, "root=PARTUUID="+j.Partitions[1].PartUUID) || len(j.Inputs) != 2 ||
		j.Inputs[0].Role != "root image" || !strings.HasPrefix(j.Inputs[1].Digest, "sha256:") {
		t.Errorf("--json: %+v (stat %v)", j, err)
	}
}
