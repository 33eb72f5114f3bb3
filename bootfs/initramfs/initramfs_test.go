package initramfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/kernel/kerneltest"
	"github.com/u-root/u-root/pkg/cpio"
)

// TestInitBinariesUpToDate rebuilds the init binaries with the generate
// directives of gen.go and compares them with the committed ones.
func TestInitBinariesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the init twice")
	}
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	lines := regexp.MustCompile(`(?m)^//go:generate (.*)$`).FindAllStringSubmatch(string(src), -1)
	if len(lines) != 2 {
		t.Fatalf("gen.go has %d go:generate lines, want 2", len(lines))
	}
	for _, l := range lines {
		out := regexp.MustCompile(`-o (init-\w+)`).FindStringSubmatch(l[1])
		if out == nil {
			t.Fatalf("no -o in %q", l[1])
		}
		cmdline := strings.Replace(l[1], out[0], "-o "+filepath.Join(tmp, out[1]), 1)
		cmd := exec.Command("sh", "-c", strings.ReplaceAll(cmdline, `"`, `'`))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmdline, err, b)
		}
		want, _ := os.ReadFile(filepath.Join(tmp, out[1]))
		got, err := Init(strings.TrimPrefix(out[1], "init-"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what its source builds: run go generate ./bootfs/... and commit it", out[1])
		}
	}
}

func fakeModules(t testing.TB) (*kernel.Kernel, []*kernel.Module) {
	t.Helper()
	tr := fstree.New()
	img := make([]byte, 64)
	copy(img[56:], "ARM\x64")
	files := map[string][]byte{
		"boot/vmlinuz-1.0-arm64":                 img,
		"lib/modules/1.0-arm64/kernel/a/dep.ko":  kerneltest.Module("name=dep"),
		"lib/modules/1.0-arm64/kernel/b/top.ko":  kerneltest.Module("name=top", "depends=dep"),
		"lib/modules/1.0-arm64/kernel/c/rest.ko": kerneltest.Module("name=rest"),
	}
	for p, b := range files {
		if err := tr.Put(p, fstree.NewFile(0o644, int64(len(b)), fstree.Bytes(b)), fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	k, err := kernel.Find(tr)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := k.Modules()
	if err != nil {
		t.Fatal(err)
	}
	mods, err := ms.Closure([]string{"top"})
	if err != nil {
		t.Fatal(err)
	}
	return k, mods
}

func TestBuildReadBack(t *testing.T) {
	k, mods := fakeModules(t)
	when := time.Unix(1_700_000_000, 0)
	spec := Spec{Arch: "arm64", KernelVersion: k.Version, Modules: mods, Compression: "gzip", Time: when}
	a, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same spec differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	// u-root's reader: names, modes, times, device numbers, content.
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpio.Record{}
	var order []string
	for _, r := range recs {
		got[r.Name] = r
		order = append(order, r.Name)
		if r.MTime != uint64(when.Unix()) {
			t.Errorf("%s: mtime %d", r.Name, r.MTime)
		}
	}
	if c := got["dev/console"]; c.Mode != 0o20600 || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console = %+v", c.Info)
	}
	initBin, _ := Init("arm64")
	if r := got["init"]; r.Mode != 0o100755 || readRec(t, r) != string(initBin) {
		t.Errorf("init: mode %o size %d", r.Mode, r.FileSize)
	}
	list := readRec(t, got[ModulesList])
	want := "/lib/modules/1.0-arm64/kernel/a/dep.ko\n/lib/modules/1.0-arm64/kernel/b/top.ko\n"
	if list != want {
		t.Errorf("modules list %q, want %q", list, want)
	}
	if _, ok := got["lib/modules/1.0-arm64/kernel/c/rest.ko"]; ok {
		t.Error("a module outside the closure is in the initramfs")
	}
	if !slices.IsSorted(order) {
		t.Errorf("entries not in tree order: %q", order)
	}
	// GNU cpio, the judge: it must list the same entries.
	cpioBin := hosttool.Require(t, "cpio", "cpio")
	cmd := exec.Command(cpioBin, "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -it: %v", err)
	}
	var listed []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		listed = append(listed, sc.Text())
	}
	if !slices.Equal(listed, order) {
		t.Errorf("cpio -it lists %q, want %q", listed, order)
	}
}

func readRec(t *testing.T, r cpio.Record) string {
	t.Helper()
	if r.ReaderAt == nil {
		return ""
	}
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkBuild builds a gzip'd initramfs holding the init and a few
// small modules: the fixed cost every image build pays.
func BenchmarkBuild(b *testing.B) {
	k, mods := fakeModules(b)
	spec := Spec{Arch: "arm64", KernelVersion: k.Version, Modules: mods, Compression: "gzip", Time: time.Unix(0, 0)}
	var n int
	for b.Loop() {
		out, err := Build(spec)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(n), "bytes")
}

// TestSpecEqual: specs are equal only with every field the same, the
// modules the same values in the same order, and times equal as instants.
func TestSpecEqual(t *testing.T) {
	m1, m2 := &kernel.Module{Name: "a"}, &kernel.Module{Name: "b"}
	when := time.Unix(1_700_000_000, 0)
	base := Spec{Arch: "arm64", KernelVersion: "6.1.0", Modules: []*kernel.Module{m1, m2}, Compression: "gzip", Time: when}
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want bool
	}{
		{"same", func(*Spec) {}, true},
		{"time in another zone", func(s *Spec) { s.Time = when.In(time.FixedZone("x", 3600)) }, true},
		{"modules copied", func(s *Spec) { s.Modules = []*kernel.Module{m1, m2} }, true},
		{"arch", func(s *Spec) { s.Arch = "arm" }, false},
		{"kernel version", func(s *Spec) { s.KernelVersion = "6.1.1" }, false},
		{"compression", func(s *Spec) { s.Compression = "none" }, false},
		{"time", func(s *Spec) { s.Time = when.Add(time.Second) }, false},
		{"module order", func(s *Spec) { s.Modules = []*kernel.Module{m2, m1} }, false},
		{"a module of the same name", func(s *Spec) { s.Modules = []*kernel.Module{m1, {Name: "b"}} }, false},
		{"a module fewer", func(s *Spec) { s.Modules = []*kernel.Module{m1} }, false},
	} {
		s := base
		tc.edit(&s)
		if got := base.Equal(s); got != tc.want {
			t.Errorf("%s: Equal = %v, want %v", tc.name, got, tc.want)
		}
	}
}
