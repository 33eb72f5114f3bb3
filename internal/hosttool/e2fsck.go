package hosttool

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// e2fsckLine matches the lines a clean e2fsck -fn run prints: the
// version, the pass headers and the summary.
var e2fsckLine = regexp.MustCompile(`^(e2fsck [0-9.]+ \(.*\)|Pass [1-5]: .*|\S+: \d+/\d+ files \(.*\), \d+/\d+ blocks|)$`)

// E2fsckClean runs `e2fsck -fn` on the filesystem in file and fails the
// test on a non-zero exit or on any line beyond those of a clean run, so
// that a warning e2fsck fixes nothing about still counts.
func E2fsckClean(t testing.TB, file string) {
	t.Helper()
	out, err := exec.Command(Require(t, "e2fsck", "e2fsprogs"), "-fn", file).CombinedOutput()
	bad := err != nil
	for _, l := range strings.Split(string(out), "\n") {
		bad = bad || !e2fsckLine.MatchString(l)
	}
	if bad {
		t.Fatalf("e2fsck -fn %s: %v\n%s", file, err, out)
	}
}
