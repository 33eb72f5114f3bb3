package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// secondStage is debootstrap's second stage for an unpacked root, as
// testimages/debian.ExtractRoot's documentation measured it: debconf asks
// nothing, no daemon starts, base-passwd's preinst (the only one that
// matters on a fresh system, which the extract variant does not run)
// writes /etc/passwd and /etc/group, then dpkg configures everything in
// dependency order. The machine ID the configuration makes is emptied,
// as mmdebstrap leaves it, so that each system makes its own on first
// boot. (The ssh host keys stay: nothing in the image would make new ones.)
var secondStage = []string{
	"--env", "DEBIAN_FRONTEND=noninteractive", "--env", "DEBCONF_NONINTERACTIVE_SEEN=true", "--env", "LC_ALL=C.UTF-8",
	"--run", `printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d`,
	"--run", "/var/lib/dpkg/info/base-passwd.preinst install",
	"--run", "dpkg --configure -a",
	"--run", "rm /usr/sbin/policy-rc.d && : > /etc/machine-id",
}

// The second stage of a Debian install without binfmt_misc: an arm64 root
// unpacked by mmdebstrap and not configured is configured by dpkg inside
// the guest; the committed image builds with ocidisk build and boots with
// systemd to a login prompt.
func TestCommitSecondStage(t *testing.T) {
	_, kernel := commitInputs(t)
	src := "oci:" + debian.ExtractRoot(t).Layout
	dir := t.TempDir()
	dest := "oci:" + filepath.Join(dir, "layout") + ":configured"
	start := time.Now()
	args := append(append([]string{"--kernel", kernel}, secondStage...), "--timeout", "90m", "-o", dest, src)
	code, stdout, stderr := commitRun(t, args...)
	if code != 0 {
		t.Fatalf("commit: exit %d: %s", code, stderr)
	}
	t.Logf("second stage committed in %s", time.Since(start).Round(time.Second))
	if !strings.Contains(stdout, "Setting up systemd (") {
		t.Errorf("dpkg did not configure systemd:\n%s", stdout)
	}
	img := filepath.Join(dir, "disk.img")
	var bout, berr strings.Builder
	if code := run(t.Context(), []string{"build", "--kernel", kernel, "-o", img, dest}, nil, &bout, &berr, false); code != 0 {
		t.Fatalf("build: exit %d: %s", code, berr.String())
	}
	var tout, terr strings.Builder
	code = run(t.Context(), []string{"test", "--expect", "login:", "--timeout", "12m", img}, nil, &tout, &terr, false)
	if code != 0 {
		t.Fatalf("test: exit %d: %s", code, terr.String())
	}
	t.Logf("%s", strings.TrimSpace(tout.String()))
}

// apt-get inside a commit, with the guest on QEMU's user network, against
// the Debian archive this machine's apt uses: the package arrives, runs,
// and is in the new layer. The root is testimages/debian's configured
// systemd root.
func TestCommitAptInstall(t *testing.T) {
	_, kernel := commitInputs(t)
	uri, err := debian.ArchiveURI("bookworm")
	if err != nil {
		hosttool.Missing(t, err.Error())
	}
	root := debian.SystemdRoot(t)
	dest := filepath.Join(t.TempDir(), "layout")
	code, stdout, stderr := commitRun(t, "--kernel", kernel, "--net", "user",
		"--env", "DEBIAN_FRONTEND=noninteractive",
		"--run", "rm -f /etc/apt/sources.list.d/* && echo 'deb "+uri+" bookworm main' > /etc/apt/sources.list",
		"--run", "apt-get update && apt-get install -y --no-install-recommends hello",
		"--run", "hello && rm -rf /var/lib/apt/lists/*",
		"--timeout", "60m", "-o", "oci:"+dest, "oci:"+root.Layout)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "Hello, world!") {
		t.Errorf("hello did not run in the guest:\n%s", stdout)
	}
	layer := newLayer(t, dest)
	for _, p := range []string{"usr/bin/hello", "etc/apt/sources.list"} {
		if !slices.ContainsFunc(layer, func(r fstree.Record) bool { return r.Path == p && r.Type == fstree.TypeRegular }) {
			t.Errorf("the new layer has no file %s", p)
		}
	}
	if slices.ContainsFunc(layer, func(r fstree.Record) bool { return r.Path == "etc/resolv.conf" }) {
		t.Error("the guest's resolv.conf was committed")
	}
}
