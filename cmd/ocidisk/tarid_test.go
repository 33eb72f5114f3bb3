package main

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// tarWith writes a tar of one header, its content left out (a header can
// claim more than anyone would write), then the end of the archive.
func tarWith(t *testing.T, h *tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755, ModTime: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	// No Close: it would complain about the content; the end of the
	// archive is two zero blocks.
	buf.Write(make([]byte, 1024))
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 13.5: a PAX uid or gid outside 0..2^32-1 is an error naming the
// layer and the path (it wrapped: 2^32 became 0, a setuid file setuid
// root), and so is a PAX size no layer holds (it gave "seek: negative
// position").
func TestFlattenRefusesOutOfRangePAX(t *testing.T) {
	isolate(t)
	suid := func(uid, gid int) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: "bin/su", Mode: 0o4755, Uid: uid, Gid: gid, ModTime: time.Unix(1, 0), Format: tar.FormatPAX}
	}
	for _, tc := range []struct {
		name string
		h    *tar.Header
		want string
	}{
		{"uid 2^32", suid(1<<32, 0), "uid 4294967296 is outside 0..4294967295"},
		{"gid 2^32+5", suid(0, 1<<32+5), "gid 4294967301 is outside 0..4294967295"},
		{"size 2^63-1", &tar.Header{Typeflag: tar.TypeReg, Name: "bin/big", Mode: 0o644, Size: 1<<63 - 1, ModTime: time.Unix(1, 0), Format: tar.FormatPAX},
			"size 9223372036854775807 runs past the end of the layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layer := tarWith(t, tc.h)
			out := filepath.Join(t.TempDir(), "out.tar")
			code, stderr := flattenRun(t, "-o", out, "tar:"+layer)
			checkFailed(t, code, stderr, out, exitFailure, "layer sha256:", `"`+tc.h.Name+`"`, tc.want)
			if strings.Contains(stderr, "negative position") {
				t.Errorf("the error does not say what is wrong: %s", stderr)
			}
			// GNU tar, the reference, refuses the archive as well.
			if out, err := exec.Command(hosttool.Require(t, "tar", "tar"), "-tf", layer).CombinedOutput(); err == nil {
				t.Errorf("GNU tar lists the archive without an error:\n%s", out)
			}
		})
	}
}
