package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/testimages/debian"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"bogus"},
		{"package"},
		{"package", "a", "b"},
		{"kernel-deb", "extra"},
		{"busybox-root", "--no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		err := run(t.Context(), args, &out, &errOut)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("run %q = %v, want a usage error", args, err)
		}
		if out.Len() != 0 {
			t.Errorf("run %q printed %q", args, out.String())
		}
	}
}

// busybox-root -o copies the cached layout to a new directory and prints
// it; a second copy to the same place fails and leaves it as it was.
func TestBusyboxRootOutput(t *testing.T) {
	cached := debian.BusyboxRoot(t) // skips or fails here when unavailable
	dst := filepath.Join(t.TempDir(), "root")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"busybox-root", "-o", dst}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != dst {
		t.Errorf("printed %q, want %q", got, dst)
	}
	for _, f := range []string{"index.json", "oci-layout"} {
		a, err1 := os.ReadFile(filepath.Join(cached, f))
		b, err2 := os.ReadFile(filepath.Join(dst, f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: copy differs from the cache (%v, %v)", f, err1, err2)
		}
	}
	if err := run(t.Context(), []string{"busybox-root", "-o", dst}, &out, &out); err == nil {
		t.Error("a second copy over an existing output succeeded")
	}
}
