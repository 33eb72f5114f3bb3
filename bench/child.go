package bench

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Child runs test, a test of the running test binary, in a new process of
// that binary with env added, and returns what it printed. A benchmark's
// peak RSS needs the fresh process: a child started from the (large)
// benchmark process inherits its high-water mark into ru_maxrss, because
// Go starts children with CLONE_VM, so the writer under test reports its
// own PeakRSS after exec, and a host tool is timed by Launch from within
// such a small child.
func Child(tb testing.TB, test string, env ...string) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("child %s %v: %v\n%s", test, env, err, out)
	}
	return string(out)
}

// Launch runs args[0] with args[1:] and returns its wall time and its peak
// RSS in kB (ru_maxrss of the child).
func Launch(args []string) (time.Duration, int64, error) {
	cmd := exec.Command(args[0], args[1:]...)
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w\n%s", args[0], err, out)
	}
	return time.Since(t0), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, nil
}
