package commit

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// bootInputs are the busybox test root and Debian's kernel, as sources.
func bootInputs(t *testing.T) (root, kernel string) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	return "oci:" + debian.BusyboxRoot(t), "deb:" + debian.KernelDeb(t)
}

// testLog logs to the test's output when -v.
func testLog(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// commit runs a commit of the busybox root and returns its result and
// the guest's output.
func commit(t *testing.T, opts Options) (*Result, string, error) {
	t.Helper()
	root, kernel := bootInputs(t)
	if opts.Source == "" {
		opts.Source = root
	}
	opts.Kernel = kernel
	var out bytes.Buffer
	opts.Output = &out
	if testing.Verbose() {
		opts.Output = io.MultiWriter(&out, os.Stderr)
	}
	opts.Log = testLog(t)
	opts.Sources = source.Options{Log: opts.Log}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Epoch.IsZero() {
		opts.Epoch = time.Unix(1_700_000_000, 0)
	}
	opts.WorkDir = t.TempDir()
	res, err := Run(context.Background(), opts)
	if res != nil {
		t.Cleanup(func() { res.Close() })
	}
	return res, out.String(), err
}

func TestCommitSmoke(t *testing.T) {
	res, out, err := commit(t, Options{Steps: []Step{{Run: "echo hello > /hello; rm /etc/hostname; echo done-with-it"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("output:\n%s", out)
	t.Logf("layer %+v times %+v", res.Layer, res.Times)
}
