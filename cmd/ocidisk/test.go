package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/ocidisk/ocidisk/internal/outfile"
	"github.com/ocidisk/ocidisk/qemu"
)

func testCommand() command {
	return command{
		name:    "test",
		args:    "[--board B] [--expect REGEX]... [--timeout DUR] [--junit FILE] [--bios FILE] [--writable] [--tryboot] IMAGE",
		summary: "boot an image under QEMU and check that the expected lines appear on its console",
		run:     runTest,
	}
}

func runTest(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "test")
	var q qemuFlags
	q.add(fs)
	expects := fs.StringArray("expect", nil, "regular expression that must appear on the serial console, in the order given (repeatable)")
	timeout := fs.Duration("timeout", 60*time.Second, "time allowed for the whole boot")
	junit := fs.String("junit", "", "write a JUnit XML report to FILE")
	console := fs.Bool("console", false, "copy the serial console to stdout as it arrives")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one IMAGE, got %d arguments", fs.NArg())
	}
	if len(*expects) == 0 {
		return usagef("give at least one --expect REGEX")
	}
	if *timeout <= 0 {
		return usagef("--timeout %s: must be positive", *timeout)
	}
	var res []*regexp.Regexp
	for _, x := range *expects {
		re, err := regexp.Compile(x)
		if err != nil {
			return usagef("--expect %q: %v", x, err)
		}
		res = append(res, re)
	}
	image := fs.Arg(0)
	b, cfg, err := q.config(image)
	if err != nil {
		return err
	}
	cfg.Log = e.log
	// A writable boot must end with the guest's own power-off, so that the
	// image holds what it wrote with its filesystems unmounted.
	opts := qemu.TestOptions{Expect: res, Timeout: *timeout, WaitExit: q.writable}
	if *console || e.verbose {
		opts.Log = e.stdout
	}
	r, testErr := qemu.Test(ctx, cfg, opts)
	if r != nil && *junit != "" {
		if err := writeJUnit(*junit, "ocidisk."+b.Name, filepath.Base(image), r); err != nil {
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
