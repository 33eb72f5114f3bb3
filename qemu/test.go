package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// TestOptions say what a boot test waits for.
type TestOptions struct {
	// Expect must all appear on the serial console, in order.
	Expect []*regexp.Regexp
	// Timeout bounds the whole boot; 0 means 60 s.
	Timeout time.Duration
	// Log, when set, receives the serial console as it arrives.
	Log io.Writer
	// TailLines is how much of the console a failure shows; 0 means 30.
	TailLines int
	// WaitExit, once every expectation has appeared, waits for QEMU to
	// exit on its own (the guest powers off) within the timeout instead
	// of stopping it: a writable image then holds everything the guest
	// wrote, its filesystems unmounted.
	WaitExit bool
}

// Result is the outcome of a boot test.
type Result struct {
	Passed   bool
	Start    time.Time
	Duration time.Duration
	// Matched counts the expectations that appeared.
	Matched int
	// Reason says why the test failed.
	Reason string
	// Tail is the end of the console log, Console all of it.
	Tail, Console string
	// Loaded says what a direct boot took from the image (VM.Loaded).
	Loaded string
}

// Test boots the image and watches the serial console. It returns an error
// (and the Result saying why) when an expectation has not appeared by the
// timeout, the kernel panics, ocidisk's init reports a failure or QEMU
// exits first. QEMU is stopped and its temporary files removed in every
// case.
func Test(ctx context.Context, cfg Config, opts TestOptions) (*Result, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	tailN := opts.TailLines
	if tailN <= 0 {
		tailN = 30
	}
	v, err := Prepare(cfg)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.Command(v.Binary, v.Args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	logger(cfg).Debug("qemu", "cmd", v.Binary+" "+strings.Join(v.Args, " "))
	start := time.Now()
	res := &Result{Start: start, Loaded: v.Loaded}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(v.Binary), err)
	}
	chunks := make(chan []byte)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := out.Read(buf)
			if n > 0 {
				chunks <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				return
			}
		}
	}()

	m := &matcher{expect: opts.Expect}
	exited := false
	for res.Reason == "" && !(res.Passed && (!opts.WaitExit || exited)) {
		select {
		case p, ok := <-chunks:
			if !ok {
				exited = true
				if res.Passed {
					break
				}
				res.Reason = "QEMU exited before every expectation appeared"
				if s := strings.TrimSpace(stderr.String()); s != "" {
					res.Reason += ": " + s
				}
				break
			}
			if opts.Log != nil {
				opts.Log.Write(p)
			}
			done, failure := m.feed(p)
			res.Passed = res.Passed || done
			if failure != "" {
				res.Reason = failure
				res.Passed = false
			}
		case <-ctx.Done():
			res.Reason = fmt.Sprintf("timed out after %s", timeout)
			if res.Passed {
				res.Passed = false
				res.Reason += " waiting for QEMU to exit (the guest did not power off)"
			}
			if errors.Is(ctx.Err(), context.Canceled) {
				res.Reason = "cancelled"
			}
		}
	}
	res.Duration = time.Since(start)
	_ = cmd.Process.Kill()
	for range chunks { // let the reader finish so Wait can close the pipe
	}
	_ = cmd.Wait()

	res.Matched = m.next
	res.Tail, res.Console = m.tail(tailN), m.log.String()
	if res.Passed {
		return res, nil
	}
	waiting := ""
	if m.next < len(opts.Expect) {
		waiting = fmt.Sprintf(" (waiting for %q, %d of %d expectations seen)", opts.Expect[m.next], m.next, len(opts.Expect))
	}
	return res, fmt.Errorf("boot test of %s failed: %s%s\n--- last lines of the serial console ---\n%s", cfg.Image, res.Reason, waiting, res.Tail)
}
