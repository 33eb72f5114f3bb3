package kernel

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/kernel/kerneltest"
	"github.com/ulikunitz/xz"
)

func put(t *testing.T, tr *fstree.Tree, p string, b []byte) {
	t.Helper()
	if err := tr.Put(p, fstree.NewFile(0o644, int64(len(b)), fstree.Bytes(b)), fstree.NewDir(0o755)); err != nil {
		t.Fatal(err)
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func xzc(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := xz.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zstdc(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	return e.EncodeAll(b, nil)
}

// fakeImage is an arm64 Image header followed by filler.
func fakeImage() []byte {
	b := make([]byte, 4096)
	copy(b[56:], arm64Magic)
	for i := 64; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

func TestFind(t *testing.T) {
	img := fakeImage()
	for _, tc := range []struct {
		name    string
		files   map[string][]byte
		links   map[string]string
		version string
		modules string
		dtbs    string
		err     error
	}{
		{name: "debian package", files: map[string][]byte{
			"boot/vmlinuz-6.1.0-9-arm64":                    gz(img),
			"lib/modules/6.1.0-9-arm64/kernel/a.ko":         kerneltest.Module("name=a"),
			"usr/lib/linux-image-6.1.0-9-arm64/x/board.dtb": {1},
		}, version: "6.1.0-9-arm64", modules: "lib/modules/6.1.0-9-arm64", dtbs: "usr/lib/linux-image-6.1.0-9-arm64"},
		{name: "newest of two, merged usr", files: map[string][]byte{
			"boot/vmlinuz-6.1.0-9-arm64":                 gz(img),
			"boot/vmlinuz-6.1.0-10-arm64":                gz(img),
			"usr/lib/modules/6.1.0-10-arm64/kernel/a.ko": kerneltest.Module("name=a"),
			"usr/lib/modules/6.1.0-9-arm64/kernel/a.ko":  kerneltest.Module("name=a"),
		}, links: map[string]string{"lib": "usr/lib"}, version: "6.1.0-10-arm64", modules: "usr/lib/modules/6.1.0-10-arm64"},
		{name: "kernel beside its modules", files: map[string][]byte{
			"usr/lib/modules/6.8.0/vmlinuz":   img,
			"usr/lib/modules/6.8.0/dtb/a.dtb": {1},
		}, version: "6.8.0", modules: "usr/lib/modules/6.8.0", dtbs: "usr/lib/modules/6.8.0/dtb"},
		{name: "no kernel", files: map[string][]byte{"etc/hostname": []byte("x\n")}, err: ErrNoKernel},
		{name: "dangling vmlinuz symlink", links: map[string]string{"boot/vmlinuz-1": "nowhere"}, err: ErrNoKernel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			for p, b := range tc.files {
				put(t, tr, p, b)
			}
			for p, target := range tc.links {
				if err := tr.Put(p, fstree.NewSymlink(target), fstree.NewDir(0o755)); err != nil {
					t.Fatal(err)
				}
			}
			k, err := Find(tr)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Find = %v, %v; want %v", k, err, tc.err)
				}
				for _, w := range []string{"--kernel", "/boot/vmlinuz-*"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Version != tc.version || k.ModulesDir != tc.modules || k.DTBDir != tc.dtbs {
				t.Fatalf("Find = version %q modules %q dtbs %q", k.Version, k.ModulesDir, k.DTBDir)
			}
			n, err := k.Image(true)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fstree.ReadAll(n)
			if err != nil || !bytes.Equal(got, img) {
				t.Fatalf("uncompressed image: %d bytes, %v; want the %d-byte Image", len(got), err, len(img))
			}
		})
	}
}

func TestImageDecompression(t *testing.T) {
	img := fakeImage()
	for _, tc := range []struct {
		name string
		data []byte
	}{{"raw", img}, {"gzip", gz(img)}, {"xz", xzc(img)}, {"zstd", zstdc(img)}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			put(t, tr, "boot/vmlinuz-1.0-arm64", tc.data)
			k, err := Find(tr)
			if err != nil {
				t.Fatal(err)
			}
			n, err := k.Image(true)
			if err != nil {
				t.Fatal(err)
			}
			if h, err := fstree.HashContent(n); err != nil { // checks Size
				t.Fatal(h, err)
			}
			got, _ := fstree.ReadAll(n)
			if !bytes.Equal(got, img) {
				t.Fatal("decompressed image differs")
			}
			raw, _ := k.Image(false)
			if b, _ := fstree.ReadAll(raw); !bytes.Equal(b, tc.data) {
				t.Fatal("Image(false) is not the file as found")
			}
		})
	}
	tr := fstree.New()
	put(t, tr, "boot/vmlinuz-1.0-arm64", gz(make([]byte, 100)))
	k, _ := Find(tr)
	if _, err := k.Image(true); err == nil || !strings.Contains(err.Error(), "not an arm64 Image") {
		t.Fatalf("gzip of a non-Image: %v", err)
	}
}

// synthetic is a kernel whose modules exercise every kind of dependency.
func synthetic(t *testing.T) *Kernel {
	tr := fstree.New()
	put(t, tr, "boot/vmlinuz-1.0", fakeImage())
	d := "lib/modules/1.0/"
	put(t, tr, d+"kernel/fs/top.ko", kerneltest.Module("name=top", "depends=mid,leaf", "softdep=pre: crypto-x post: after"))
	put(t, tr, d+"kernel/fs/mid.ko", kerneltest.Module("name=mid", "depends=leaf", "softdep=pre: nowhere"))
	put(t, tr, d+"kernel/lib/leaf.ko", kerneltest.Module("name=leaf", "depends="))
	put(t, tr, d+"kernel/crypto/x-generic.ko.xz", xzc(kerneltest.Module("name=x_generic", "alias=crypto-x", "alias=x", "depends=")))
	put(t, tr, d+"kernel/crypto/after.ko.zst", zstdc(kerneltest.Module("name=after", "depends=")))
	put(t, tr, d+"kernel/drivers/needs-gone.ko", kerneltest.Module("name=needs_gone", "depends=gone"))
	put(t, tr, d+"kernel/drivers/uses-builtin.ko", kerneltest.Module("name=uses_builtin", "depends=", "softdep=pre: crc32c"))
	put(t, tr, d+"kernel/drivers/pci-dev.ko", kerneltest.Module("name=pci_dev", "alias=pci:v00001AF4d*sv*sd*bc*sc*i*", "depends="))
	put(t, tr, d+"modules.builtin", []byte("kernel/lib/crc32.ko\nkernel/drivers/virtio/virtio.ko\n"))
	put(t, tr, d+"modules.builtin.modinfo", []byte("crc32.alias=crc32c\x00crc32.license=GPL\x00"))
	k, err := Find(tr)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func names(ms []*Module) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name)
	}
	return s
}

