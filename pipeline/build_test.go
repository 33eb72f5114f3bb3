package pipeline

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

func testConfig(t *testing.T, root, kernel string) Config {
	t.Helper()
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return Config{
		Board:   b,
		Source:  root,
		Kernel:  kernel,
		Output:  filepath.Join(dir, "t.img"),
		Epoch:   time.Unix(1700000000, 0),
		Sources: source.Options{Platform: Platform(b), CacheDir: filepath.Join(dir, "cache")},
	}
}

// TestBuildCold builds the same inputs twice, each from an empty cache:
// the kernel package loads while the root does, and whichever finishes
// first, the image must be the same bytes (identifiers derive from the
// inputs in a fixed order).
func TestBuildCold(t *testing.T) {
	kernel := "deb:" + debian.KernelDeb(t)
	root := "oci:" + debian.BusyboxRoot(t)
	var sums []string
	for range 2 {
		cfg := testConfig(t, root, kernel)
		res, err := Build(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(res.KernelVersion, "-arm64") {
			t.Errorf("kernel version %q", res.KernelVersion)
		}
		sums = append(sums, fileSum(t, cfg.Output))
	}
	if sums[0] != sums[1] {
		t.Fatalf("two cold builds of the same inputs differ: %s, %s", sums[0], sums[1])
	}
}

// TestBuildInputErrors: whichever input fails, the error names it and no
// image is left; a kernel still loading when the root fails is stopped.
func TestBuildInputErrors(t *testing.T) {
	kernel := "deb:" + debian.KernelDeb(t)
	root := "oci:" + debian.BusyboxRoot(t)
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name, root, kernel, want string
	}{
		{"root missing, kernel loading", "oci:" + missing, kernel, "root image: "},
		{"kernel missing", root, "deb:" + missing, "kernel: "},
		{"kernel not a deb", root, "deb:" + os.Args[0], "kernel: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, tt.root, tt.kernel)
			_, err := Build(t.Context(), cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one starting %q", err, tt.want)
			}
			if _, err := os.Stat(cfg.Output); !os.IsNotExist(err) {
				t.Errorf("failed build left %s", cfg.Output)
			}
		})
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
