package debian

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func TestMetaTarget(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Pkg
		want string
	}{
		{"kernel metapackage", Pkg{Version: "6.1.192-2", Size: 1448, Depends: "linux-image-6.1.0-56-arm64 (= 6.1.192-2)"}, "linux-image-6.1.0-56-arm64"},
		{"other version", Pkg{Version: "6.1.192-2", Size: 1448, Depends: "linux-image-6.1.0-56-arm64 (= 6.1.190-1)"}, ""},
		{"two deps", Pkg{Version: "1", Size: 1448, Depends: "a (= 1), b"}, ""},
		{"alternatives", Pkg{Version: "1", Size: 1448, Depends: "a (= 1) | b"}, ""},
		{"big package", Pkg{Version: "1", Size: 1 << 20, Depends: "a (= 1)"}, ""},
		{"no deps", Pkg{Version: "1", Size: 100}, ""},
		{"unversioned", Pkg{Version: "1", Size: 100, Depends: "a"}, ""},
	} {
		if got := metaTarget(tc.p); got != tc.want {
			t.Errorf("%s: metaTarget = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseStanza(t *testing.T) {
	in := "Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: arm64\n" +
		"Depends: libc6 (>= 2.34)\nDescription: x\n continued\nFilename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb\n" +
		"Size: 822236\nSHA256: 732c\n\nPackage: second\nVersion: 2\n"
	got := parseStanza([]byte(in))
	want := Pkg{Name: "busybox-static", Version: "1:1.35.0-4+deb12u1+b1", Arch: "arm64",
		Filename: "pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb", SHA256: "732c",
		Size: 822236, Depends: "libc6 (>= 2.34)"}
	if got != want {
		t.Errorf("parseStanza = %+v\nwant %+v", got, want)
	}
	if got.DebName() != "busybox-static_1.35.0-4+deb12u1+b1_arm64.deb" {
		t.Errorf("DebName = %q", got.DebName())
	}
}

// The fetched packages are what dpkg-deb says they are: the kernel
// metapackage resolved to a real image, an Architecture: all package found
// without its architecture.
func TestPackages(t *testing.T) {
	dpkgDeb := hosttool.Require(t, "dpkg-deb", "dpkg")
	for _, tc := range []struct {
		deb          string
		prefix, arch string
	}{
		{KernelDeb(t), "linux-image-6.1.0-", "arm64"},
		{Package(t, BusyboxPackage), "busybox-static", "arm64"},
		{Package(t, "raspi-firmware"), "raspi-firmware", "all"},
	} {
		out, err := exec.Command(dpkgDeb, "-f", tc.deb, "Package", "Architecture").Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", tc.deb, err)
		}
		s := string(out)
		if !strings.Contains(s, "Package: "+tc.prefix) || !strings.Contains(s, "Architecture: "+tc.arch+"\n") {
			t.Errorf("%s: control says\n%s\nwant a %s* package for %s", filepath.Base(tc.deb), s, tc.prefix, tc.arch)
		}
		if strings.Contains(s, "Package: "+KernelPackage+"\n") {
			t.Errorf("%s: the metapackage was not followed", tc.deb)
		}
		if strings.Contains(filepath.Base(tc.deb), ":") {
			t.Errorf("%s: a colon in the file name breaks deb:FILE spellings", tc.deb)
		}
	}
}
