package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 13, unclear messages: ocidisk test on a file that is not a disk
// image, a compressed image, or one without the partition the board boots
// from, says so at once instead of waiting at the U-Boot prompt until the
// timeout.
func TestTestRefusesWhatTheBoardCannotBoot(t *testing.T) {
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.txt")
	os.WriteFile(notImage, []byte(strings.Repeat("not a disk image\n", 1000)), 0o644)
	img, _ := flashImage(t) // a GPT with one partition, the data
	zst := img + ".zst"
	// An MBR whose only partition is number 2: qemu-virt-arm64 boots
	// from partition 1.
	mbr := make([]byte, 4<<20)
	e := mbr[446+16:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], 2048)
	mbr[510], mbr[511] = 0x55, 0xaa
	noBoot := filepath.Join(dir, "second-only.img")
	os.WriteFile(noBoot, mbr, 0o644)
	for _, tc := range []struct {
		image, want string
	}{
		{notImage, notImage + " has no partition table: not a disk image"},
		{zst, "is compressed (zstd): decompress it first"},
		{noBoot, "has no partition 1, which board qemu-virt-arm64 boots from (its mbr table has 1 partitions)"},
	} {
		start := time.Now()
		code, _, stderr := runCLI(t, "test", "--expect", "login:", "--timeout", "30s", tc.image)
		if code != exitFailure || !strings.Contains(stderr, tc.want) {
			t.Errorf("test %s: exit %d, %q; want exit 1 saying %q", tc.image, code, stderr, tc.want)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("test %s took %s: QEMU was started", tc.image, took)
		}
	}
}
