package devmapper

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/verity"
)

// TestEncodeTargets walks the table as the kernel's populate_table does:
// the first spec at data_start, each next one at its predecessor's next,
// 8-byte aligned, each after the NUL ending the parameters before it.
func TestEncodeTargets(t *testing.T) {
	ts := []Target{
		{Start: 0, Length: 8, Type: "zero"},
		{Start: 8, Length: 1 << 20, Type: "verity", Params: "1 /dev/vda2 /dev/vda2 4096 4096 131072 32769 sha256 ab -"},
		{Start: 1<<20 + 8, Length: 16, Type: "error", Params: "x"},
	}
	data, err := encodeTargets(ts)
	if err != nil {
		t.Fatal(err)
	}
	buf := encodeRequest(request{name: "root", targets: uint32(len(ts)), data: data})
	h := decodeHeader(buf)
	if h.name != "root" || h.dataStart != unix.SizeofDmIoctl || int(h.dataSize) != len(buf) || h.targetCount != 3 || h.version != ioctlVersion {
		t.Fatalf("header %+v", h)
	}
	ne := binary.NativeEndian
	next, minSize := h.dataStart, uint32(unix.SizeofDmIoctl)
	at := uint32(0)
	for i, want := range ts {
		if next < minSize || next%8 != 0 {
			t.Fatalf("target %d: next %d, previous parameters end at %d", i, next, minSize)
		}
		at += next
		spec := buf[at:]
		params := spec[unix.SizeofDmTargetSpec:]
		end := bytes.IndexByte(params, 0)
		got := Target{Start: ne.Uint64(spec[0:]), Length: ne.Uint64(spec[8:]),
			Type: string(bytes.TrimRight(spec[24:40], "\x00")), Params: string(params[:end])}
		if got != want {
			t.Errorf("target %d: %+v, want %+v", i, got, want)
		}
		next, minSize = ne.Uint32(spec[20:]), uint32(unix.SizeofDmTargetSpec+end+1)
	}
	for _, bad := range []Target{{Type: ""}, {Type: "a-type-name-too-long"}, {Type: "linear", Params: "a\x00b"}} {
		if _, err := encodeTargets([]Target{bad}); err == nil {
			t.Errorf("target %+v: no error", bad)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"root": true, "": false, "a/b": false, strings.Repeat("x", 127): true, strings.Repeat("x", 128): false} {
		if err := checkName(name); (err == nil) != ok {
			t.Errorf("checkName(%q) = %v", name, err)
		}
	}
	if p := (Info{Dev: unix.Mkdev(254, 3)}).Path(); p != "/dev/dm-3" {
		t.Errorf("Path = %s", p)
	}
}

// openControl opens the control node, or skips the test when this kernel
// has no device-mapper (or the test is not root). The kernel is the judge
// here, so there is nothing to install: TestLiveInGuest runs this test in
// a QEMU guest, whose kernel has it.
func openControl(t *testing.T) *Control {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("device-mapper needs root")
	}
	c, err := Open()
	if err != nil {
		t.Skipf("no device-mapper here: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLive creates devices in the running kernel: a read-only zero
// device, then a verity device over a loop device holding data and the
// tree package verity made, which reads back the data until a byte of it
// is flipped, and then fails with EIO.
func TestLive(t *testing.T) {
	c := openControl(t)
	if v := c.Version(); v[0] != 4 {
		t.Fatalf("version %v", v)
	}
	t.Run("zero", func(t *testing.T) {
		const name = "ocidisk-test-zero"
		info, err := c.Create(name, true, Target{Length: 2048, Type: "zero"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := c.Remove(name); err != nil {
				t.Error(err)
			}
			if _, err := c.Status(name); !errors.Is(err, unix.ENXIO) {
				t.Errorf("status after remove: %v, want ENXIO", err)
			}
		}()
		st, err := c.Status(name)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Active() || !st.ReadOnly() || st.Suspended() || st.TargetCount != 1 || st.Dev != info.Dev || st.Name != name {
			t.Errorf("status %+v (flags %#x), created %+v", st, st.Flags, info)
		}
		b, err := os.ReadFile(info.Path())
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 2048*SectorSize || !bytes.Equal(b, make([]byte, len(b))) {
			t.Errorf("read %d bytes from %s, want %d zeros", len(b), info.Path(), 2048*SectorSize)
		}
		if _, err := c.Create(name, true, Target{Length: 8, Type: "zero"}); !errors.Is(err, unix.EBUSY) {
			t.Errorf("second create of %s: %v, want EBUSY", name, err)
		}
	})
	t.Run("verity", func(t *testing.T) {
		const name = "ocidisk-test-verity"
		const blocks = 1000
		path := filepath.Join(t.TempDir(), "disk")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		data := make([]byte, blocks*verity.BlockSize)
		for i := range data {
			data[i] = byte(i*7 + i/4096)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		tr, err := verity.Build(f, 0, int64(len(data)), f, int64(len(data)), verity.Options{Salt: []byte("devmapper")})
		if err != nil {
			t.Fatal(err)
		}
		loop := attachLoop(t, f)
		table := Target{Length: blocks * verity.BlockSize / SectorSize, Type: "verity", Params: tr.Table(loop, loop)}
		info, err := c.Create(name, true, table)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := c.Remove(name); err != nil {
				t.Error(err)
			}
		}()
		got, err := os.ReadFile(info.Path())
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes of %s (%v): not the data", len(got), info.Path(), err)
		}
		// Flip a byte of block 600 behind the device's back; the verity
		// device must refuse that block, and only it.
		if _, err := f.WriteAt([]byte{data[600*verity.BlockSize+9] ^ 1}, 600*verity.BlockSize+9); err != nil {
			t.Fatal(err)
		}
		f.Sync()
		dm, err := os.OpenFile(info.Path(), os.O_RDONLY|syscall.O_DIRECT, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer dm.Close()
		_ = unix.IoctlSetInt(int(dm.Fd()), unix.BLKFLSBUF, 0)
		buf := alignedBuf(verity.BlockSize)
		for _, b := range []int64{599, 600, 601} {
			_, err := dm.ReadAt(buf, b*verity.BlockSize)
			if (b == 600) != errors.Is(err, syscall.EIO) {
				t.Errorf("read block %d: %v", b, err)
			}
		}
	})
}

// alignedBuf returns n bytes aligned for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := (4096 - int(uintptr(unsafe.Pointer(&b[0]))%4096)) % 4096
	return b[off : off+n]
}

// attachLoop attaches f to a free loop device and returns its path,
// detaching it when the test ends: the guest's busybox has no losetup.
func attachLoop(t *testing.T, f *os.File) string {
	t.Helper()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no loop devices: %v", err)
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		t.Fatalf("LOOP_CTL_GET_FREE: %v", err)
	}
	path := fmt.Sprintf("/dev/loop%d", n)
	l, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(int(l.Fd()), unix.LOOP_SET_FD, int(f.Fd())); err != nil {
		l.Close()
		t.Fatalf("LOOP_SET_FD %s: %v", path, err)
	}
	t.Cleanup(func() {
		_ = unix.IoctlSetInt(int(l.Fd()), unix.LOOP_CLR_FD, 0)
		l.Close()
	})
	return path
}
