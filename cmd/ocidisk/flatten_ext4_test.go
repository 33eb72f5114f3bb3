package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages"
)

// TestFlattenExt4Corpus writes every case of the conformance corpus as a
// bare ext4 image with `ocidisk flatten --format ext4` and has e2fsck
// judge it; mkfs/ext4's own tests read the trees back field by field.
func TestFlattenExt4Corpus(t *testing.T) {
	isolate(t)
	e2fsck := hosttool.Require(t, "e2fsck", "e2fsprogs")
	debugfs := hosttool.Require(t, "debugfs", "e2fsprogs")
	for _, c := range testimages.Corpus() {
		if c.WantErr != "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			spec, err := fileSpellings()[0].write(dir, c)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "root.ext4")
			if code, stderr := flattenRun(t, "--format", "ext4", "--label", "corpus", "-o", out, spec); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if b, err := exec.Command(e2fsck, "-fn", out).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn: %v\n%s", err, b)
			}
			b, err := exec.Command(debugfs, "-R", "stats", out).CombinedOutput()
			if err != nil || !strings.Contains(string(b), "Filesystem volume name:   corpus") {
				t.Fatalf("debugfs stats: %v, label not set:\n%.400s", err, b)
			}
		})
	}
}

// TestFlattenExt4Size checks --size: a tree larger than the size fails,
// giving both sizes and leaving nothing; an explicit size is the file's.
func TestFlattenExt4Size(t *testing.T) {
	isolate(t)
	c := caseNamed(t, testimages.Corpus()[0].Name)
	dir := t.TempDir()
	spec, err := fileSpellings()[0].write(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "root.ext4")
	code, stderr := flattenRun(t, "--format", "ext4", "--size", "64KiB", "-o", out, spec)
	checkFailed(t, code, stderr, out, 1, "65536")
	if code, stderr := flattenRun(t, "--format", "ext4", "--size", "96MiB", "-o", out, spec); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	st, err := os.Stat(out)
	if err != nil || st.Size() != 96<<20 {
		t.Fatalf("stat %s: %v, size %d, want %d", out, err, st.Size(), 96<<20)
	}
	for _, bad := range [][]string{{"--size", "lots"}, {"--label", "seventeen-bytes!!"}} {
		out := filepath.Join(t.TempDir(), "root.ext4")
		code, stderr := flattenRun(t, append(append([]string{"--format", "ext4"}, bad...), "-o", out, spec)...)
		checkFailed(t, code, stderr, out, 2, bad[0])
	}
}
