package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/internal/outfile"
	"github.com/ocidisk/ocidisk/qemu"
)

// testArgs are ocidisk test's options, as parsed.
type testArgs struct {
	qemuArgs
	expects []string
	login   string
	runs    []string
	timeout time.Duration
	junit   string
	console bool
}

func testCommand(e *env) *cobra.Command {
	var a testArgs
	opts := append(a.qemuArgs.options(qemu.NetNone),
		option{flag: "expect", arg: "REGEX", usage: "regular expression that must appear on the serial console, in the order given (repeatable)",
			value: newList(&a.expects, func(s string) error { _, err := regexp.Compile(s); return err })},
		option{flag: "login", arg: "USER[:PW]", usage: "then log in on the serial console as USER, with password PW if asked",
			value: newString(&a.login, "", func(s string) error { _, err := qemu.ParseLogin(s); return err }), field: "Login"},
		option{flag: "run", arg: "CMD", usage: "then run CMD in the login's shell; the test fails on the first command that exits non-zero (repeatable)",
			value: newList(&a.runs, nil), field: "Run"},
		option{flag: "timeout", arg: "DUR", usage: "time allowed for the whole test", value: newDuration(&a.timeout, 60*time.Second), field: "Timeout"},
		option{flag: "junit", arg: "FILE", usage: "write a JUnit XML report to FILE", value: newString(&a.junit, "", nil)},
		option{flag: "console", usage: "copy the serial console to stdout as it arrives", value: newBool(&a.console, false)},
	)
	opts = inOrder(opts, "board", "expect", "login", "run", "timeout", "junit", "writable", "net", "publish", "mem", "cpus", "qemu-arg")
	a.qemuArgs.opts = opts
	c := &cobra.Command{
		Use:   "test [flags] IMAGE",
		Short: "boot an image under QEMU and check that the expected lines appear on its console, or log in and run commands",
		Args:  exactArgs(1, "one IMAGE"),
		RunE:  func(c *cobra.Command, args []string) error { return runTest(c.Context(), e, &a, args[0]) },
	}
	declare(c.Flags(), opts)
	return withSynopsis(c, opts, "IMAGE")
}

func runTest(ctx context.Context, e *env, a *testArgs, image string) error {
	if len(a.runs) > 0 && a.login == "" {
		return usagef("--run needs --login USER[:PASSWORD]: commands run in the login's shell")
	}
	if len(a.expects) == 0 && a.login == "" {
		return usagef("give at least one --expect REGEX, or --login USER[:PASSWORD]")
	}
	var res []*regexp.Regexp
	for _, x := range a.expects {
		res = append(res, regexp.MustCompile(x)) // checked when parsed
	}
	// A writable boot must end with the guest's own power-off, so that the
	// image holds what it wrote with its filesystems unmounted.
	opts := qemu.TestOptions{Expect: res, Run: a.runs, Timeout: a.timeout, WaitExit: a.writable}
	if a.login != "" {
		opts.Login, _ = qemu.ParseLogin(a.login) // checked when parsed
	}
	if err := opts.Validate(); err != nil {
		return qemuOptionError(err, a.opts)
	}
	b, cfg, err := a.config(image)
	if err != nil {
		return err
	}
	cfg.Log = e.log
	if a.console || e.verbose {
		opts.Log = e.stdout
	}
	r, testErr := qemu.Test(ctx, cfg, opts)
	if r != nil && a.junit != "" {
		if err := writeJUnit(a.junit, "ocidisk."+b.Name, filepath.Base(image), r); err != nil {
			return err
		}
	}
	var te *qemu.TestError
	if errors.As(testErr, &te) {
		// What the guest printed goes to stderr as it was, many lines;
		// the error stays one line.
		if c := te.Command; c != nil {
			fmt.Fprintf(e.stderr, "--- output of %q (exit status %d) ---\n%s", c.Command, c.Status, withNewline(c.Output))
			return fmt.Errorf("%s; see its output above", te.Summary())
		}
		fmt.Fprintf(e.stderr, "--- last lines of the serial console ---\n%s", withNewline(te.Tail))
		return fmt.Errorf("%s; see the console tail above", te.Summary())
	}
	if testErr != nil {
		return testErr
	}
	if !e.quiet {
		for _, c := range r.Commands {
			fmt.Fprintf(e.stdout, "$ %s\n%s", c.Command, withNewline(c.Output))
		}
		fmt.Fprintf(e.stdout, "ok: %s booted on %s (QEMU %s)%s in %.1fs\n", image, b.Name, b.QEMU.Machine, summary(r, opts), r.Duration.Seconds())
		if r.Loaded != "" {
			fmt.Fprintf(e.stdout, "  loaded %s\n", r.Loaded)
		}
		if b.QEMU.Note != "" {
			fmt.Fprintf(e.stdout, "  note: %s\n", b.QEMU.Note)
		}
	}
	return nil
}

// summary says what a passed test saw and did.
func summary(r *qemu.Result, opts qemu.TestOptions) string {
	var parts []string
	if len(opts.Expect) > 0 {
		parts = append(parts, fmt.Sprintf("%d expectations seen", r.Matched))
	}
	if opts.Login != nil {
		parts = append(parts, "logged in as "+opts.Login.User)
	}
	if n := len(r.Commands); n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s passed", n, plural(n, "command", "commands")))
	}
	if opts.WaitExit {
		parts = append(parts, "powered off")
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// withNewline ends non-empty text with a newline.
func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

func writeJUnit(path, class, name string, r *qemu.Result) error {
	f, err := outfile.Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := qemu.WriteJUnit(f, class, name, r); err != nil {
		return fmt.Errorf("junit %s: %w", path, err)
	}
	return f.Commit()
}
