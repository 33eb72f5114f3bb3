package commit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"

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
	if opts.Kernel == "" {
		opts.Kernel = kernel
	}
	var out bytes.Buffer
	opts.Output = &out
	if testing.Verbose() {
		opts.Output = io.MultiWriter(&out, os.Stderr)
	}
	opts.Log = testLog(t)
	opts.Sources.Log = opts.Log
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

// Run's results for the library's callers: a StepError with the step,
// its status and output; and, on success, the layer and the times.
func TestRunResults(t *testing.T) {
	_, out, err := commit(t, Options{Steps: []Step{{Run: "echo one"}, {Run: "echo two; exit 7"}, {Run: "echo three"}}})
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want a *StepError", err)
	}
	if se.Step != 2 || se.Steps != 3 || se.Status != 7 || !slices.Equal(se.Tail, []string{"two"}) || se.Desc != "echo two; exit 7" {
		t.Errorf("step error %+v", se)
	}
	if out != "one\ntwo\n" {
		t.Errorf("output %q, want the first two steps'", out)
	}

	res, out, err := commit(t, Options{Steps: []Step{{Run: "echo hello > /hello"}, {Run: "rm /etc/hostname"}}, Compression: Zstd})
	if err != nil {
		t.Fatal(err)
	}
	if out != "" {
		t.Errorf("output %q", out)
	}
	if l := res.Layer; l.Entries != 4 || l.Whiteouts != 1 || l.Size == 0 {
		t.Errorf("layer %+v: want 4 entries (/, /hello, /etc, /etc/.wh.hostname), 1 whiteout", l)
	}
	if tm := res.Times; tm.Boot <= 0 || tm.Steps <= 0 || tm.Prepare <= 0 || tm.Overhead() < tm.Boot {
		t.Errorf("times %+v", tm)
	}
	ls, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	last := ls[len(ls)-1]
	if mt, _ := last.MediaType(); mt != types.OCILayerZStd {
		t.Errorf("new layer %s", mt)
	}
	if d, _ := last.Digest(); d != res.Layer.Digest {
		t.Errorf("new layer %s, the result says %s", d, res.Layer.Digest)
	}
	cfg, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.History[len(cfg.History)-1]
	if h.CreatedBy != "ocidisk commit: RUN echo hello > /hello && RUN rm /etc/hostname" || !h.Created.Equal(time.Unix(1_700_000_000, 0)) || !cfg.Created.Equal(h.Created.Time) {
		t.Errorf("history %+v, created %v", h, cfg.Created)
	}
}

// A linux/arm/v7 image runs in a 32-bit guest (qemu-system-arm's virt,
// Debian's armmp kernel, the arm init).
func TestRunArm(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	hosttool.Require(t, "qemu-system-arm", "qemu-system-arm")
	root := "oci:" + debian.BusyboxRootArch(t, "armhf", "")
	kernel := "deb:" + debian.KernelDebFor(t, debian.KernelSpec{Arch: "armhf", Flavour: "armmp"})
	res, out, err := commit(t, Options{Source: root, Kernel: kernel, Sources: source.Options{Platform: "linux/arm/v7"},
		Steps: []Step{{Run: "uname -m; uname -m > /arch"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "armv7") {
		t.Errorf("the guest is %q, want armv7l", out)
	}
	if res.Layer.Entries != 2 {
		t.Errorf("layer %+v: want / and /arch", res.Layer)
	}
}
