package diskimage_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
	"github.com/ocidisk/ocidisk/diskimage"
)

// TestLayout writes MBR and GPT images with a FAT boot partition, an ext4
// root and a blob at 8 KiB, and checks them with sfdisk (the layout asked
// for, identifiers known before writing, and -V clean), with go-diskfs's
// readers, with each partition's fsck, and the blob in place.
func TestLayout(t *testing.T) {
	for _, table := range []diskimage.Table{diskimage.MBR, diskimage.GPT} {
		t.Run(string(table), func(t *testing.T) {
			im := newImage(table, 1)
			l := im.layout
			// Identifiers before anything is sized or written, as a boot
			// partition's cmdline needs them.
			diskID, bootUUID, rootUUID := l.DiskID(), l.PartUUID(0), l.PartUUID(1)
			rootMin, err := l.Partitions[1].FS.MinSize()
			if err != nil {
				t.Fatal(err)
			}
			img, res := write(t, l, diskimage.WriteOptions{})

			const mib = 1 << 20
			bootStart, bootSize := int64(4*mib), int64(64*mib)
			rootStart, rootSize := bootStart+bootSize, (rootMin+mib-1)/mib*mib
			size := (rootStart + rootSize + mib - 1) / mib * mib
			if table == diskimage.GPT {
				size = (rootStart + rootSize + 33*512 + mib - 1) / mib * mib
			}
			if st, err := os.Stat(img); err != nil || st.Size() != size || res.Size != size {
				t.Fatalf("image size %v (%v), result %d, want %d", st.Size(), err, res.Size, size)
			}

			d := sfdisk(t, img).PartitionTable
			type part struct {
				start, size int64
				typ, uuid   string
				name        string
				boot        bool
				attrs       string
			}
			var got []part
			for _, p := range d.Partitions {
				got = append(got, part{p.Start, p.Size, strings.ToLower(p.Type), strings.ToLower(p.UUID), p.Name, p.Bootable, p.Attrs})
			}
			var want []part
			switch table {
			case diskimage.MBR:
				if d.Label != "dos" || d.ID != "0x"+diskID {
					t.Errorf("sfdisk: label %s id %s, want dos 0x%s", d.Label, d.ID, diskID)
				}
				if bootUUID != diskID+"-01" || rootUUID != diskID+"-02" {
					t.Errorf("PARTUUIDs %s %s for disk %s", bootUUID, rootUUID, diskID)
				}
				want = []part{
					{bootStart / 512, bootSize / 512, "c", "", "", true, ""}, // 64 MiB: FAT16, but mkfs.fat's 0x0c/0x0e rule is by FAT type
					{rootStart / 512, rootSize / 512, "83", "", "", false, ""},
				}
				if f, ok := l.Partitions[0].FS.(interface{ FATType(int64) int }); ok && f.FATType(bootSize) == 16 {
					want[0].typ = "e"
				}
			case diskimage.GPT:
				if d.Label != "gpt" || !strings.EqualFold(d.ID, diskID) {
					t.Errorf("sfdisk: label %s id %s, want gpt %s", d.Label, d.ID, diskID)
				}
				want = []part{
					{bootStart / 512, bootSize / 512, "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", bootUUID, "boot", false, "LegacyBIOSBootable"},
					{rootStart / 512, rootSize / 512, "b921b045-1df0-41c3-af44-4c6f280d3fae", rootUUID, "root", false, ""},
				}
				// 56 entries end the array at 8 KiB, where the blob starts;
				// the first usable LBA is past the blob.
				blobEnd := l.Blobs[0].Offset + l.Blobs[0].Size
				if wantFirst := (blobEnd + 511) / 512; d.FirstLBA != wantFirst || d.LastLBA != size/512-1-1-14 {
					t.Errorf("sfdisk: first-lba %d last-lba %d, want %d and %d", d.FirstLBA, d.LastLBA, wantFirst, size/512-16)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("sfdisk partitions:\n got %+v\nwant %+v", got, want)
			}
			for i, p := range res.Partitions {
				if p.PartUUID != l.PartUUID(i) || p.Start != want[i].start*512 || p.Size != want[i].size*512 {
					t.Errorf("result partition %d: %+v", i+1, p)
				}
			}
			out := sfdiskVerify(t, img)
			if table == diskimage.GPT && !strings.Contains(out, "Using 2 out of 56 partitions.") {
				t.Errorf("sfdisk -V:\n%s", out)
			}
			readWithDiskfs(t, img, table, res)
			checkPartitions(t, img, im, res)
		})
	}
}

// readWithDiskfs reads the table back with go-diskfs, a second reader
// that checks the GPT CRCs.
func readWithDiskfs(t *testing.T, img string, table diskimage.Table, res *diskimage.Result) {
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var starts []int64
	switch table {
	case diskimage.MBR:
		tb, err := mbr.Read(f, 512, 512)
		if err != nil {
			t.Fatal(err)
		}
		if tb.UUID() != res.DiskID {
			t.Errorf("go-diskfs: MBR id %s, want %s", tb.UUID(), res.DiskID)
		}
		for _, p := range tb.Partitions {
			if p.Type != 0 {
				starts = append(starts, p.GetStart())
			}
		}
	case diskimage.GPT:
		tb, err := gpt.Read(f, 512, 512)
		if err != nil {
			t.Fatal(err)
		}
		if tb.RecoveredFromBackup || !strings.EqualFold(tb.GUID, res.DiskID) {
			t.Errorf("go-diskfs: GPT recovered from backup %v, GUID %s, want %s", tb.RecoveredFromBackup, tb.GUID, res.DiskID)
		}
		for _, p := range tb.Partitions {
			starts = append(starts, p.GetStart())
		}
	}
	if len(starts) != len(res.Partitions) {
		t.Fatalf("go-diskfs: %d partitions, want %d", len(starts), len(res.Partitions))
	}
	for i, s := range starts {
		if s != res.Partitions[i].Start {
			t.Errorf("go-diskfs: partition %d at %d, want %d", i+1, s, res.Partitions[i].Start)
		}
	}
}
