package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/testimages"
)

// Issue 13, unclear messages: --root-size takes TiB as it takes 1024GiB (a
// root with no kernel then fails the build for that, not for the flag).
func TestSizesInTiB(t *testing.T) {
	isolate(t)
	root := writeTar(t, []testimages.Entry{testimages.Dir("etc", 0o755)})
	for _, size := range []string{"1TiB", "1024GiB", "1T"} {
		code, _, stderr := runCLI(t, "build", "-o", filepath.Join(t.TempDir(), "x.img"), "--root-size", size, "tar:"+root)
		if code != exitFailure || strings.Contains(stderr, "--root-size") || !strings.Contains(stderr, "no kernel") {
			t.Errorf("--root-size %s: exit %d, %q; want the flag taken and the missing kernel reported", size, code, stderr)
		}
	}
}
