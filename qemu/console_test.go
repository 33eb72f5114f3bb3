package qemu

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeGuest plays a guest's serial console over pipes: boot lines, a
// getty whose prompt a kernel message breaks into, a login, and a shell
// behind a terminal that echoes what is typed (until stty -echo), ends
// lines with CRLF and lets kernel messages break into the output. The
// shell is the host's /bin/sh, interactive, with stty and dmesg stubbed,
// so that what the session types (quoting, eval, $?, the marks) is judged
// by a real shell.
type fakeGuest struct {
	guestSpec

	out   io.Writer
	in    *bufio.Reader
	bin   string // the stubs
	ctx   context.Context
	typed []string // the lines the shell got
	err   error    // no terminal for the shell

	mu     sync.Mutex
	kernel bool // kernel messages reach the console
	due    bool // one is due after the shell's next line
	// content: the shell has printed more than line ends since the line
	// was typed.
	content bool
}

// guestSpec is what a fake guest is like.
type guestSpec struct {
	password string // "" for an account without one
	prompt   string // the shell's prompt
	// bareKernel prints the first kernel message after the login prompt
	// without a timestamp: the prompt is only found again by asking.
	bareKernel bool
	// noisy keeps the kernel's messages on the console after dmesg -n 1
	// (as for a user who may not change it): one breaks in after the
	// first line the shell prints for each command typed.
	noisy bool
}

func (g *fakeGuest) w(s string) { io.WriteString(g.out, s) }

func (g *fakeGuest) line() (string, bool) {
	s, err := g.in.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err == nil
}

// Write is the terminal's output on the console: a kernel message breaks
// in after the first line printed after each line typed. A line, not a
// line end: under load, the end of the previous line's output (the CRLF
// after a mark the session has already seen) can reach the console
// after the next line was typed.
func (g *fakeGuest) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	text := string(p)
	if g.due && g.kernel {
		from := 0
		if !g.content {
			from = len(text) - len(strings.TrimLeft(text, "\r\n"))
			g.content = from < len(text)
		}
		if i := strings.Index(text[from:], "\r\n"); g.content && i >= 0 {
			at := from + i + 2
			text = text[:at] + "[    9.000000] EXT4-fs (vda2): re-mounted\r\n" + text[at:]
			g.due = false
		}
	}
	g.w(text)
	return len(p), nil
}

