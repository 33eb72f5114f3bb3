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
		{"busybox-root", "--arch", "riscv64"},
		{"kernel-deb", "--arch", "armhf", "--flavour", "arm64"},
		{"kernel-deb", "--flavour", "armmp"},
		{"systemd-root", "extra"},
		{"extract-root", "--large=maybe"},
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

// busybox-root --arch arm gives the armhf root, a layout other than the
// arm64 one, whatever the spelling of the architecture.
func TestBusyboxRootArch(t *testing.T) {
	cached := debian.BusyboxRootArch(t, "armhf", debian.Marker)
	for _, arch := range []string{"arm", "armhf", "arm/v7", "linux/arm/v7"} {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"busybox-root", "--arch", arch}, &out, &out); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out.String()); got != cached {
			t.Errorf("--arch %s printed %q, want %q", arch, got, cached)
		}
	}
	if cached == debian.BusyboxRoot(t) {
		t.Error("the armhf and arm64 roots are the same layout")
	}
}
