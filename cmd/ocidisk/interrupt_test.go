package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/internal/outfile"
	"github.com/ocidisk/ocidisk/testimages"
)

// TestMain lets a test run this very binary as the ocidisk command
// (OCIDISK_TEST_AS_COMMAND=1), to send it signals.
func TestMain(m *testing.M) {
	if os.Getenv("OCIDISK_TEST_AS_COMMAND") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// cachedLayer returns the one file under the cache's layers/ for a test
// that isolated its cache.
func cachedLayer(t *testing.T) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "ocidisk", "layers", "sha256", "*"))
	if err != nil || len(m) != 1 {
		t.Fatalf("cached layers: %q, %v", m, err)
	}
	return m[0]
}

// seenBefore marks the layer of a tar: FILE as one a build decompressed
// before, as the cache does, so that the next build keeps its uncompressed
// copy: a first build keeps none (see package source).
func seenBefore(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "ocidisk", "seen", "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%x", sha256.Sum256(b))), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Issue 13.4: a cached layer is verified against its diffID before use. A
// flipped byte, or a truncated entry, is removed with a warning naming the
// cache file, and the layer is decompressed again from its blob: the
// output is the same as from a sound cache, and the cache is sound again.
func TestCachedLayerIsVerified(t *testing.T) {
	isolate(t)
	body := strings.Repeat("cached layer content\n", 500)
	layer := filepath.Join(t.TempDir(), "layer.tar.gz")
	raw, err := testimages.TarOf([]testimages.Entry{testimages.File("etc/data", body, 0o644)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layer, gzipped(t, raw), 0o644); err != nil {
		t.Fatal(err)
	}
	flatten := func() (string, string) {
		out := filepath.Join(t.TempDir(), "out.tar")
		code, stderr := flattenRun(t, "-o", out, "tar:"+layer)
		if code != exitOK {
			t.Fatalf("flatten: exit %d: %s", code, stderr)
		}
		return fileHash(t, out), stderr
	}
	seenBefore(t, layer)
	want, _ := flatten()
	entry := cachedLayer(t)
	for _, damage := range []struct {
		name string
		do   func(b []byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[bytes.Index(b, []byte("content"))] ^= 0x20; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
	} {
		b, err := os.ReadFile(entry)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(entry, damage.do(b), 0o644); err != nil {
			t.Fatal(err)
		}
		got, stderr := flatten()
		if got != want {
			t.Errorf("%s: the output differs from the one a sound cache gives", damage.name)
		}
		if !strings.Contains(stderr, "WARN") || !strings.Contains(stderr, entry) {
			t.Errorf("%s: no warning naming the cache file %s: %q", damage.name, entry, stderr)
		}
		if fixed, _ := os.ReadFile(entry); !bytes.Equal(fixed, raw) {
			t.Errorf("%s: the cache entry was not made again", damage.name)
		}
	}
}

// waitFor polls until a file matching glob appears, or the process ends.
func waitFor(t *testing.T, cmd *exec.Cmd, done <-chan error, glob string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if m, _ := filepath.Glob(glob); len(m) > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("%s ended (%v) before %s appeared", cmd, err, glob)
		default:
		}
	}
	t.Fatalf("%s did not appear", glob)
}

