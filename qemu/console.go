package qemu

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A test that logs in talks to the guest's serial console as a person at
// a terminal would: it waits for the login prompt, types the user name and
// the password when asked, and once a shell prompt shows it types one
// setup line and then each command. Everything the guest prints arrives
// interleaved with kernel messages and terminal noise (echo, prompts,
// escape sequences, CRLF), so nothing is parsed from the free text but the
// prompts, and those only on the console's last, unfinished line once the
// kernel's lines are taken out of it. A command's output and status are
// read between two mark lines the shell prints around it; the mark holds
// a random token of the run, and the typed line spells it differently
// from the printed one (printf's arguments are split where the output
// has a dash), so that the echo of what was typed never passes for the
// shell's output.

// Login is a login on the serial console.
type Login struct {
	User string
	// Password answers the password prompt; "" when the account has none.
	Password string
}

// ParseLogin reads USER[:PASSWORD]; the password may hold colons.
func ParseLogin(s string) (*Login, error) {
	user, pw, _ := strings.Cut(s, ":")
	l := &Login{User: user, Password: pw}
	if err := l.check(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Login) check() error {
	if l.User == "" || strings.ContainsAny(l.User, " \t:") {
		return fmt.Errorf("login user %q: want a user name, without blanks or colons", l.User)
	}
	if hasControl(l.User, false) || hasControl(l.Password, false) {
		return fmt.Errorf("login %q: control characters cannot be typed at the console", l.User)
	}
	return nil
}

// hasControl reports whether s holds control characters other than tab
// (and newline, when newline is true). Typed at QEMU's console they would
// edit the line, end it, or (Ctrl-A) talk to QEMU itself.
func hasControl(s string, newline bool) bool {
	for _, r := range s {
		if r == '\t' || (newline && r == '\n') {
			continue
		}
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// CommandResult is what one command of TestOptions.Run did.
type CommandResult struct {
	Command string
	// Ran is false for a command not reached: the boot, the login or an
	// earlier command failed first.
	Ran bool
	// Status is the command's exit status; -1 when it did not finish.
	Status int
	// Output is what the command printed on the console (its standard
	// output and error), carriage returns dropped.
	Output   string
	Duration time.Duration
	// Failure says why the command failed; "" when it passed or did not
	// run.
	Failure string
}

// Passed reports whether the command ran and exited with status 0.
func (c *CommandResult) Passed() bool { return c.Ran && c.Status == 0 && c.Failure == "" }

// phase is what a session waits for.
type phase int

const (
	waitExpect   phase = iota // the expectations
	waitLogin                 // the login prompt
	waitPassword              // after the user name: a password prompt, or a shell
	waitShell                 // after the password: a shell prompt
	waitReady                 // after the setup line: its mark
	runCommand                // the running command's end mark
	waitExit                  // QEMU to exit (the guest powers off)
	finished
)

// session follows one boot's serial console and answers it.
type session struct {
	opts TestOptions
	// mark is the run's random token; quiet is how long the console may
	// stay silent before a prompt is asked for again; settle is how long
	// a login prompt is given before the answer is typed.
	mark          string
	quiet, settle time.Duration

	m      *matcher
	inputs chan<- string
	phase  phase
	// failedIn is the phase a failure ended.
	failedIn phase
	from     int // where the phase's search starts in m.log
	nudges   int // quiet periods in the phase
	cmd      int // the running command
	cmdAt    time.Time
	// cmdTimer ends the running command at CommandTimeout.
	cmdTimer *time.Timer
	// answer is typed when answerTimer fires.
	answer      string
	answerTimer *time.Timer
	start       time.Time
	res         *Result
	exited      bool // QEMU exited
}

// Defaults of a session.
const (
	defaultQuiet = 5 * time.Second
	// Programs print a login prompt before they are ready for the
	// answer: busybox's login turns echo off after printing "Password: "
	// (an answer typed at once is echoed on the console, the password
	// with it), PAM's conversation flushes the input after printing its
	// prompt (an answer typed at once is lost).
	defaultSettle   = 500 * time.Millisecond
	defaultPowerOff = "poweroff"
)

func newSession(opts TestOptions) *session {
	s := &session{
		opts:   opts,
		mark:   "ocidisk" + rand.Text()[:12],
		quiet:  defaultQuiet,
		settle: defaultSettle,
		m:      &matcher{expect: opts.Expect},
		res:    &Result{},
	}
	for _, c := range opts.Run {
		s.res.Commands = append(s.res.Commands, CommandResult{Command: c, Status: -1})
	}
	return s
}

// run follows the console, chunks of QEMU's output (closed when QEMU
// exits), typing into in, until the test has passed or failed. The
// caller stops QEMU afterwards.
func (s *session) run(ctx context.Context, chunks <-chan []byte, in io.Writer) *Result {
	inputs := make(chan string, 64)
	s.inputs = inputs
	defer close(inputs)
	go func() {
		// Typing never blocks the session: a guest that stops reading
		// its console must not stop the session from reading it.
		for t := range inputs {
			if _, err := io.WriteString(in, t); err != nil {
				for range inputs {
				}
				return
			}
		}
	}()
	s.start = time.Now()
	s.res.Start = s.start
	quiet := time.NewTimer(s.quiet)
	defer quiet.Stop()
	defer s.stopCmdTimer()
	defer func() {
		if s.answerTimer != nil {
			s.answerTimer.Stop()
		}
	}()
	s.advance(false)
	for s.phase != finished {
		var cmdDeadline, answerDue <-chan time.Time
		if s.cmdTimer != nil {
			cmdDeadline = s.cmdTimer.C
		}
		if s.answerTimer != nil {
			answerDue = s.answerTimer.C
		}
		select {
		case <-answerDue:
			s.answerTimer = nil
			s.typeText(s.answer)
		case p, ok := <-chunks:
			if !ok {
				s.qemuExited()
				continue
			}
			if s.opts.Log != nil {
				s.opts.Log.Write(p)
			}
			done, failure := s.m.feed(p)
			if failure != "" {
				s.fail(failure)
				continue
			}
			s.advance(done)
			quiet.Reset(s.quiet)
		case <-quiet.C:
			s.nudge()
			quiet.Reset(s.quiet)
		case <-cmdDeadline:
			c := &s.res.Commands[s.cmd]
			c.Failure = fmt.Sprintf("did not finish within %s", s.opts.CommandTimeout)
			c.Output, _ = s.commandOutput()
			s.endCommand(c, -1)
		case <-ctx.Done():
			reason := fmt.Sprintf("timed out after %s", s.opts.Timeout)
			if s.phase == waitExit {
				reason += " waiting for QEMU to exit (the guest did not power off)"
			}
			if ctx.Err() == context.Canceled {
				reason = "cancelled"
			}
			if s.phase == runCommand {
				c := &s.res.Commands[s.cmd]
				c.Failure = "did not finish: " + reason
				c.Output, _ = s.commandOutput()
				c.Duration = time.Since(s.cmdAt)
			}
			s.fail(reason)
		}
	}
	return s.res
}

// typeText sends text to the console.
func (s *session) typeText(t string) { s.inputs <- t }

// answerPrompt types text once the program that printed a prompt is
// ready for it.
func (s *session) answerPrompt(text string) {
	s.answer = text
	s.answerTimer = time.NewTimer(s.settle)
}

// enter starts a phase whose search starts at the end of the console.
func (s *session) enter(p phase) {
	s.phase, s.from, s.nudges = p, s.m.log.Len(), 0
}

func (s *session) fail(reason string) {
	s.failedIn = s.phase
	s.res.Reason = reason
	s.res.Passed = false
	s.end()
}

func (s *session) pass() {
	s.res.Passed = true
	s.end()
}

func (s *session) end() {
	s.stopCmdTimer()
	s.res.Duration = time.Since(s.start)
	if s.res.BootDuration == 0 {
		s.res.BootDuration = s.res.Duration
	}
	s.phase = finished
}

// advance moves through the phases as far as the console allows; done
// says every expectation has appeared.
func (s *session) advance(done bool) {
	for {
		before := s.phase
		s.step(done)
		if s.phase == before || s.phase == finished {
			return
		}
	}
}

// step checks the console for what the phase waits for.
func (s *session) step(done bool) {
	log := s.m.log.Bytes()
	switch s.phase {
	case waitExpect:
		if done {
			s.res.Matched = s.m.next
			s.booted()
		}
	case waitLogin:
		if strings.HasSuffix(lastLine(log[s.from:]), "login:") {
			s.enter(waitPassword)
			s.answerPrompt(s.opts.Login.User + "\n")
		}
	case waitPassword, waitShell:
		region := log[s.from:]
		line := lastLine(region)
		switch {
		case bytes.Contains(region, []byte("Login incorrect")):
			s.fail(fmt.Sprintf("the login as %s failed: Login incorrect", s.opts.Login.User))
		case s.phase == waitPassword && strings.HasSuffix(strings.ToLower(line), "password:"):
			if s.opts.Login.Password == "" {
				s.fail(fmt.Sprintf("the guest asks for %s's password and none was given", s.opts.Login.User))
				return
			}
			s.enter(waitShell)
			s.answerPrompt(s.opts.Login.Password + "\n")
		case isShellPrompt(line):
			s.setup()
		}
	case waitReady:
		if bytes.Contains(log[s.from:], []byte(s.mark+"-R\n")) {
			s.res.LoggedIn = true
			s.res.BootDuration = time.Since(s.start)
			s.next(0)
		}
	case runCommand:
		c := &s.res.Commands[s.cmd]
		out, status, ok := s.commandEnd()
		if !ok {
			if out, begun := s.commandOutput(); begun && strings.HasSuffix(lastLine([]byte(out)), "login:") {
				// The login shell ended (an exit in the command): getty
				// asks for a login, and no end mark will ever come.
				c.Output = out
				c.Failure = "ended the login shell (an exit in a command ends the shell the commands run in: put it in a subshell, ( ... ))"
				s.endCommand(c, -1)
			}
			return
		}
		c.Output = out
		if status != 0 {
			c.Failure = fmt.Sprintf("exited with status %d", status)
		}
		s.endCommand(c, status)
	}
}

// booted follows every expectation having appeared: the login, or the
// end of the test.
func (s *session) booted() {
	if s.opts.Login == nil {
		s.res.BootDuration = time.Since(s.start)
		s.powerOff()
		return
	}
	s.enter(waitLogin)
	// The login prompt may have come before the last expectation ended
	// (an expectation of "login:" itself).
	s.from = s.m.lastStart
}

// setup types the line that makes the shell quiet and prints the ready
// mark: no echo, no prompts, no pager or colours, and (where the user may)
// no kernel messages on the console to break into the marks.
func (s *session) setup() {
	s.enter(waitReady)
	s.typeText("{ stty -echo || busybox stty -echo; } 2>/dev/null; PS1='' PS2=''; unset PROMPT_COMMAND; " +
		"export TERM=dumb PAGER=cat SYSTEMD_PAGER=cat; dmesg -n 1 2>/dev/null; " +
		"printf '%s-%s\\n' " + s.mark + " R\n")
}

// next types command i, or ends the commands.
func (s *session) next(i int) {
	if i == len(s.opts.Run) {
		s.powerOff()
		return
	}
	s.enter(runCommand)
	s.cmd, s.cmdAt = i, time.Now()
	s.stopCmdTimer()
	if s.opts.CommandTimeout > 0 {
		s.cmdTimer = time.NewTimer(s.opts.CommandTimeout)
	}
	s.res.Commands[i].Ran = true
	// eval runs the command in the login shell (cd and export carry over
	// to the next), whatever its syntax. Its input is /dev/null, so that
	// it cannot read what is typed next. The end mark is a line of its
	// own: a syntax error, which an interactive shell answers by dropping
	// the rest of the line, is then a status like any other.
	n := strconv.Itoa(i + 1)
	s.typeText("printf '%s-%s\\n' " + s.mark + " B" + n + "; eval " + shellQuote(s.opts.Run[i]) + " </dev/null\n" +
		"printf '\\n%s-%s %s\\n' " + s.mark + " E" + n + " \"$?\"\n")
}

// endCommand records the end of the running command and goes on, or
// fails on its failure.
func (s *session) endCommand(c *CommandResult, status int) {
	c.Status = status
	c.Duration = time.Since(s.cmdAt)
	if c.Failure != "" {
		s.fail(fmt.Sprintf("command %d %q %s", s.cmd+1, c.Command, c.Failure))
		return
	}
	s.next(s.cmd + 1)
}

func (s *session) stopCmdTimer() {
	if s.cmdTimer != nil {
		s.cmdTimer.Stop()
		s.cmdTimer = nil
	}
}

// commandOutput returns what the running command has printed since its
// begin mark, and whether the mark has appeared.
func (s *session) commandOutput() (string, bool) {
	log := s.m.log.Bytes()[s.from:]
	begin := []byte(s.mark + "-B" + strconv.Itoa(s.cmd+1) + "\n")
	i := bytes.Index(log, begin)
	if i < 0 {
		return "", false
	}
	return string(log[i+len(begin):]), true
}

// commandEnd returns the running command's output and status once its
// end mark has appeared.
func (s *session) commandEnd() (string, int, bool) {
	out, ok := s.commandOutput()
	if !ok {
		return "", 0, false
	}
	end := regexp.MustCompile(regexp.QuoteMeta(s.mark+"-E"+strconv.Itoa(s.cmd+1)+" ") + `(\d+)\n`)
	loc := end.FindStringSubmatchIndex(out)
	if loc == nil {
		return "", 0, false
	}
	status, err := strconv.Atoi(out[loc[2]:loc[3]])
	if err != nil {
		status = -1
	}
	// The end mark's printf starts with a newline of its own, so that
	// output without one still leaves the mark at the start of a line.
	return strings.TrimSuffix(out[:loc[0]], "\n"), status, true
}

// powerOff ends a test whose steps have all passed: when the test waits
// for the guest's own power-off, a logged-in test types the command for
// it.
func (s *session) powerOff() {
	if !s.opts.WaitExit {
		s.pass()
		return
	}
	if s.exited {
		s.pass()
		return
	}
	s.enter(waitExit)
	if s.opts.Login != nil {
		s.typeText(cmp.Or(s.opts.PowerOff, defaultPowerOff) + "\n")
	}
}

// qemuExited follows the end of QEMU's output.
func (s *session) qemuExited() {
	s.exited = true
	switch s.phase {
	case waitExit:
		s.pass()
	case waitExpect:
		s.res.exited = true
		s.fail("QEMU exited before every expectation appeared")
	case runCommand:
		s.res.exited = true
		c := &s.res.Commands[s.cmd]
		c.Output, _ = s.commandOutput()
		c.Failure = "did not finish: QEMU exited"
		c.Duration = time.Since(s.cmdAt)
		s.fail(fmt.Sprintf("QEMU exited while command %d %q ran", s.cmd+1, c.Command))
	default:
		s.res.exited = true
		s.fail("QEMU exited before the login ended")
	}
}

// nudge follows a quiet console: where a prompt is awaited, an empty line
// has the guest print it again (a prompt may be hidden by a kernel line
// that broke into it, or have come before what we waited for); the setup
// line is typed again if its mark has not come (a shell that was still
// starting may have dropped it).
func (s *session) nudge() {
	s.nudges++
	switch s.phase {
	case waitLogin:
		s.typeText("\n")
	case waitShell:
		// A shell whose prompt is not recognised still gets its setup.
		if s.nudges > 2 {
			s.setup()
			return
		}
		s.typeText("\n")
	case waitReady:
		from := s.from
		s.setup()
		s.from = from
	}
}

// waiting says what a failed session was waiting for.
func (s *session) waiting() string {
	switch s.failedIn {
	case waitLogin:
		return "the login prompt"
	case waitPassword, waitShell, waitReady:
		return fmt.Sprintf("a shell after logging in as %s", s.opts.Login.User)
	}
	return ""
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var (
	// kernelLine is a kernel message as the console prints it, which may
	// break into a line a program was printing.
	kernelLine = regexp.MustCompile(`\[ *\d+\.\d+\] [^\n]*\n`)
	// escape is a terminal escape sequence: CSI (colours, cursor moves,
	// bracketed paste), OSC (titles), and the short ones.
	escape = regexp.MustCompile(`\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78cDEHM])`)
)

// lastLine returns the console's unfinished last line as a person would
// see it: without the kernel messages printed into or after it, escape
// sequences and trailing blanks. Only the console's end is read.
func lastLine(b []byte) string {
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	b = kernelLine.ReplaceAll(b, nil)
	b = escape.ReplaceAll(b, nil)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return strings.TrimRight(string(b), " \t")
}

// isShellPrompt reports whether a console's last line ends as a shell's
// prompt does: "# " for root, "$ " for others (and "% ", "> ").
func isShellPrompt(line string) bool {
	return line != "" && strings.ContainsRune("#$%>", rune(line[len(line)-1]))
}
