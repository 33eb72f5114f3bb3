package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/testimages"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// writeTar writes entries as a tar file and returns its path.
func writeTar(t *testing.T, entries []testimages.Entry) string {
	t.Helper()
	b, err := testimages.TarOf(entries)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "root.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// inspectEntries lists a directory of the image's root with ocidisk inspect
// --json: name to type.
func inspectEntries(t *testing.T, img, path string) map[string]string {
	t.Helper()
	code, stdout, stderr := runCLI(t, "inspect", "--json", img, path)
	if code != exitOK {
		t.Fatalf("inspect %s: exit %d: %s", path, code, stderr)
	}
	var doc struct {
		Entries []struct{ Name, Type, Target string }
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("inspect %s: %v\n%s", path, err, stdout)
	}
	out := map[string]string{}
	for _, e := range doc.Entries {
		out[e.Name] = e.Type
	}
	return out
}

// Issue 13.6: an --overlay holding bin/x over a merged-/usr root (bin ->
// usr/bin) puts x into /usr/bin, beside what the root has there, and /bin
// stays the symlink, as cp -a overlay/. root/ would; it turned /bin into a
// directory holding only x.
func TestBuildOverlayOverMergedUsr(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := writeTar(t, []testimages.Entry{
		testimages.Dir("usr", 0o755), testimages.Dir("usr/bin", 0o755),
		testimages.File("usr/bin/sh", "#!sh\n", 0o755),
		testimages.Symlink("bin", "usr/bin"),
	})
	overlay := t.TempDir()
	if err := os.MkdirAll(filepath.Join(overlay, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(overlay, "bin", "x"), []byte("x\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := buildImage(t, "--kernel", "deb:"+kernel, "--overlay", overlay, "tar:"+root)
	if got := inspectEntries(t, img, "/bin")["bin"]; got != "symlink" {
		t.Errorf("/bin is a %q, want the root's symlink", got)
	}
	usrBin := inspectEntries(t, img, "/usr/bin/")
	if usrBin["x"] != "file" || usrBin["sh"] != "file" {
		t.Errorf("/usr/bin holds %v, want the root's sh and the overlay's x", usrBin)
	}
}

// Issue 13.7: a boot overlay holding IMAGE beside the kernel's Image fails
// the build, naming both: FAT names must differ in more than case, and the
// firmware or Linux would find only one of them.
func TestBuildRefusesFATNamesDifferingInCase(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root := debian.BusyboxRoot(t)
	boot := t.TempDir()
	if err := os.WriteFile(filepath.Join(boot, "IMAGE"), []byte("not the kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "t.img")
	code, stdout, stderr := runCLI(t, "build", "-o", out, "--kernel", "deb:"+kernel, "--boot-overlay", boot, "oci:"+root)
	if code != exitFailure || !strings.Contains(stderr, "/IMAGE and /Image") || !strings.Contains(stderr, "case") {
		t.Errorf("build with IMAGE beside Image: exit %d\n%s%s\nwant exit 1 and an error naming both", code, stdout, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the failed build left %s", out)
	}
}

// Issue 13.8: a control character in --cmdline-append, or in a build
// file's cmdline-append (through a variable), is a usage error naming the
// flag and the character, before anything is built: a newline would have
// become new directives in extlinux.conf.
func TestBuildRefusesControlCharactersInCmdline(t *testing.T) {
	isolate(t)
	root := writeTar(t, []testimages.Entry{testimages.Dir("etc", 0o755)})
	out := filepath.Join(t.TempDir(), "t.img")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"newline", []string{"--cmdline-append", "quiet\nappend init=/bin/sh"}},
		{"escape", []string{"--cmdline-append", "console=ttyAMA0", "--cmdline-append", "x=\x1b[2J"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"build", "-o", out}, tc.args...), "tar:"+root)
			code, _, stderr := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(stderr, "--cmdline-append") || !strings.Contains(stderr, "control character") || !strings.Contains(stderr, "U+00") {
				t.Errorf("exit %d, %q; want exit 2 naming the flag and the character", code, stderr)
			}
		})
	}
	// The same through a build file whose variable holds a newline.
	dir := t.TempDir()
	file := filepath.Join(dir, "ocidisk.yaml")
	if err := os.WriteFile(file, []byte("source: tar:"+root+"\ncmdline-append: [\"${EXTRA}\"]\noutput: {path: "+out+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EXTRA", "quiet\ninitrd /evil")
	code, _, stderr := runCLI(t, "build", "-f", file)
	if code != exitUsage || !strings.Contains(stderr, "control character") || !strings.Contains(stderr, "U+000A") {
		t.Errorf("build file: exit %d, %q; want exit 2 naming the character", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused build left %s", out)
	}
}
