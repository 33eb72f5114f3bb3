package debian

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func TestStatusStanza(t *testing.T) {
	const control = "Package: adduser\nVersion: 3.134\nArchitecture: all\nDepends: passwd\n" +
		"Description: add and remove users\n This package includes\n .\n more.\n"
	for _, tc := range []struct {
		name      string
		conffiles []string
		want      string
	}{
		{"no conffiles", nil, "Package: adduser\nStatus: install ok unpacked\nVersion: 3.134\nArchitecture: all\nDepends: passwd\n" +
			"Description: add and remove users\n This package includes\n .\n more.\n"},
		{"conffiles before the description", []string{"etc/adduser.conf", "etc/deluser.conf"},
			"Package: adduser\nStatus: install ok unpacked\nVersion: 3.134\nArchitecture: all\nDepends: passwd\n" +
				"Conffiles:\n /etc/adduser.conf newconffile\n /etc/deluser.conf newconffile\n" +
				"Description: add and remove users\n This package includes\n .\n more.\n"},
	} {
		if got := statusStanza(control, tc.conffiles); got != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
	if got := statusStanza("Package: x\nVersion: 1\n", []string{"etc/x"}); got != "Package: x\nStatus: install ok unpacked\nVersion: 1\nConffiles:\n /etc/x newconffile\n" {
		t.Errorf("conffiles without a description: %q", got)
	}
}

// A database made from real packages is what dpkg itself reads: every
// package unpacked, its files listed, its conffiles known; and it survives
// the cache's tar form unchanged.
func TestUnpackedDatabase(t *testing.T) {
	query := hosttool.Require(t, "dpkg-query", "dpkg")
	debs := []string{Package(t, BusyboxPackage), Package(t, "raspi-firmware"), Package(t, "u-boot-sunxi")}
	const existing = "Package: usr-is-merged\nStatus: install ok installed\nMaintainer: m\nArchitecture: all\nVersion: 1\nDescription: d\n\n"
	db, err := unpackedDatabase(t.Context(), debs, existing)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dpkg.tar")
	if err := db.writeTar(file); err != nil {
		t.Fatal(err)
	}
	again, err := readDpkgTar(file)
	if err != nil {
		t.Fatal(err)
	}
	// The same packages give the same bytes (packages are read in
	// parallel; maps are never written out unsorted).
	db2, err := unpackedDatabase(t.Context(), debs, existing)
	if err != nil {
		t.Fatal(err)
	}
	file2 := filepath.Join(t.TempDir(), "dpkg.tar")
	if err := db2.writeTar(file2); err != nil {
		t.Fatal(err)
	}
	if a, b := readBytes(t, file), readBytes(t, file2); !bytes.Equal(a, b) {
		t.Error("two databases of the same packages differ")
	}
	if again.packages != 4 || db.packages != 4 || !slices.Equal(again.conffiles, db.conffiles) || len(again.files) != len(db.files) {
		t.Errorf("read back %d packages, %d conffiles, %d files; wrote %d, %d, %d",
			again.packages, len(again.conffiles), len(again.files), db.packages, len(db.conffiles), len(db.files))
	}
	admin := t.TempDir()
	for f, b := range again.files {
		p := filepath.Join(admin, strings.TrimPrefix(f, dpkgDir+"/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(query, "--admindir="+admin, "-W", "-f", "${Package} ${db:Status-Abbrev}\n").CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-query: %v\n%s", err, out)
	}
	want := "busybox-static iU \nraspi-firmware iU \nu-boot-sunxi iU \nusr-is-merged ii \n"
	if string(out) != want {
		t.Errorf("dpkg-query -W says\n%s\nwant\n%s", out, want)
	}
	// dpkg -L reads the .list file: busybox's binary is in it.
	out, err = exec.Command(query, "--admindir="+admin, "-L", "busybox-static").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\n/bin/busybox\n") || !strings.HasPrefix(string(out), "/.\n") {
		t.Errorf("dpkg-query -L busybox-static: %v\n%s", err, out)
	}
	// raspi-firmware has conffiles; dpkg-query shows them as dpkg recorded.
	out, err = exec.Command(query, "--admindir="+admin, "-W", "-f", "${Conffiles}\n", "raspi-firmware").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " newconffile") {
		t.Errorf("raspi-firmware's conffiles: %v\n%s", err, out)
	}
	for _, c := range db.conffiles {
		if !strings.HasPrefix(c, "etc/") {
			t.Errorf("conffile %s: want a path relative to the root, under etc/", c)
		}
	}
	if len(db.conffiles) == 0 {
		t.Error("no conffiles read")
	}
}

func readBytes(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