func TestClosure(t *testing.T) {
	k := synthetic(t)
	ms, err := k.Modules()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want    []string
		order   []string
		errText string
	}{
		// Hard dependencies leaf-first, then the soft pre-dependency (by
		// alias), the module, then its soft post-dependency; a missing soft
		// dependency ("nowhere") is skipped.
		{want: []string{"top"}, order: []string{"leaf", "mid", "x_generic", "top", "after"}},
		{want: []string{"x", "top"}, order: []string{"x_generic", "leaf", "mid", "top", "after"}},
		{want: []string{"x"}, order: []string{"x_generic"}},
		{want: []string{"virtio", "uses-builtin"}, order: []string{"uses_builtin"}},                           // built-in: nothing to load
		{want: []string{"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"}, order: []string{"pci_dev"}}, // wildcard alias
		{want: []string{"needs_gone"}, errText: "module gone (needed by needs_gone) not found"},
		{want: []string{"ext9"}, errText: "module ext9 not found"},
	} {
		got, err := ms.Closure(tc.want)
		if tc.errText != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("Closure(%q) = %q, %v; want error %q", tc.want, names(got), err, tc.errText)
			}
			continue
		}
		if err != nil || !slices.Equal(names(got), tc.order) {
			t.Errorf("Closure(%q) = %q, %v; want %q", tc.want, names(got), err, tc.order)
		}
	}
	// Compressed modules are read through their decompressed bytes.
	x, _ := ms.Lookup("x_generic")
	if len(x) != 1 || x[0].Size() != int64(len(kerneltest.Module("name=x_generic", "alias=crypto-x", "alias=x", "depends="))) {
		t.Fatalf("x_generic: %+v", x)
	}
	r, _ := x[0].Open()
	b, _ := io.ReadAll(r)
	if !bytes.HasPrefix(b, []byte("\x7fELF")) {
		t.Fatal("Open of a .ko.xz does not yield ELF bytes")
	}
}

