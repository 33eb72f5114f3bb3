package main

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// Issue 13.9: ext4 holds times from 1901-12-13 20:45:52 to 2446-05-10
// 22:38:55; later and earlier times clamp to those ends instead of
// wrapping (2500 became 1955). debugfs, e2fsprogs' reader, is the judge.
func TestFlattenExt4ClampsTimes(t *testing.T) {
	isolate(t)
	debugfs := hosttool.Require(t, "debugfs", "e2fsprogs")
	files := []struct {
		name  string
		mtime time.Time
		want  string // as debugfs prints it in UTC
	}{
		{"late", time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC), "Thu May 10 22:38:55 2446"},
		{"latest", time.Date(2446, 5, 10, 22, 38, 55, 0, time.UTC), "Thu May 10 22:38:55 2446"},
		{"after2038", time.Date(2300, 6, 1, 0, 0, 0, 0, time.UTC), "Fri Jun  1 00:00:00 2300"},
		{"early", time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC), "Fri Dec 13 20:45:52 1901"},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, ModTime: f.mtime, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join(t.TempDir(), "times.tar")
	if err := os.WriteFile(layer, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "root.ext4")
	if code, stderr := flattenRun(t, "--format", "ext4", "-o", out, "tar:"+layer); code != exitOK {
		t.Fatalf("flatten: exit %d: %s", code, stderr)
	}
	mtime := regexp.MustCompile(`(?m)^\s*mtime: 0x[0-9a-f:]+ -- (.*)$`)
	for _, f := range files {
		cmd := exec.Command(debugfs, "-R", "stat /"+f.name, out)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		stat, err := cmd.Output()
		if err != nil {
			t.Fatalf("debugfs stat /%s: %v", f.name, err)
		}
		m := mtime.FindSubmatch(stat)
		if m == nil || string(m[1]) != f.want {
			t.Errorf("/%s (mtime %s): debugfs reads %q, want %q", f.name, f.mtime, m, f.want)
		}
	}
}