// Issue 13.4: SIGHUP, SIGTERM or SIGINT while a layer is decompressed into
// the cache, or while the output is written, ends the command with exit 1
// and leaves no temporary in the cache or beside the output, and no output.
func TestInterruptRemovesTemporaries(t *testing.T) {
	if testing.Short() {
		t.Skip("writes large inputs")
	}
	isolate(t)
	// A bzip2 layer decodes slowly enough to be caught at it.
	var text bytes.Buffer
	for i := 0; text.Len() < 24<<20; i++ {
		text.WriteString(strings.Repeat(string(rune('a'+i%26)), i%50) + " ocidisk interrupt test line\n")
	}
	raw, err := testimages.TarOf([]testimages.Entry{testimages.File("big.txt", text.String(), 0o644)})
	if err != nil {
		t.Fatal(err)
	}
	bz := exec.Command(hosttool.Require(t, "bzip2", "bzip2"), "-1", "-c")
	bz.Stdin = bytes.NewReader(raw)
	compressed, err := bz.Output()
	if err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join(t.TempDir(), "layer.tar.bz2")
	if err := os.WriteFile(layer, compressed, 0o644); err != nil {
		t.Fatal(err)
	}
	seenBefore(t, layer) // so that it is decompressed into the cache, under a temporary name
	// A dir: tree with a large file takes a while to write as ext4.
	tree := t.TempDir()
	big, err := os.Create(filepath.Join(tree, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	for range 600 << 20 / len(chunk) {
		big.Write(chunk)
	}
	big.Close()

	cache := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "ocidisk")
	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		args   []string
		during string // glob of the temporary to catch the command at
	}{
		{"SIGHUP decompressing", syscall.SIGHUP, []string{"flatten", "-o", "OUT/out.tar", "tar:" + layer}, filepath.Join(cache, "layers", "sha256", ".tmp-*")},
		{"SIGTERM writing", syscall.SIGTERM, []string{"flatten", "--format", "ext4", "-o", "OUT/out.ext4", "dir:" + tree}, "OUT/.out.ext4.tmp-*"},
		{"SIGINT writing", syscall.SIGINT, []string{"flatten", "--format", "ext4", "-o", "OUT/out.ext4", "dir:" + tree}, "OUT/.out.ext4.tmp-*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "OUT/", out+"/")
			}
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(os.Environ(), "OCIDISK_TEST_AS_COMMAND=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			waitFor(t, cmd, done, strings.ReplaceAll(tc.during, "OUT/", out+"/"))
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatal("the command did not end after the signal")
			}
			if cmd.ProcessState.ExitCode() != exitFailure {
				t.Errorf("exit %v, want %d; stderr: %s", err, exitFailure, stderr.String())
			}
			for _, dir := range []string{out, filepath.Join(cache, "layers", "sha256"), filepath.Join(cache, "blobs", "sha256")} {
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					if strings.Contains(e.Name(), ".tmp-") || dir == out {
						t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
					}
				}
			}
		})
	}
}

// Issue 13.4: temporaries that a killed process left (older than
// outfile.StaleAfter, and held by nobody) are swept by the next run, in
// the cache and beside its output; nothing else is.
func TestStaleTemporariesAreSwept(t *testing.T) {
	isolate(t)
	layer := filepath.Join(t.TempDir(), "layer.tar.gz")
	raw, _ := testimages.TarOf([]testimages.Entry{testimages.File("etc/motd", "hi\n", 0o644)})
	os.WriteFile(layer, gzipped(t, raw), 0o644)
	cache := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "ocidisk")
	out := filepath.Join(t.TempDir(), "out.tar")
	old := time.Now().Add(-2 * outfile.StaleAfter)
	mk := func(p string, when time.Time) string {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("left by a killed run"), 0o644)
		os.Chtimes(p, when, when)
		return p
	}
	stale := []string{
		mk(filepath.Join(cache, "layers", "sha256", ".tmp-1234"), old),
		mk(filepath.Join(cache, "blobs", "sha256", ".tmp-5678"), old),
		mk(filepath.Join(filepath.Dir(out), ".out.tar.tmp-42"), old),
	}
	kept := []string{
		mk(filepath.Join(cache, "layers", "sha256", ".tmp-999"), time.Now()), // a running build's, perhaps
		mk(filepath.Join(cache, "layers", "sha256", "notes.tmp-1"), old),
		mk(filepath.Join(filepath.Dir(out), ".other.tar.tmp-42"), old),
		mk(filepath.Join(filepath.Dir(out), ".out.tar.tmp-42x"), old),
	}
	if code, stderr := flattenRun(t, "-o", out, "tar:"+layer); code != exitOK {
		t.Fatalf("flatten: exit %d: %s", code, stderr)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("stale temporary %s was not swept", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
