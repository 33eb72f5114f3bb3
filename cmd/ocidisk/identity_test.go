package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/testimages/debian"
)

// hostTree writes a few files and directories under dir.
func hostTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// touchAll sets every time under dir to when, as `touch` after a checkout
// or a copy does.
func touchAll(t *testing.T, dir string, when time.Time) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, when, when)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Issue 13.10: under SOURCE_DATE_EPOCH, a dir: root or --overlay whose
// files were only touched (their times clamp to the same epoch) gives the
// same image, byte for byte: the disk ID and UUIDs derive from the tree as
// stored, not from the host's mtimes. A change the image stores does
// change them. flatten --format ext4 of a dir: keeps its UUID too.
func TestIdentifiersIgnoreTouchedHostFiles(t *testing.T) {
	kernel := debian.KernelDeb(t)
	root, overlay := t.TempDir(), t.TempDir()
	hostTree(t, root, map[string]string{"etc/hostname": "box\n", "usr/bin/tool": "#!/bin/sh\n"})
	hostTree(t, overlay, map[string]string{"etc/motd": "hello\n"})
	past := time.Unix(1_750_000_000, 0) // after SOURCE_DATE_EPOCH: clamped
	touchAll(t, root, past)
	touchAll(t, overlay, past)

	build := func() string {
		img := buildImage(t, "--kernel", "deb:"+kernel, "--overlay", overlay, "dir:"+root) // SOURCE_DATE_EPOCH=1700000000
		return fileHash(t, img)
	}
	flatten := func() string {
		out := filepath.Join(t.TempDir(), "root.ext4")
		if code, stderr := flattenRun(t, "--format", "ext4", "-o", out, "dir:"+root); code != exitOK {
			t.Fatalf("flatten: exit %d: %s", code, stderr)
		}
		return fileHash(t, out)
	}
	first, firstExt4 := build(), flatten()
	touchAll(t, root, time.Unix(1_800_000_000, 0))
	touchAll(t, overlay, time.Unix(1_800_000_000, 0))
	second, secondExt4 := build(), flatten()
	touchAll(t, root, time.Unix(1_900_000_000, 0))
	touchAll(t, overlay, time.Unix(1_900_000_000, 0))
	third := build()
	if first != second || second != third {
		t.Errorf("touching the host files changed the image: %s, %s, %s", first, second, third)
	}
	if firstExt4 != secondExt4 {
		t.Errorf("touching the host files changed flatten's ext4: %s, %s", firstExt4, secondExt4)
	}
	// A change the image holds changes it.
	hostTree(t, overlay, map[string]string{"etc/motd": "hello, world\n"})
	touchAll(t, overlay, time.Unix(1_900_000_000, 0))
	if changed := build(); changed == third {
		t.Error("a longer /etc/motd in the overlay gave the same image")
	}
}