func TestModulesFiles(t *testing.T) {
	k := synthetic(t)
	ms, err := k.Modules()
	if err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1_700_000_000, 0)
	tr, err := ms.Tree(k, nil, mt)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := tr.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dep := read("modules.dep")
	for _, l := range []string{
		"kernel/fs/top.ko: kernel/fs/mid.ko kernel/lib/leaf.ko\n",
		"kernel/fs/mid.ko: kernel/lib/leaf.ko\n",
		"kernel/lib/leaf.ko:\n",
		"kernel/crypto/x-generic.ko.xz:\n",
	} {
		if !strings.Contains(dep, l) {
			t.Errorf("modules.dep lacks %q:\n%s", l, dep)
		}
	}
	if a := read("modules.alias"); !strings.Contains(a, "alias crypto-x x_generic\n") {
		t.Errorf("modules.alias:\n%s", a)
	}
	if s := read("modules.softdep"); !strings.Contains(s, "softdep top pre: crypto-x post: after\n") {
		t.Errorf("modules.softdep:\n%s", s)
	}
	if _, err := tr.Lookup("modules.builtin"); err != nil {
		t.Error("modules.builtin not copied")
	}
	// kmod's modprobe finds modules, aliases and wildcard aliases through
	// our indexes alone.
	if _, err := exec.LookPath("modprobe"); err == nil || hosttool.InCI() {
		modprobe := hosttool.Require(t, "modprobe", "kmod")
		base := t.TempDir()
		writeTree(t, tr, filepath.Join(base, "lib/modules/1.0"))
		for q, want := range map[string][]string{
			"top":      {"lib/leaf.ko", "fs/mid.ko", "crypto/x-generic.ko.xz", "fs/top.ko", "crypto/after.ko.zst"},
			"crypto-x": {"crypto/x-generic.ko.xz"},
			"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00": {"drivers/pci-dev.ko"},
		} {
			out, err := exec.Command(modprobe, "-d", base, "-S", "1.0", "--show-depends", q).CombinedOutput()
			if err != nil {
				t.Errorf("modprobe %s: %v: %s", q, err, out)
				continue
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "insmod" {
					got = append(got, strings.TrimPrefix(f[1], base+"/lib/modules/1.0/kernel/"))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("modprobe --show-depends %s = %q, want %q", q, got, want)
			}
		}
	}
	// Merged into a merged-/usr root, they land under usr/lib.
	root := fstree.New()
	root.Put("lib", fstree.NewSymlink("usr/lib"), nil)
	root.MkdirAll("usr/lib", nil)
	if err := MergeModules(root, k, ms, mt); err != nil {
		t.Fatal(err)
	}
	n, err := root.Lookup("usr/lib/modules/1.0/kernel/fs/top.ko")
	if err != nil {
		t.Fatal(err)
	}
	if n.Links() != 1 {
		t.Errorf("merged module has %d links, want 1 (a node shared with the kernel's tree)", n.Links())
	}
}

// TestDebianKernel checks against real Debian modules and judges
// modules.dep with kmod's depmod and modprobe.
func TestDebianKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("reads all of Debian's kernel package")
	}
	tr := debianKernel(t)
	k, err := Find(tr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(k.Version, "-arm64") || k.DTBDir == "" {
		t.Fatalf("kernel %+v", k)
	}
	img, err := k.Image(true)
	if err != nil {
		t.Fatal(err)
	}
	if img.Size < 10<<20 {
		t.Fatalf("Image is %d bytes", img.Size)
	}
	ms, err := k.Modules()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio_pci", "virtio_blk", "ext4"}
	order, err := ms.Closure(want)
	if err != nil {
		t.Fatal(err)
	}
	got := names(order)
	for _, m := range []string{"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "jbd2", "mbcache", "crc16", "crc32c_generic"} {
		if !slices.Contains(got, m) {
			t.Errorf("closure %q lacks %s", got, m)
		}
	}
	if _, err := ms.Closure([]string{"ext4", "no_such_mod"}); err == nil || !strings.Contains(err.Error(), "no_such_mod") {
		t.Errorf("missing module: %v", err)
	}
	// kmod's modprobe, reading only the files we generated, must plan the
	// same loads as after depmod has rebuilt them: for module names, an
	// alias (fs-ext4), a softdep alias (crypto-crc32c) and a wildcard alias.
	depmod := hosttool.Require(t, "depmod", "kmod")
	modprobe := hosttool.Require(t, "modprobe", "kmod")
	base := t.TempDir()
	mt, err := ms.Tree(k, nil, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "lib/modules", k.Version)
	writeTree(t, mt, dir)
	queries := append(want, "fs-ext4", "crypto-crc32c", "virtio:d00000002v00001AF4", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00")
	plan := func() []string {
		var out []string
		for _, q := range queries {
			b, err := exec.Command(modprobe, "-d", base, "-S", k.Version, "--show-depends", q).CombinedOutput()
			if err != nil {
				t.Fatalf("modprobe --show-depends %s: %v: %s", q, err, b)
			}
			out = append(out, string(b))
		}
		return out
	}
	ourPlan := plan()
	ours, _ := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if out, err := exec.Command(depmod, "-b", base, k.Version).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v: %s", err, out)
	}
	theirs, _ := os.ReadFile(filepath.Join(dir, "modules.dep"))
	compareDep(t, ours, theirs)
	for i, p := range plan() {
		if p != ourPlan[i] {
			t.Errorf("modprobe %s with our indexes:\n%s\nwith depmod's:\n%s", queries[i], ourPlan[i], p)
		}
	}
	// And our load order agrees with modprobe's.
	pos := map[string]int{}
	for i, m := range order {
		pos[m.Path] = i
	}
	for i, w := range want {
		last := -1
		for _, l := range strings.Split(strings.TrimSpace(ourPlan[i]), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || f[0] != "insmod" {
				continue
			}
			rel, _ := filepath.Rel(dir, f[1])
			j, ok := pos[rel]
			if !ok {
				t.Errorf("modprobe %s loads %s, which our closure lacks", w, rel)
				continue
			}
			if j < last {
				t.Errorf("modprobe %s loads %s after %s; our order differs", w, rel, order[last].Path)
			}
			last = j
		}
	}
}

