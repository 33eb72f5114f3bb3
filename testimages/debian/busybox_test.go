package debian

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// readLayout opens the single image of an OCI layout, checking that the
// index names it for linux/arm64.
func readLayout(t *testing.T, dir string) v1.Image {
	t.Helper()
	return readLayoutFor(t, dir, Platform())
}

// readLayoutFor is readLayout for another platform, which the index and
// the image's config must both name.
func readLayoutFor(t *testing.T, dir string, want v1.Platform) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate %s: %v", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("%s: index has %d manifests, want 1", dir, len(m.Manifests))
	}
	d := m.Manifests[0]
	if d.Platform == nil || !d.Platform.Equals(want) {
		t.Errorf("%s: index platform %v, want %v", dir, d.Platform, want)
	}
	if got := d.Annotations["org.opencontainers.image.ref.name"]; got != Tag {
		t.Errorf("%s: ref.name %q, want %q", dir, got, Tag)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Platform(); got == nil || !got.Equals(want) {
		t.Errorf("%s: config platform %v, want %v", dir, got, want)
	}
	return img
}

// flatten extracts an image with go-containerregistry's own flattener
// (not ocidisk's) into name -> header and content.
func flatten(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		hdrs[name] = h
		if h.Typeflag == tar.TypeReg {
			if data[name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	return hdrs, data
}

func TestBusyboxRoot(t *testing.T) {
	for _, tc := range []struct {
		arch, marker string
		machine      elf.Machine
		class        elf.Class
	}{
		{"arm64", Marker, elf.EM_AARCH64, elf.ELFCLASS64},
		{"arm64", "SECOND-ROOT-MARKER", elf.EM_AARCH64, elf.ELFCLASS64},
		{"armhf", Marker, elf.EM_ARM, elf.ELFCLASS32},
	} {
		t.Run(tc.arch+"/"+tc.marker, func(t *testing.T) {
			platform, err := PlatformOf(tc.arch)
			if err != nil {
				t.Fatal(err)
			}
			img := readLayoutFor(t, BusyboxRootArch(t, tc.arch, tc.marker), platform)
			marker := tc.marker
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != 3 {
				t.Errorf("%d layers, want 3", len(layers))
			}
			hdrs, data := flatten(t, img)

			f, err := elf.NewFile(bytes.NewReader(data["bin/busybox"]))
			if err != nil {
				t.Fatalf("bin/busybox: %v", err)
			}
			if f.Machine != tc.machine || f.Class != tc.class {
				t.Errorf("bin/busybox is %v %v, want %v %v", f.Class, f.Machine, tc.class, tc.machine)
			}
			// armhf: the hard-float EABI5 ABI, not armel's soft float.
			if tc.machine == elf.EM_ARM {
				const eabi5, hardFloat = 0x05000000, 0x400 // EF_ARM_EABI_VER5, EF_ARM_ABI_FLOAT_HARD
				if flags := elf32Flags(data["bin/busybox"]); flags&0xff000000 != eabi5 || flags&hardFloat == 0 {
					t.Errorf("bin/busybox e_flags %#x, want EABI5 with the hard-float ABI", flags)
				}
			}
			for _, tc := range []struct {
				name     string
				typ      byte
				mode     int64
				linkname string
			}{
				{"bin/busybox", tar.TypeReg, 0o755, ""},
				{"bin/sh", tar.TypeSymlink, 0o777, "busybox"},
				{"bin/mount", tar.TypeSymlink, 0o777, "busybox"},
				{"sbin/poweroff", tar.TypeSymlink, 0o777, "../bin/busybox"},
				{"sbin/init", tar.TypeReg, 0o755, ""},
				{"dev/console", tar.TypeChar, 0o600, ""},
				{"dev/null", tar.TypeChar, 0o666, ""},
				{"proc", tar.TypeDir, 0o555, ""},
				{"sys", tar.TypeDir, 0o555, ""},
				{"tmp", tar.TypeDir, 0o1777, ""},
				{"run", tar.TypeDir, 0o755, ""},
				{"etc/passwd", tar.TypeReg, 0o644, ""},
			} {
				h := hdrs[tc.name]
				if h == nil {
					t.Errorf("%s missing", tc.name)
					continue
				}
				if h.Typeflag != tc.typ || h.Mode != tc.mode || h.Linkname != tc.linkname {
					t.Errorf("%s: type %c mode %o link %q; want %c %o %q", tc.name, h.Typeflag, h.Mode, h.Linkname, tc.typ, tc.mode, tc.linkname)
				}
			}
			init := string(data["sbin/init"])
			if !strings.HasPrefix(init, "#!/bin/busybox sh\n") || !strings.Contains(init, "echo '"+marker+"'") ||
				!strings.Contains(init, "poweroff -f") {
				t.Errorf("sbin/init does not print %s and power off:\n%s", marker, init)
			}
			// Every applet the init calls must be linked.
			for _, a := range []string{"mount", "uname", "grep", "tail", "sync", "poweroff"} {
				if hdrs["bin/"+a] == nil && hdrs["sbin/"+a] == nil {
					t.Errorf("applet %s has no link", a)
				}
			}
		})
	}
}

// elf32Flags returns e_flags of a little-endian 32-bit ELF header, which
// debug/elf does not expose: the ARM ABI version and float ABI.
func elf32Flags(b []byte) uint32 {
	if len(b) < 40 {
		return 0
	}
	return binary.LittleEndian.Uint32(b[36:40])
}

func TestInitScriptSyntax(t *testing.T) {
	sh := hosttool.Require(t, "dash", "dash")
	script, err := InitScript(Marker)
	if err != nil {
		t.Fatal(err)
	}
	// busybox sh is a POSIX shell like dash; -n parses without running.
	file := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(file, script, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sh, "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("dash -n: %v\n%s", err, out)
	}
	for _, bad := range []string{"", "it's", "two\nlines", `back\slash`} {
		if _, err := InitScript(bad); err == nil {
			t.Errorf("InitScript(%q) accepted", bad)
		}
	}
}

// Two builds from the same package give the same bytes; another marker
// gives another image.
func TestBusyboxRootDeterministic(t *testing.T) {
	deb := Package(t, BusyboxPackage)
	digest := func(marker string) v1.Hash {
		dir := filepath.Join(t.TempDir(), "layout")
		script, err := InitScript(marker)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeBusyboxRoot(t.Context(), dir, deb, script, Platform()); err != nil {
			t.Fatal(err)
		}
		d, err := readLayout(t, dir).Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b, c := digest(Marker), digest(Marker), digest("OTHER")
	if a != b {
		t.Errorf("two builds differ: %s and %s", a, b)
	}
	if a == c {
		t.Errorf("another marker gives the same image %s", a)
	}
}
