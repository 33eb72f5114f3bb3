package qemu

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// TestOptions say what a boot test waits for and does.
type TestOptions struct {
	// Expect must all appear on the serial console, in order.
	Expect []*regexp.Regexp
	// Login, when set, logs in on the serial console once every
	// expectation has appeared: the test passes when a shell answers.
	Login *Login
	// Run are shell commands run in order in the login's shell, each
	// with its input from /dev/null; the test fails on the first that
	// exits with a status other than 0. They need Login.
	Run []string
	// Timeout bounds the whole test; 0 means 60 s.
	Timeout time.Duration
	// CommandTimeout bounds each command of Run, within Timeout; 0 means
	// Timeout alone.
	CommandTimeout time.Duration
	// Log, when set, receives the serial console as it arrives.
	Log io.Writer
	// TailLines is how much of the console a failure shows; 0 means 30.
	TailLines int
	// WaitExit, once every expectation has appeared (and the commands
	// have run), waits for QEMU to exit on its own (the guest powers off)
	// within the timeout instead of stopping it: a writable image then
	// holds everything the guest wrote, its filesystems unmounted. A
	// test that logged in types PowerOff to have the guest power off.
	WaitExit bool
	// PowerOff is the command that powers the guest off; "" means
	// poweroff.
	PowerOff string
}

// Validate checks the options. Errors are *ConfigError.
func (o TestOptions) Validate() error {
	if len(o.Run) > 0 && o.Login == nil {
		return fieldErr("Run", "running commands needs a login")
	}
	if o.Login != nil {
		if err := o.Login.check(); err != nil {
			return &ConfigError{Field: "Login", Err: err}
		}
	}
	for _, c := range o.Run {
		if strings.TrimSpace(c) == "" {
			return fieldErr("Run", "empty command")
		}
		if hasControl(c, true) {
			return fieldErr("Run", "command %q: control characters cannot be typed at the console", c)
		}
	}
	if hasControl(o.PowerOff, false) {
		return fieldErr("PowerOff", "command %q: control characters cannot be typed at the console", o.PowerOff)
	}
	if o.Timeout < 0 || o.CommandTimeout < 0 {
		return fieldErr("Timeout", "timeouts must be positive")
	}
	return nil
}

// Result is the outcome of a boot test.
type Result struct {
	Passed bool
	Start  time.Time
	// Duration is the whole test's; BootDuration the time until every
	// expectation had appeared and, with a login, a shell answered.
	Duration, BootDuration time.Duration
	// Matched counts the expectations that appeared.
	Matched int
	// LoggedIn says the login reached a shell.
	LoggedIn bool
	// Commands are the results of TestOptions.Run, one for each command
	// in order (Ran false for those not reached).
	Commands []CommandResult
	// Reason says why the test failed.
	Reason string
	// Tail is the end of the console log, Console all of it.
	Tail, Console string
	// Loaded says what a direct boot took from the image (VM.Loaded).
	Loaded string

	exited bool // QEMU exited early: its standard error says why
}

// Failed returns the command that failed, or nil when the failure (if
// any) is not a command's.
func (r *Result) Failed() *CommandResult {
	for i := range r.Commands {
		if r.Commands[i].Ran && !r.Commands[i].Passed() {
			return &r.Commands[i]
		}
	}
	return nil
}

// TestError is a failed boot test.
type TestError struct {
	Image string
	// Reason says what failed and what the test was waiting for.
	Reason string
	// Tail is the end of the serial console.
	Tail string
	// Command is the command that failed, or nil.
	Command *CommandResult
}

// Summary is the error on one line.
func (e *TestError) Summary() string {
	return fmt.Sprintf("boot test of %s failed: %s", e.Image, e.Reason)
}

// Error is the summary, then the failed command's output or the
// console's tail.
func (e *TestError) Error() string {
	if e.Command != nil {
		return e.Summary() + "\n--- output of the command ---\n" + e.Command.Output
	}
	return e.Summary() + "\n--- last lines of the serial console ---\n" + e.Tail
}

// Test boots the image and watches the serial console: it waits for the
// expectations, then logs in and runs the commands if asked. It returns a
// *TestError (and the Result saying why) when an expectation has not
// appeared by the timeout, the kernel panics, ocidisk's init reports a
// failure, the login fails, a command fails or QEMU exits first. QEMU is
// stopped and its temporary files removed in every case.
func Test(ctx context.Context, cfg Config, opts TestOptions) (*Result, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	tailN := opts.TailLines
	if tailN <= 0 {
		tailN = 30
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	v, err := Prepare(cfg)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	cmd := exec.Command(v.Binary, v.Args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	logger(cfg).Debug("qemu", "cmd", v.Binary+" "+strings.Join(v.Args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(v.Binary), err)
	}
	chunks := readChunks(out)
	s := newSession(opts)
	res := s.run(ctx, chunks, in)
	_ = cmd.Process.Kill()
	for range chunks { // let the reader finish so Wait can close the pipe
	}
	_ = cmd.Wait()

	res.Loaded, res.Matched = v.Loaded, s.m.next
	res.Tail, res.Console = s.m.tail(tailN), s.m.log.String()
	if res.Passed {
		return res, nil
	}
	reason := res.Reason
	if msg := strings.TrimSpace(stderr.String()); res.exited && msg != "" {
		reason += ": " + msg
		res.Reason = reason
	}
	switch {
	case s.m.next < len(opts.Expect):
		reason += fmt.Sprintf(" (waiting for %q, %d of %d expectations seen)", opts.Expect[s.m.next], s.m.next, len(opts.Expect))
	case s.waiting() != "":
		reason += " (waiting for " + s.waiting() + ")"
	}
	return res, &TestError{Image: cfg.Image, Reason: reason, Tail: res.Tail, Command: res.Failed()}
}

// readChunks reads r into a channel of chunks, closed at the end of r.
func readChunks(r io.Reader) <-chan []byte {
	chunks := make(chan []byte)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				chunks <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				return
			}
		}
	}()
	return chunks
}
