package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

var built struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// ocidiskBinary builds ocidisk once per test run the way the README's
// install command does (CGO off), from this checkout.
func ocidiskBinary(t *testing.T) string {
	t.Helper()
	built.Do(func() {
		dir, err := os.MkdirTemp("", "ocidisk-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "ocidisk")
		cmd := exec.Command("go", "build", "-buildvcs=true", "-o", built.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.path
}

// TestStaticBinaryAndVersion: the README's install command makes a
// statically linked binary, and ocidisk version names the revision it was
// built from.
func TestStaticBinaryAndVersion(t *testing.T) {
	bin := ocidiskBinary(t)
	file := hosttool.Require(t, "file", "file")
	out, err := exec.Command(file, bin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "statically linked") {
		t.Errorf("file %s: %s (%v): want statically linked", bin, out, err)
	}
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	// Go stamps the revision only from a .git directory, not from the
	// .git file of a git worktree.
	top, _ := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if st, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err == nil && !st.IsDir() && os.Getenv("CI") != "true" {
		t.Skip("a git worktree: go build records no revision here")
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		v, err := exec.Command(bin, args...).Output()
		if err != nil || !strings.Contains(string(v), strings.TrimSpace(string(rev))) || !strings.HasPrefix(string(v), "ocidisk ") {
			t.Errorf("ocidisk %s = %q (%v), want the revision %s", args[0], v, err, rev)
		}
	}
}
