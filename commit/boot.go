package commit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/qemu"
)

// StepError is a step that failed in the guest.
type StepError struct {
	// Step counts from 1, of Steps; Desc is the step as given.
	Step, Steps int
	Desc        string
	// Status is its exit status (128+N for signal N); -1 when it did not
	// end: the guest crashed or the time ran out while it ran.
	Status int
	// Reason says why a step that did not end failed.
	Reason string
	// Tail is the end of its output.
	Tail []string
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %d of %d (%s)", e.Step, e.Steps, e.Desc)
	if e.Status >= 0 {
		fmt.Fprintf(&b, " failed with exit status %d", e.Status)
	} else {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	if len(e.Tail) > 0 {
		b.WriteString("; its last output: " + strings.Join(e.Tail, "\n"))
	}
	return b.String()
}

// stepTail is how many lines of a step's output an error shows.
const stepTail = 20

// follower follows the init's commit lines on the console and passes
// everything else to the output.
type follower struct {
	o      *Options
	start  time.Time
	ready  time.Time
	ended  time.Time // the last step's end
	done   bool
	step   int // the step running, from 1; 0 before the first
	status map[int]int
	tail   []string // the running step's output
}

func (f *follower) line(s string) error {
	rest, ok := strings.CutPrefix(s, protocol.CommitPrefix)
	if !ok {
		if _, ended := f.status[f.step]; f.step == 0 || ended {
			// The kernel's and the init's own lines, around the steps.
			f.o.Log.Debug("guest", "console", s)
			return nil
		}
		if strings.TrimSpace(s) != "" {
			f.tail = append(f.tail, s)
			if len(f.tail) > stepTail {
				f.tail = f.tail[len(f.tail)-stepTail:]
			}
		}
		_, err := fmt.Fprintln(f.o.Output, s)
		return err
	}
	w := strings.Fields(rest)
	switch {
	case len(w) == 1 && w[0] == protocol.CommitReady:
		f.ready = time.Now()
		f.o.Log.Info("guest ready", "boot", f.ready.Sub(f.start).Round(time.Millisecond))
	case len(w) == 2 && w[0] == protocol.CommitStep:
		n, _ := strconv.Atoi(w[1])
		if n < 1 || n > len(f.o.Steps) {
			return fmt.Errorf("the guest started step %s of %d", w[1], len(f.o.Steps))
		}
		f.step, f.tail = n, nil
		f.o.Log.Info(fmt.Sprintf("step %d of %d", n, len(f.o.Steps)), "step", f.o.Steps[n-1].String())
	case len(w) == 3 && w[0] == protocol.CommitStatus:
		n, _ := strconv.Atoi(w[1])
		code, err := strconv.Atoi(w[2])
		if err != nil || n != f.step {
			return fmt.Errorf("the guest said %q during step %d", s, f.step)
		}
		f.status[n] = code
		f.ended = time.Now()
	case len(w) == 1 && w[0] == protocol.CommitDone:
		f.done = true
	}
	return nil
}

// boot runs the guest and says how it went.
func boot(ctx context.Context, g qemu.Guest, o *Options, t *Times) error {
	f := &follower{o: o, start: time.Now(), status: map[int]int{}}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	err := qemu.RunGuest(ctx, g, f.line)
	end := time.Now()
	if !f.ready.IsZero() {
		t.Boot = f.ready.Sub(f.start)
		last := f.ended
		if last.IsZero() || f.step < len(o.Steps) {
			last = end
		}
		t.Steps = last.Sub(f.ready)
		t.Shutdown = end.Sub(last)
	} else {
		t.Boot = end.Sub(f.start)
	}
	if err == nil && f.done {
		return nil
	}
	var ge *qemu.GuestError
	if err != nil && !errors.As(err, &ge) {
		return err // QEMU did not start
	}
	reason := "the guest powered off before the commit was done"
	var tail []string
	if ge != nil {
		reason, tail = ge.Reason, ge.Tail
		if errors.Is(ge.Err, context.DeadlineExceeded) {
			reason = fmt.Sprintf("timed out after %s", o.Timeout)
		}
	}
	if n := f.step; n > 0 {
		se := &StepError{Step: n, Steps: len(o.Steps), Desc: o.Steps[n-1].String(), Status: -1, Reason: reason, Tail: f.tail}
		if code, ok := f.status[n]; ok && code != 0 {
			se.Status = code
			return se
		}
		if _, ok := f.status[n]; !ok {
			return se
		}
	}
	where := "while booting"
	switch {
	case f.step > 0:
		where = "after the last step"
	case !f.ready.IsZero():
		where = "before the first step"
	}
	msg := fmt.Sprintf("guest %s: %s", where, reason)
	if len(tail) > 0 {
		msg += "\n--- last lines of the serial console ---\n" + strings.Join(tail, "\n")
	}
	return errors.New(msg)
}
