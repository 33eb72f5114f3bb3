package qcow2_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage/qcow2"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// TestReader reads back what Write wrote, and what qemu-img convert
// writes from the same raw disk (version 3 and the older compat=0.10
// version 2, with 4 KiB and 2 MiB clusters): every byte equals the raw
// disk's, unallocated and zero clusters included.
func TestReader(t *testing.T) {
	qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
	d := &disk{size: 530 * MiB, ranges: []qcow2.Range{{0, 4 * KiB}, {1*MiB + 100, 70 * KiB}, {511 * MiB, 2 * MiB}, {529*MiB + 3, MiB - 3}},
		zeros: []qcow2.Range{{3 * MiB, 256 * KiB}}}
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	d.raw(t, raw)
	want, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours.qcow2")
	writeFile(t, ours, d, d.size, d.all())
	images := map[string]string{"ocidisk": ours}
	for name, opts := range map[string]string{"v3": "", "v2": "compat=0.10", "4k": "cluster_size=4096", "2m": "cluster_size=2M"} {
		p := filepath.Join(dir, name+".qcow2")
		args := []string{"convert", "-O", "qcow2"}
		if opts != "" {
			args = append(args, "-o", opts)
		}
		if out, err := exec.Command(qemuImg, append(args, raw, p)...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		images[name] = p
	}
	for name, p := range images {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := qcow2.Open(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if q.Size() != d.size {
			t.Errorf("%s: size %d, want %d", name, q.Size(), d.size)
		}
		got := make([]byte, d.size)
		// Reads of odd sizes at odd offsets, across clusters and L2 tables.
		for off, step := int64(0), int64(0); off < d.size; off += step {
			step = min(d.size-off, 3*MiB+12345)
			if n, err := q.ReadAt(got[off:off+step], off); err != nil || n != int(step) {
				t.Fatalf("%s: ReadAt(%d bytes at %d) = %d, %v", name, step, off, n, err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the disk read differs from the raw image", name)
		}
		f.Close()
	}
}

// TestReaderRefuses: what the reader cannot read is an error saying what
// it is.
func TestReaderRefuses(t *testing.T) {
	qemuImg := hosttool.Require(t, "qemu-img", "qemu-utils")
	d := &disk{size: 8 * MiB, ranges: []qcow2.Range{{0, 256 * KiB}}}
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	d.raw(t, raw)
	run := func(args ...string) {
		if out, err := exec.Command(qemuImg, args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	compressed, overlay := filepath.Join(dir, "c.qcow2"), filepath.Join(dir, "o.qcow2")
	run("convert", "-c", "-O", "qcow2", raw, compressed)
	run("create", "-f", "qcow2", "-b", raw, "-F", "raw", overlay)
	for _, tc := range []struct{ path, want string }{
		{compressed, "compressed"},
		{overlay, "backing file"},
		{raw, "no qcow2 magic"},
	} {
		f, err := os.Open(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		q, err := qcow2.Open(f)
		if err == nil {
			_, err = q.ReadAt(make([]byte, 4096), 0)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
		f.Close()
	}
}

// TestOpenIfQcow2: a qcow2 image opens, anything without the magic is
// no qcow2 and no error, and a bad qcow2 is an error.
func TestOpenIfQcow2(t *testing.T) {
	d := &disk{size: 4 * MiB, ranges: []qcow2.Range{{0, 64 * KiB}}}
	ours := filepath.Join(t.TempDir(), "ours.qcow2")
	writeFile(t, ours, d, d.size, d.all())
	img, err := os.ReadFile(ours)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		qcow2  bool
		errSub string
	}{
		{"qcow2", img, true, ""},
		{"raw", bytes.Repeat([]byte{0xeb}, 4096), false, ""},
		{"short", []byte("QF"), false, ""},
		{"empty", nil, false, ""},
		{"magic only", []byte(qcow2.Magic + "\x00\x00"), false, "header"},
		{"version 9", append([]byte(qcow2.Magic+"\x00\x00\x00\x09"), make([]byte, 100)...), false, "version 9"},
	} {
		q, err := qcow2.OpenIfQcow2(bytes.NewReader(tc.data))
		switch {
		case tc.errSub != "":
			if err == nil || !strings.Contains(err.Error(), tc.errSub) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errSub)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case (q != nil) != tc.qcow2:
			t.Errorf("%s: opened as qcow2: %v, want %v", tc.name, q != nil, tc.qcow2)
		case q != nil && q.Size() != d.size:
			t.Errorf("%s: size %d, want %d", tc.name, q.Size(), d.size)
		}
	}
}
