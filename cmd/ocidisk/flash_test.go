package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/flash"
)

// flashImage writes a small image with a .bmap and a zstd copy: a partition
// of data with a hole in the middle.
func flashImage(t *testing.T) (img string, data []byte) {
	t.Helper()
	part := bytes.Repeat([]byte("ocidisk flash test data\n"), 200_000)
	clear(part[1<<20 : 3<<20])
	img = filepath.Join(t.TempDir(), "disk.img")
	l := &diskimage.Layout{Table: diskimage.GPT, Seed: []byte("cli flash"), Partitions: []diskimage.Partition{
		{Name: "data", Kind: diskimage.KindLinux, FS: diskimage.Raw(bytes.NewReader(part), int64(len(part)))},
	}}
	if _, err := diskimage.Write(context.Background(), img, l, diskimage.WriteOptions{Bmap: true, Compress: "zstd", KeepRaw: true}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return img, data
}

func usedCard(t *testing.T, n int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "card.img")
	if err := os.WriteFile(p, bytes.Repeat([]byte{0xa5}, n), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFlashToFile(t *testing.T) {
	img, data := flashImage(t)
	for _, in := range []string{img, img + ".zst"} {
		card := usedCard(t, len(data))
		code, stdout, stderr := runCLI(t, "flash", "--allow-file", in, card)
		if code != exitOK || !strings.Contains(stdout, "verified") || !strings.Contains(stdout, img+".bmap") {
			t.Fatalf("flash %s: exit %d\n%s%s", in, code, stdout, stderr)
		}
		got, err := os.ReadFile(card)
		if err != nil {
			t.Fatal(err)
		}
		// The partition's data arrived; its hole, and the space between the
		// GPT and the partition, were not written.
		start := int64(diskimage.DefaultFirstOffset)
		for _, off := range []int64{0, 512, start, start + 4<<20, int64(len(data)) - 512} {
			if !bytes.Equal(got[off:off+512], data[off:off+512]) {
				t.Errorf("%s: sector at %d differs from the image", in, off)
			}
		}
		for _, off := range []int64{64 << 10, 1 << 20, 3 << 20} {
			if !bytes.Equal(got[off:off+512], bytes.Repeat([]byte{0xa5}, 512)) {
				t.Errorf("%s: unmapped sector at %d was written", in, off)
			}
		}
	}
}

// Without --allow-file a regular file is refused, and a new file is made
// only with it (but never under /dev).
func TestFlashRefusals(t *testing.T) {
	img, data := flashImage(t)
	card := usedCard(t, len(data))
	newFile := filepath.Join(t.TempDir(), "new.img")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"flash", img, card}, exitFailure, "regular file, not a block device (--allow-file"},
		{[]string{"flash", "--yes", "--force", img, newFile}, exitFailure, "no such file"},
		{[]string{"flash", "--allow-file", img, img}, exitFailure, "it is the image itself"},
		{[]string{"flash", "--allow-file", "/dev/ocidisk-no-such-device", img}, exitFailure, "no such"},
		{[]string{"flash", "--allow-file", img, "/dev/ocidisk-no-such-device"}, exitFailure, "no such"},
		{[]string{"flash", "--allow-file", img, "/dev/null"}, exitFailure, "neither a block device nor a regular file"},
		{[]string{"flash", img}, exitUsage, "want IMAGE and DEVICE"},
		{[]string{"flash", "--max-size", "lots", img, card}, exitUsage, "--max-size"},
		{[]string{"flash", "--bmap", "x", "--no-bmap", img, card}, exitUsage, "exclude"},
		{[]string{"flash", "--allow-file", "--bmap", img + ".nope", img, card}, exitFailure, "block map"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, stderr %q; want exit %d, one line mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
	if _, err := os.Stat("/dev/ocidisk-no-such-device"); err == nil {
		t.Error("flash --allow-file created a file in /dev")
	}
	code, _, stderr := runCLI(t, "flash", "--allow-file", img, newFile)
	if st, err := os.Stat(newFile); code != exitOK || err != nil || st.Size() != int64(len(data)) {
		t.Errorf("flash --allow-file to a new file: exit %d %s, %v", code, stderr, err)
	}
}

// On the machine running the tests, the disk holding / is refused, even
// with --yes and --force. The library's check must refuse it first: the
// command is run only when that is certain.
func TestFlashRefusesRootDiskForReal(t *testing.T) {
	roots, err := flash.RootDisks(flash.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) == 0 {
		t.Skip("/ is not on a block device here")
	}
	img, _ := flashImage(t)
	for _, d := range roots {
		dev := "/dev/" + d
		if _, err := os.Stat(dev); err != nil {
			t.Skipf("the root disk %s has no device node here: %v", d, err)
		}
		_, err := flash.Check(flash.Host{}, dev, flash.Policy{Force: true})
		if err == nil || !strings.Contains(err.Error(), "holds the root filesystem") {
			t.Fatalf("flash.Check(%s) = %v: not refused as the root disk; not running the command", dev, err)
		}
		code, _, stderr := runCLI(t, "flash", "--yes", "--force", "--max-size", "64TiB", img, dev)
		if code != exitFailure || !strings.Contains(stderr, "refusing to write "+dev) || !strings.Contains(stderr, "holds the root filesystem /") {
			t.Errorf("ocidisk flash IMAGE %s: exit %d, %s", dev, code, stderr)
		}
	}
}

// The confirmation shows the disk and takes only a yes.
func TestFlashConfirmation(t *testing.T) {
	img, _ := flashImage(t)
	im, err := flash.Open(t.Context(), img, flash.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	tg := &flash.Target{Path: "/dev/sdb", Disk: &flash.Disk{Name: "sdb", Model: "Cruzer Blade", Size: 32 << 30, Removable: true,
		Partitions: []flash.Part{{Name: "sdb1", Size: 31 << 30}}}}
	for _, tc := range []struct {
		answer string
		ok     bool
	}{{"yes\n", true}, {"y\n", true}, {"Y\n", true}, {"\n", false}, {"no\n", false}, {"", false}, {"yess\n", false}} {
		var out bytes.Buffer
		err := ask(&out, strings.NewReader(tc.answer), im, tg)
		if (err == nil) != tc.ok {
			t.Errorf("answer %q: %v", tc.answer, err)
		}
		for _, want := range []string{"/dev/sdb: Cruzer Blade, 32.0 GiB, removable", "sdb1", "31.0 GiB", img, "Everything on /dev/sdb will be lost"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("confirmation does not show %q:\n%s", want, out.String())
			}
		}
	}
	// What the disk holds now is read with inspect's readers when they
	// know it (here a used card that holds an image).
	card := inspectDisk(t)
	var out bytes.Buffer
	tg2 := &flash.Target{Path: card, Disk: tg.Disk}
	if err := ask(&out, strings.NewReader("y\n"), im, tg2); err != nil || !strings.Contains(out.String(), "partition 1   16.0 MiB  FAT16    \"BOOT\"") ||
		!strings.Contains(out.String(), "partition 2") || !strings.Contains(out.String(), "ext4     \"root\"") {
		t.Errorf("confirmation of a used card (%v):\n%s", err, out.String())
	}
	// Not on a terminal, a device needs --yes.
	e := &env{stdin: strings.NewReader("yes\n"), stderr: &bytes.Buffer{}, tty: false}
	if err := confirm(e, im, tg); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("confirm without a terminal: %v", err)
	}
}