func (g *fakeGuest) play() {
	g.w("U-Boot 2023.01\r\nStarting kernel ...\r\n[    0.000000] Linux version 6.1.0\r\n")
	g.w("Welcome to the test guest\r\n")
	for first := true; ; first = false {
		g.w("\r\nocidisk-test login: ")
		if g.bareKernel && first {
			g.w("random: crng init done\r\n")
		} else {
			g.w("[    5.123456] random: crng init done\r\n")
		}
		user, ok := g.line()
		if !ok {
			return
		}
		if user == "" {
			continue // an empty line: the prompt again
		}
		g.w(user + "\r\n")
		if g.password != "" {
			g.w("Password: ")
			pw, ok := g.line()
			if !ok {
				return
			}
			g.w("\r\n")
			if pw != g.password {
				g.w("Login incorrect\r\n")
				continue
			}
		}
		break
	}
	g.w("Last login: never\r\n\x1b[1;32m" + strings.TrimSpace(g.prompt) + "\x1b[0m ")
	g.w("[    7.000000] virtio_net virtio0 enp0s1: renamed from eth0\r\n")
	// The shell runs on a terminal of its own, which echoes, ends lines
	// with CRLF and hands the shell one line per read, as the guest's
	// serial port would.
	master, slave, err := openPTY()
	if err != nil {
		g.err = err
		return
	}
	defer master.Close()
	sh := exec.CommandContext(g.ctx, "/bin/sh", "-i")
	sh.Env = []string{"PATH=" + g.bin + ":/usr/bin:/bin", "PS1=" + g.prompt, "HOME=/", "TERM=vt100"}
	sh.Stdin, sh.Stdout, sh.Stderr = slave, slave, slave
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	err = sh.Start()
	slave.Close()
	if err != nil {
		g.err = err
		return
	}
	defer sh.Wait()
	copied := make(chan struct{})
	go func() {
		io.Copy(g, master) // until the shell ends
		// getty asks for a login again once the shell is gone.
		g.w("\r\nocidisk-test login: ")
		close(copied)
	}()
	g.kernel = true
	for {
		line, ok := g.line()
		if !ok {
			sh.Process.Kill()
			<-copied
			return
		}
		g.typed = append(g.typed, line)
		g.mu.Lock()
		if strings.Contains(line, "dmesg -n 1") && !g.noisy {
			g.kernel = false
		}
		// Only a line that runs a command is followed by a message: the
		// end mark's line, typed right after it, would otherwise move the
		// message after the command's output or not, as the shell and
		// this reader happen to interleave.
		if strings.Contains(line, "eval ") || !strings.Contains(line, "printf") {
			g.due, g.content = true, false
		}
		g.mu.Unlock()
		if line == "poweroff" {
			sh.Process.Kill()
			<-copied
			g.w("reboot: Power down\r\n")
			if c, ok := g.out.(io.Closer); ok {
				c.Close()
			}
			return
		}
		io.WriteString(master, line+"\n")
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// converse runs a session against g.
func converse(t *testing.T, g *fakeGuest, opts TestOptions) (*Result, *session) {
	t.Helper()
	g.bin = t.TempDir()
	for _, stub := range []string{"dmesg"} {
		if err := os.WriteFile(filepath.Join(g.bin, stub), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	outR, outW := io.Pipe()
	inR, inW := io.Pipe()
	ctx, cancel := context.WithTimeout(t.Context(), opts.Timeout)
	defer cancel()
	g.out, g.in, g.ctx = outW, bufio.NewReader(inR), ctx
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.play()
	}()
	s := newSession(opts)
	s.quiet, s.settle = 300*time.Millisecond, 20*time.Millisecond
	chunks := readChunks(outR)
	res := s.run(ctx, chunks, inW)
	cancel()
	outR.Close()
	inR.Close()
	for range chunks {
	}
	<-done
	if g.err != nil {
		t.Skipf("no pseudo-terminal for the fake guest's shell: %v", g.err)
	}
	return res, s
}

func TestConsoleSession(t *testing.T) {
	login := &Login{User: "root", Password: "pw"}
	for _, tc := range []struct {
		name   string
		guest  guestSpec
		opts   TestOptions
		passed bool
		reason string
		// outputs and statuses of the commands; "-" for one not run.
		outputs  []string
		statuses []int
	}{
		{
			name:  "commands pass",
			guest: guestSpec{password: "pw", prompt: "~ # "},
			opts: TestOptions{
				Expect: []*regexp.Regexp{regexp.MustCompile(`Linux version`)}, Login: login,
				Run: []string{"echo hello", `printf 'no newline'`, `echo "it's quoted" && test -d /`, "cat", "true", "X=1; echo $((X+1))"},
			},
			passed:   true,
			outputs:  []string{"hello\n", "no newline", "it's quoted\n", "", "", "2\n"},
			statuses: []int{0, 0, 0, 0, 0, 0},
		},
		{
			name:  "a failing command stops the test",
			guest: guestSpec{password: "pw", prompt: "root@host:~# ", noisy: true},
			opts:  TestOptions{Login: login, Run: []string{"echo one", "echo out; echo err >&2; (exit 3)", "echo never"}},
			// The kernel's messages are part of what the console shows.
			reason:   `command 2 "echo out; echo err >&2; (exit 3)" exited with status 3`,
			outputs:  []string{"[    9.000000] EXT4-fs (vda2): re-mounted\none\n", "[    9.000000] EXT4-fs (vda2): re-mounted\nout\nerr\n", "-"},
			statuses: []int{0, 3, -1},
		},
		{
			name:     "a syntax error is a status",
			guest:    guestSpec{prompt: "$ "},
			opts:     TestOptions{Login: &Login{User: "pi"}, Run: []string{"if then"}},
			reason:   `command 1 "if then" exited with status 2`,
			statuses: []int{2},
		},
		{
			name:     "an exit ends the login shell",
			guest:    guestSpec{prompt: "# "},
			opts:     TestOptions{Login: &Login{User: "root"}, Run: []string{"echo bye; exit 0", "true"}},
			reason:   `command 1 "echo bye; exit 0" ended the login shell (an exit in a command ends the shell the commands run in: put it in a subshell, ( ... ))`,
			statuses: []int{-1, -1},
			outputs:  []string{"bye\n\nocidisk-test login: ", "-"},
		},
		{
			name:   "wrong password",
			guest:  guestSpec{password: "secret", prompt: "# "},
			opts:   TestOptions{Login: login, Run: []string{"true"}},
			reason: "the login as root failed: Login incorrect",
		},
		{
			name:   "password asked, none given",
			guest:  guestSpec{password: "secret", prompt: "# "},
			opts:   TestOptions{Login: &Login{User: "root"}},
			reason: "the guest asks for root's password and none was given",
		},
		{
			name:   "hidden login prompt is asked for again",
			guest:  guestSpec{bareKernel: true, prompt: "$ "},
			opts:   TestOptions{Login: &Login{User: "pi"}, Run: []string{"echo hi"}},
			passed: true, outputs: []string{"hi\n"}, statuses: []int{0},
		},
		{
			name:     "command timeout",
			guest:    guestSpec{prompt: "# "},
			opts:     TestOptions{Login: &Login{User: "root"}, Run: []string{"echo started; sleep 30"}, CommandTimeout: time.Second},
			reason:   `command 1 "echo started; sleep 30" did not finish within 1s`,
			outputs:  []string{"started\n"},
			statuses: []int{-1},
		},
		{
			name:     "power off after the commands",
			guest:    guestSpec{prompt: "# "},
			opts:     TestOptions{Login: &Login{User: "root"}, Run: []string{"true"}, WaitExit: true},
			passed:   true,
			statuses: []int{0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Timeout == 0 {
				tc.opts.Timeout = 20 * time.Second
			}
			g := &fakeGuest{guestSpec: tc.guest}
			res, s := converse(t, g, tc.opts)
			if res.Passed != tc.passed || res.Reason != tc.reason {
				t.Fatalf("passed %v, reason %q; want %v, %q\nconsole:\n%s", res.Passed, res.Reason, tc.passed, tc.reason, s.m.log.String())
			}
			if len(res.Commands) != len(tc.opts.Run) {
				t.Fatalf("%d command results for %d commands", len(res.Commands), len(tc.opts.Run))
			}
			for i, c := range res.Commands {
				if i < len(tc.statuses) && c.Status != tc.statuses[i] {
					t.Errorf("command %d %q: status %d, want %d", i+1, c.Command, c.Status, tc.statuses[i])
				}
				if i >= len(tc.outputs) {
					continue
				}
				if tc.outputs[i] == "-" {
					if c.Ran {
						t.Errorf("command %d %q ran after a failure", i+1, c.Command)
					}
				} else if c.Output != tc.outputs[i] {
					t.Errorf("command %d %q: output %q, want %q", i+1, c.Command, c.Output, tc.outputs[i])
				}
			}
			if tc.passed && tc.opts.Login != nil && (!res.LoggedIn || res.BootDuration > res.Duration) {
				t.Errorf("logged in %v, boot %s of %s", res.LoggedIn, res.BootDuration, res.Duration)
			}
			// What was typed reached the shell as lines it could run: the
			// setup line at least once, then one line per command run.
			ran := 0
			for _, c := range res.Commands {
				if c.Ran {
					ran++
				}
			}
			var setups, cmds int
			for _, l := range g.typed {
				switch {
				case strings.Contains(l, "stty -echo"):
					setups++
				case strings.Contains(l, " E") && strings.Contains(l, "$?"):
					cmds++
				}
			}
			if res.LoggedIn && (setups == 0 || cmds != ran) {
				t.Errorf("typed %d setup lines and %d command lines for %d commands run: %q", setups, cmds, ran, g.typed)
			}
		})
	}
}

func TestLastLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Debian GNU/Linux 12 host ttyAMA0\n\nhost login: ", "host login:"},
		{"\nhost login: [   12.345678] random: crng init done\n", "host login:"},
		{"motd\n\x1b[01;32mroot@host\x1b[00m:\x1b[01;34m~\x1b[00m# ", "root@host:~#"},
		{"\x1b[?2004hroot@host:~# ", "root@host:~#"},
		{"output\n", ""},
		{"~ $ \t", "~ $"},
	} {
		if got := lastLine([]byte(tc.in)); got != tc.want {
			t.Errorf("lastLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseLogin(t *testing.T) {
	for _, tc := range []struct {
		in       string
		user, pw string
		err      string
	}{
		{"root", "root", "", ""},
		{"root:pw", "root", "pw", ""},
		{"pi:a:b c", "pi", "a:b c", ""},
		{":pw", "", "", "want a user name"},
		{"ro ot:pw", "", "", "without blanks"},
		{"root:p\x01w", "", "", "control characters"},
	} {
		l, err := ParseLogin(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseLogin(%q): %v, want an error saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || l.User != tc.user || l.Password != tc.pw {
			t.Errorf("ParseLogin(%q) = %+v, %v", tc.in, l, err)
		}
	}
}

func TestTestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts  TestOptions
		field string
	}{
		{TestOptions{Run: []string{"true"}}, "Run"},
		{TestOptions{Login: &Login{User: "root"}, Run: []string{" "}}, "Run"},
		{TestOptions{Login: &Login{User: "root"}, Run: []string{"echo \x01x"}}, "Run"},
		{TestOptions{Login: &Login{User: ""}}, "Login"},
		{TestOptions{Login: &Login{User: "root"}, Run: []string{"echo a\necho b"}}, ""},
	} {
		err := tc.opts.Validate()
		field, _ := IsConfigError(err)
		if field != tc.field || (tc.field == "") != (err == nil) {
			t.Errorf("%+v: %v (field %q), want field %q", tc.opts, err, field, tc.field)
		}
	}
}
