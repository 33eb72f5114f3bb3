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

// TestFlattenErofsCorpus writes every case of the conformance corpus as a
// bare erofs image with `ocidisk flatten --format erofs` and has
// fsck.erofs judge it, and blkid read its label; mkfs/erofs's own tests
// read the trees back field by field.
func TestFlattenErofsCorpus(t *testing.T) {
	isolate(t)
	fsck := hosttool.Require(t, "fsck.erofs", "erofs-utils")
	blkid := hosttool.Require(t, "blkid", "util-linux")
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
			out := filepath.Join(dir, "root.erofs")
			if code, stderr := flattenRun(t, "--format", "erofs", "--label", "corpus", "-o", out, spec); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if b, err := exec.Command(fsck, out).CombinedOutput(); err != nil || strings.Contains(string(b), "<E>") {
				t.Fatalf("fsck.erofs: %v\n%s", err, b)
			}
			b, err := exec.Command(blkid, "-p", "-o", "export", out).CombinedOutput()
			if err != nil || !strings.Contains(string(b), "TYPE=erofs") || !strings.Contains(string(b), "LABEL=corpus") {
				t.Fatalf("blkid -p: %v, not an erofs labelled corpus:\n%s", err, b)
			}
		})
	}
}

// TestFlattenErofsSize checks --size with erofs: a tree larger than the
// size fails, giving both sizes and leaving nothing; an explicit size is
// the file's.
func TestFlattenErofsSize(t *testing.T) {
	isolate(t)
	c := caseNamed(t, testimages.Corpus()[0].Name)
	dir := t.TempDir()
	spec, err := fileSpellings()[0].write(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "root.erofs")
	code, stderr := flattenRun(t, "--format", "erofs", "--size", "1KiB", "-o", out, spec)
	checkFailed(t, code, stderr, out, 1, "1024")
	if code, stderr := flattenRun(t, "--format", "erofs", "--size", "8MiB", "-o", out, spec); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	st, err := os.Stat(out)
	if err != nil || st.Size() != 8<<20 {
		t.Fatalf("stat %s: %v, size %d, want %d", out, err, st.Size(), 8<<20)
	}
}