// compareDep checks that every line of depmod's modules.dep has the same
// dependencies (as a set) in ours.
func compareDep(t *testing.T, ours, theirs []byte) {
	t.Helper()
	parse := func(b []byte) map[string][]string {
		m := map[string][]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			k, v, _ := strings.Cut(l, ":")
			deps := strings.Fields(v)
			slices.Sort(deps)
			m[k] = deps
		}
		return m
	}
	o, th := parse(ours), parse(theirs)
	if len(o) != len(th) {
		t.Errorf("modules.dep: ours has %d modules, depmod's %d", len(o), len(th))
	}
	bad := 0
	for k, v := range th {
		if !slices.Equal(o[k], v) && bad < 5 {
			bad++
			t.Errorf("modules.dep %s: ours %q, depmod %q", k, o[k], v)
		}
	}
}

// writeTree writes a tree of files and directories to a host directory.
func writeTree(t *testing.T, tr *fstree.Tree, dir string) {
	t.Helper()
	err := tr.Walk(func(p string, n *fstree.Node) error {
		hp := filepath.Join(dir, p)
		switch n.Type {
		case fstree.TypeDir:
			return os.MkdirAll(hp, 0o755)
		case fstree.TypeRegular:
			r, err := n.Content.Open()
			if err != nil {
				return err
			}
			defer r.Close()
			f, err := os.Create(hp)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(f, r)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDebianModules reads the .modinfo of every module of Debian's
// arm64 kernel (about 3700), what the first Closure of a build costs.
func BenchmarkDebianModules(b *testing.B) {
	tr := debianKernel(b)
	for b.Loop() {
		k, err := Find(tr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Modules(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGenerate checks that index files made ahead by Generate are those
// Tree makes itself, and that a tree of some modules still gets its own.
func TestGenerate(t *testing.T) {
	mt := time.Unix(1_700_000_000, 0)
	trees := map[string]*fstree.Tree{}
	for _, ahead := range []bool{false, true} {
		k := synthetic(t)
		ms, err := k.Modules()
		if err != nil {
			t.Fatal(err)
		}
		if ahead {
			if err := ms.Generate(); err != nil {
				t.Fatal(err)
			}
		}
		all, err := ms.Tree(k, nil, mt)
		if err != nil {
			t.Fatal(err)
		}
		some, err := ms.Tree(k, ms.byNameOnly("leaf"), mt)
		if err != nil {
			t.Fatal(err)
		}
		trees[fmt.Sprintf("%v all", ahead)], trees[fmt.Sprintf("%v some", ahead)] = all, some
	}
	read := func(tr *fstree.Tree, p string) string {
		b, err := tr.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, name := range []string{"modules.dep", "modules.alias", "modules.softdep", "modules.dep.bin", "modules.alias.bin", "modules.builtin.bin"} {
		for _, which := range []string{"all", "some"} {
			if a, b := read(trees["false "+which], name), read(trees["true "+which], name); a != b {
				t.Errorf("%s of %s modules: %d bytes made by Tree, %d made ahead", name, which, len(a), len(b))
			}
		}
	}
	if dep := read(trees["true some"], "modules.dep"); dep != "kernel/lib/leaf.ko:\n" {
		t.Errorf("modules.dep of one module, after Generate:\n%s", dep)
	}
}
