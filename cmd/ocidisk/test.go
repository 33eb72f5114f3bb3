package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocidisk/ocidisk/internal/outfile"
	"github.com/ocidisk/ocidisk/qemu"
)

// testArgs are ocidisk test's options, as parsed.
type testArgs struct {
	qemuArgs
	expects []string
	timeout time.Duration
	junit   string
	console bool
}

func testCommand(e *env) *cobra.Command {
	var a testArgs
	opts := append(a.qemuArgs.options(),
		option{flag: "expect", arg: "REGEX", usage: "regular expression that must appear on the serial console, in the order given (repeatable)",
			value: newList(&a.expects, func(s string) error { _, err := regexp.Compile(s); return err })},
		option{flag: "timeout", arg: "DUR", usage: "time allowed for the whole boot", value: newDuration(&a.timeout, 60*time.Second)},
		option{flag: "junit", arg: "FILE", usage: "write a JUnit XML report to FILE", value: newString(&a.junit, "", nil)},
		option{flag: "console", usage: "copy the serial console to stdout as it arrives", value: newBool(&a.console, false)},
	)
	c := &cobra.Command{
		Use:   "test [flags] IMAGE",
		Short: "boot an image under QEMU and check that the expected lines appear on its console",
		Args:  exactArgs(1, "one IMAGE"),
		RunE:  func(c *cobra.Command, args []string) error { return runTest(c.Context(), e, &a, args[0]) },
	}
	declare(c.Flags(), opts)
	return withSynopsis(c, opts, "IMAGE")
}

func runTest(ctx context.Context, e *env, a *testArgs, image string) error {
	if len(a.expects) == 0 {
		return usagef("give at least one --expect REGEX")
	}
	var res []*regexp.Regexp
	for _, x := range a.expects {
		res = append(res, regexp.MustCompile(x)) // checked when parsed
	}
	b, cfg, err := a.config(image)
	if err != nil {
		return err
	}
	cfg.Log = e.log
	// A writable boot must end with the guest's own power-off, so that the
	// image holds what it wrote with its filesystems unmounted.
	opts := qemu.TestOptions{Expect: res, Timeout: a.timeout, WaitExit: a.writable}
	if a.console || e.verbose {
		opts.Log = e.stdout
	}
	r, testErr := qemu.Test(ctx, cfg, opts)
	if r != nil && a.junit != "" {
		if err := writeJUnit(a.junit, "ocidisk."+b.Name, filepath.Base(image), r); err != nil {
			return err
		}
	}
	if testErr != nil {
		return testErr
	}
	if !e.quiet {
		fmt.Fprintf(e.stdout, "ok: %s booted on %s (QEMU %s), %d expectations seen in %.1fs\n",
			image, b.Name, b.QEMU.Machine, r.Matched, r.Duration.Seconds())
		if r.Loaded != "" {
			fmt.Fprintf(e.stdout, "  loaded %s\n", r.Loaded)
		}
		if b.QEMU.Note != "" {
			fmt.Fprintf(e.stdout, "  note: %s\n", b.QEMU.Note)
		}
	}
	return nil
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
