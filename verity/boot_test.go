package verity_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/pipeline"
	"github.com/ocidisk/ocidisk/qemu"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
	"github.com/ocidisk/ocidisk/verity"
)

// probeInit reads /verity-probe before handing over to the test root's
// init: a root whose probe does not read back stops there.
const probeInit = `#!/bin/busybox sh
if /bin/busybox cat /verity-probe >/dev/null; then exec /sbin/init; fi
echo "verity-probe: read failed"
/bin/busybox poweroff -f
`

// probeSize is two squashfs blocks of random bytes: squashfs stores them
// as they are (they do not compress) and whole (no fragment), so that
// the test can find them in the image.
const probeSize = 256 << 10

// TestBootVerityRoot proves the init side end to end until the build has
// a --verity option: it builds the busybox test root as squashfs through
// the pipeline, computes the root partition's hash tree, builds again
// with the same inputs plus the verity parameters on the kernel command
// line (the root filesystem comes out the same), writes the tree after
// the squashfs in the partition and boots it under QEMU: the init sets up
// dm-verity and the root's init runs from /dev/dm-0. Then one flipped
// byte in a file the boot reads must stop the boot with the kernel's
// verity error.
func TestBootVerityRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	hosttool.Require(t, "qemu-system-aarch64", "qemu-system-arm")
	b, err := boards.Load("qemu-virt-arm64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.QEMU.Firmware.BIOS); err != nil {
		hosttool.Missing(t, b.QEMU.Firmware.BIOS+" not found: apt-get install "+b.QEMU.Firmware.Package)
	}
	kernel, root := debian.KernelDeb(t), debian.BusyboxRoot(t)

	dir := t.TempDir()
	overlay := filepath.Join(dir, "overlay")
	probe := make([]byte, probeSize)
	rand.NewChaCha8([32]byte{'v', 'e', 'r', 'i', 't', 'y'}).Read(probe)
	if err := os.Mkdir(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(overlay, "verity-probe"), probe, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(overlay, "verity-init"), []byte(probeInit), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.Config{
		Board: b, Source: "oci:" + root, Kernel: "deb:" + kernel, Overlays: []string{overlay},
		Layout:        boards.LayoutOptions{RootFS: boards.Squashfs, RootSize: boards.Auto},
		CmdlineAppend: []string{"init=/verity-init", "ocidisk.onfail=poweroff"},
		Epoch:         time.Unix(1_700_000_000, 0),
		Sources:       source.Options{Platform: pipeline.Platform(b), CacheDir: filepath.Join(dir, "cache")},
	}
	salt := []byte("ocidisk verity boot test")

	// The first build: the root filesystem alone decides the tree.
	cfg.Output = filepath.Join(dir, "first.img")
	res, err := pipeline.Build(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	part := rootPartition(t, res)
	dataSize := part.Size
	img := verity.OpenRW(t, cfg.Output)
	first, err := verity.Build(img, part.Start, dataSize, discard{}, 0, verity.Options{Salt: salt})
	if err != nil {
		t.Fatal(err)
	}

	// The second build, with room for the tree and the command line
	// that asks for it.
	cfg.Output = filepath.Join(dir, "verity.img")
	cfg.Layout.RootSize = (dataSize + verity.Size(dataSize) + 1<<20 - 1) &^ (1<<20 - 1)
	cfg.CmdlineAppend = append(cfg.CmdlineAppend,
		protocol.ArgVerity+"="+hex.EncodeToString(first.RootHash),
		protocol.ArgVerityHashOffset+"="+strconv.FormatInt(dataSize, 10),
		protocol.ArgVeritySalt+"="+hex.EncodeToString(salt),
		protocol.ArgVerityDataBlocks+"="+strconv.FormatUint(first.DataBlocks, 10))
	if res, err = pipeline.Build(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	part = rootPartition(t, res)
	img = verity.OpenRW(t, cfg.Output)
	tr, err := verity.Build(img, part.Start, dataSize, img, part.Start+dataSize, verity.Options{Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tr.RootHash, first.RootHash) {
		t.Fatalf("the root filesystem differs between two builds of the same root: root hash %x, then %x", first.RootHash, tr.RootHash)
	}

	boot := func(expect ...string) (*qemu.Result, error) {
		var res []*regexp.Regexp
		for _, e := range expect {
			res = append(res, regexp.MustCompile(e))
		}
		return qemu.Test(t.Context(), qemu.Config{Profile: b.QEMU, Image: cfg.Output}, qemu.TestOptions{
			Expect: res, Timeout: 4 * time.Minute, TailLines: 40})
	}
	r, err := boot(
		fmt.Sprintf(`ocidisk-init: verity: /dev/vda2 \(PARTUUID=\S+\) checked against root hash %x\.\.\. as /dev/dm-0`, tr.RootHash[:8]),
		`ocidisk-test: root /dev/dm-0 / squashfs ro`,
		regexp.QuoteMeta(debian.Marker),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range regexp.MustCompile(`(?m)^ocidisk-(init|test): .*$`).FindAllString(r.Console, -1) {
		t.Log("guest: " + l)
	}

	// One byte of the probe's data, flipped: Verify and the kernel both
	// name its block.
	at := find(t, img, part.Start, dataSize, probe[:64]) + 5000
	verity.Flip(t, img, part.Start+at)
	var ce *verity.CorruptError
	sect := io.NewSectionReader(img, part.Start, part.Size)
	if err := verity.Verify(sect, sect, &verity.Tree{DataBlocks: tr.DataBlocks, Salt: salt, RootHash: tr.RootHash, HashOffset: dataSize}); !errors.As(err, &ce) || ce.Metadata || ce.Block != uint64(at/verity.BlockSize) {
		t.Fatalf("Verify after flipping data block %d: %v", at/verity.BlockSize, err)
	}
	r, err = boot(regexp.QuoteMeta(debian.Marker))
	if err == nil {
		t.Fatal("a root with a flipped byte booted")
	}
	want := fmt.Sprintf(`^device-mapper: verity: \S+: data block %d is corrupted$`, at/verity.BlockSize)
	if r == nil || !regexp.MustCompile(want).MatchString(r.Reason) {
		t.Fatalf("boot failed, but not with %q:\n%v", want, err)
	}
	t.Logf("the corrupted root: %s", r.Reason)
}

// discard is an io.WriterAt that keeps nothing: the first build's tree is
// wanted only for its root hash.
type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

func rootPartition(t testing.TB, res *pipeline.Result) diskimage.PartitionInfo {
	t.Helper()
	for _, p := range res.Partitions {
		if p.Name == "root" {
			return p
		}
	}
	t.Fatalf("no root partition in %+v", res.Partitions)
	return diskimage.PartitionInfo{}
}

// find returns where b is within the n bytes at off of f, relative to off.
func find(t *testing.T, f *os.File, off, n int64, b []byte) int64 {
	t.Helper()
	data := make([]byte, n)
	if _, err := f.ReadAt(data, off); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, b)
	if i < 0 {
		t.Fatal("the probe's bytes are not in the root partition as they are")
	}
	return int64(i)
}
