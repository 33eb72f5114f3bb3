package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sample is what one run of a command cost.
type Sample struct {
	// Wall is the elapsed time from start to exit.
	Wall time.Duration
	// CPU is user plus system time of the command and every process it
	// waited for: a shell script's pipeline counts whole.
	CPU time.Duration
	// PeakRSS is the largest resident set of any one process of the run
	// (the kernel's ru_maxrss over the process tree), in bytes.
	PeakRSS int64
	// Written is the bytes the run caused to be written to storage: the
	// growth of write_bytes in /proc/self/io, less that of
	// cancelled_write_bytes, to which the kernel adds the counters of
	// every child the process reaps, so children and their descendants
	// are included. Pages dirtied in the page cache count when they are
	// dirtied; those of a file deleted (or truncated) before they were
	// written back are taken off again, since they never reach the disk:
	// a build's temporaries cost the disk nothing.
	Written int64
}

// Measure runs cmd (not yet started) to completion through GNU time
// (timeBin, /usr/bin/time) and returns its cost. The calling process must
// not write to storage meanwhile, and must not have other children that
// exit while cmd runs: their bytes would count.
//
// GNU time stands between this process and cmd for the peak RSS alone:
// exec records the hiwater mark of the address space it replaces in the
// new program's maxrss, and a Go child starts out sharing its parent's, so
// the RSS of this process would be reported for every command. GNU time
// forks its child from its own small address space.
func Measure(cmd *exec.Cmd, timeBin string) (Sample, error) {
	f, err := os.CreateTemp("", "bench-maxrss-*")
	if err != nil {
		return Sample{}, err
	}
	f.Close()
	defer os.Remove(f.Name())
	name := strings.Join(cmd.Args, " ")
	cmd.Args = append([]string{timeBin, "-f", "%M", "-o", f.Name(), "--", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = timeBin

	before, err := selfWriteBytes()
	if err != nil {
		return Sample{}, err
	}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return Sample{}, fmt.Errorf("%s: %w", name, err)
	}
	wall := time.Since(start)
	after, err := selfWriteBytes()
	if err != nil {
		return Sample{}, err
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return Sample{}, fmt.Errorf("%s: no resource usage", name)
	}
	out, err := os.ReadFile(f.Name())
	if err != nil {
		return Sample{}, err
	}
	maxrss, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return Sample{}, fmt.Errorf("%s: peak RSS from %s: %q", name, timeBin, out)
	}
	// wait4 reports the child's usage with that of the descendants it
	// waited for: GNU time and everything below it.
	return Sample{
		Wall:    wall,
		CPU:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		PeakRSS: maxrss << 10, // KiB
		Written: after - before,
	}, nil
}

// Self runs f in this process and returns its wall time and the CPU time
// (user and system, every thread) the process spent meanwhile: a
// benchmark of a library call, on a machine whose cores are shared, where
// CPU time is the steadier measure.
func Self(f func()) Sample {
	cpu := func() time.Duration {
		var r syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
			panic(err) // RUSAGE_SELF of a valid buffer cannot fail
		}
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	c0, t0 := cpu(), time.Now()
	f()
	return Sample{Wall: time.Since(t0), CPU: cpu() - c0}
}

// selfWriteBytes reads write_bytes less cancelled_write_bytes from
// /proc/self/io.
func selfWriteBytes() (int64, error) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, fmt.Errorf("bytes written: %w (needs Linux with task I/O accounting)", err)
	}
	w, err := parseIO(b, "write_bytes")
	if err != nil {
		return 0, err
	}
	cancelled, err := parseIO(b, "cancelled_write_bytes")
	return w - cancelled, err
}

// parseIO returns the counter named key from the text of /proc/PID/io.
func parseIO(b []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/self/io: %s: %w", key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("/proc/self/io: no %s", key)
}
