package pipeline

import (
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/testimages/debian"
	"github.com/ocidisk/ocidisk/verity"
)

// TestDataArea: the data area is whole blocks, leaves room for its tree,
// and one block more would not.
func TestDataArea(t *testing.T) {
	for _, size := range []int64{2 * verity.BlockSize, 1 << 20, 64 << 20, 512<<20 + 7*512, 3 << 30} {
		d := dataArea(size)
		next := d + verity.BlockSize
		if d <= 0 || d%verity.BlockSize != 0 || d+verity.Size(d) > size || next+verity.Size(next) <= size {
			t.Errorf("partition of %d bytes: data area %d, tree %d", size, d, verity.Size(d))
		}
	}
	if d := dataArea(verity.BlockSize); d != 0 {
		t.Errorf("a one-block partition has a data area of %d bytes", d)
	}
}

// TestBuildVerity builds an A/B image with a verified erofs root and a
// slot image: each tree verifies against the root hash the result and
// the command line name, the slot image's .verity file holds the
// arguments the command line has, and the same inputs give the same
// bytes. A root of a given size gets the largest data area it holds.
func TestBuildVerity(t *testing.T) {
	kernel := "deb:" + debian.KernelDeb(t)
	root := "oci:" + debian.BusyboxRoot(t)
	var sums []string
	for _, size := range []int64{0, 0, 400 << 20} {
		cfg := testConfig(t, root, kernel)
		cfg.Verity = true
		cfg.Layout = boards.LayoutOptions{AB: true, RootFS: boards.Erofs, RootSize: size}
		cfg.SlotImage = cfg.Output + ".root"
		res, err := Build(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		v := res.Verity
		if v == nil {
			t.Fatal("no Verity in the result")
		}
		if !strings.Contains(res.Cmdline, " "+v.Args+" ") && !strings.HasSuffix(res.Cmdline, " "+v.Args) {
			t.Errorf("command line %q does not carry %q", res.Cmdline, v.Args)
		}
		args, err := os.ReadFile(v.ArgsPath)
		if err != nil || string(args) != v.Args+"\n" || v.ArgsPath != cfg.SlotImage+".verity" {
			t.Errorf("%s holds %q (%v), want %q", v.ArgsPath, args, err, v.Args)
		}
		var part int64
		for _, p := range res.Partitions {
			if p.Name == "root-a" {
				part = p.Start
				if p.Size != res.SlotImage.Size {
					t.Errorf("root-a is %d bytes, the slot image %d", p.Size, res.SlotImage.Size)
				}
			}
		}
		if size > 0 && v.HashOffset != dataArea(size) {
			t.Errorf("root of %d bytes: the tree at %d, want %d", size, v.HashOffset, dataArea(size))
		}
		checkTree(t, cfg.Output, part, res.SlotImage.Size, v)
		checkTree(t, cfg.SlotImage, 0, res.SlotImage.Size, v)
		if size == 0 {
			sums = append(sums, fileSum(t, cfg.Output)+" "+fileSum(t, cfg.SlotImage))
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("two builds of the same inputs differ: %s, then %s", sums[0], sums[1])
	}
}

// checkTree verifies the tree of the partition at off of path against v.
func checkTree(t *testing.T, path string, off, size int64, v *Verity) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	part := io.NewSectionReader(f, off, size)
	tr, err := verity.ReadSuperblock(part, v.HashOffset)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if tr.DataBlocks != v.DataBlocks || hex.EncodeToString(tr.Salt) != v.Salt || v.HashOffset+verity.Size(v.HashOffset) > size {
		t.Errorf("%s: superblock %+v, result %+v", path, tr, v)
	}
	if tr.RootHash, err = hex.DecodeString(v.RootHash); err != nil {
		t.Fatal(err)
	}
	if err := verity.Verify(part, part, tr); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

// TestVerityConfig: a verified root must be read-only; an ext4 root is a
// usage error naming Verity.
func TestVerityConfig(t *testing.T) {
	cfg := testConfig(t, "oci:unused", "")
	cfg.Verity = true
	for _, tc := range []struct {
		fs   boards.FS
		want string
	}{
		{"", "the root is ext4"}, // the board's
		{boards.Ext4, "the root is ext4"},
		{boards.Squashfs, ""},
		{boards.Erofs, ""},
	} {
		cfg.Layout.RootFS = tc.fs
		err := cfg.Validate()
		field, _ := IsConfigError(err)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s root: %v", tc.fs, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || field != "Verity" || !errors.Is(err, ErrUsage)):
			t.Errorf("%s root: err = %v (field %q, usage %v), want a usage error on Verity saying %q", tc.fs, err, field, errors.Is(err, ErrUsage), tc.want)
		}
	}
	if err := (Config{Board: cfg.Board, Source: "x", Output: "y"}).Validate(); errors.Is(err, ErrUsage) {
		t.Errorf("a valid config matches ErrUsage: %v", err)
	}
}
