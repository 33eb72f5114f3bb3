package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// sfdiskTable is what `sfdisk --json` says of a disk.
type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		LastLBA    int64  `json:"lastlba"`
		Partitions []struct {
			Start, Size int64
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// newDisk partitions a sparse file of size bytes with sfdisk.
func newDisk(t *testing.T, sfdisk, script string, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sfdisk, "--no-reread", "-q", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v: %s", err, out)
	}
	return img
}

func readTable(t *testing.T, sfdisk, img string) sfdiskTable {
	t.Helper()
	out, err := exec.Command(sfdisk, "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var d sfdiskTable
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGrowLast partitions disks with sfdisk, makes the file larger as a
// larger card would be, grows the last partition and has sfdisk judge the
// result: no errors or warnings (for a GPT, none about the backup header
// not being at the end), the partition ending at the last MiB of the
// disk, and a second growth finding nothing to do.
func TestGrowLast(t *testing.T) {
	sfdisk := hosttool.Require(t, "sfdisk", "fdisk")
	const mib = 1 << 20
	for _, tc := range []struct {
		name, script string
		size, grown  int64 // the image as built, and the card
		partno       int
		err          string
	}{
		{name: "mbr", script: "label: dos\nstart=2048, size=20480, type=c\nstart=22528, size=20480, type=83\nstart=43008, size=40960, type=83\n",
			size: 64 * mib, grown: 256*mib + 12345*512, partno: 3},
		{name: "gpt", script: "label: gpt\nstart=2048, size=20480\nstart=22528, size=20480\nstart=43008, size=40960\n",
			size: 64 * mib, grown: 2048 * mib, partno: 3},
		{name: "gpt odd size", script: "label: gpt\nstart=2048, size=20480\nstart=22528, size=40960\n",
			size: 48 * mib, grown: 100*mib + 7*512, partno: 2},
		{name: "mbr not last", script: "label: dos\nstart=2048, size=20480, type=c\nstart=22528, size=20480, type=83\n",
			size: 64 * mib, grown: 128 * mib, partno: 1, err: "partition 1 is not the last on the disk (partition 2 follows it)"},
		{name: "gpt not last", script: "label: gpt\nstart=2048, size=20480\nstart=22528, size=20480\n",
			size: 64 * mib, grown: 128 * mib, partno: 1, err: "partition 1 is not the last on the disk (partition 2 follows it)"},
		{name: "mbr missing", script: "label: dos\nstart=2048, size=20480, type=c\n",
			size: 64 * mib, grown: 128 * mib, partno: 2, err: "MBR has no partition 2"},
		{name: "gpt missing", script: "label: gpt\nstart=2048, size=20480\n",
			size: 64 * mib, grown: 128 * mib, partno: 5, err: "GPT has no partition 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := newDisk(t, sfdisk, tc.script, tc.size)
			before := readTable(t, sfdisk, img)
			if err := os.Truncate(img, tc.grown); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			g, err := growLast(f, tc.grown, 512, tc.partno, mib)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(sfdisk, "-V", img).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "No errors detected.") || strings.Contains(string(out), "arning") {
				t.Fatalf("sfdisk -V: %v\n%s", err, out)
			}
			after := readTable(t, sfdisk, img)
			p := after.PartitionTable.Partitions[tc.partno-1]
			end := tc.grown / mib * mib / 512 // the last whole MiB
			if after.PartitionTable.Label == "gpt" {
				end = (tc.grown/512 - 33) * 512 / mib * mib / 512
			}
			if p.Start+p.Size != end || g.start != p.Start*512 || g.size != p.Size*512 || g.old != before.PartitionTable.Partitions[tc.partno-1].Size*512 {
				t.Errorf("partition %d at %d, %d sectors (growth %+v); want it to end at sector %d", tc.partno, p.Start, p.Size, g, end)
			}
			for i, q := range after.PartitionTable.Partitions {
				if b := before.PartitionTable.Partitions[i]; i != tc.partno-1 && q != b {
					t.Errorf("partition %d changed: %+v, was %+v", i+1, q, b)
				}
			}
			if after.PartitionTable.Label == "gpt" {
				checkBackupGPT(t, f, tc.size, tc.grown)
				if last := tc.grown/512 - 34; after.PartitionTable.LastLBA != last {
					t.Errorf("last usable LBA %d, want %d", after.PartitionTable.LastLBA, last)
				}
			}
			again, err := growLast(f, tc.grown, 512, tc.partno, mib)
			if err != nil || !again.alreadyAtTheEnd {
				t.Errorf("second growth = %+v, %v; want nothing to do", again, err)
			}
		})
	}
}

// checkBackupGPT reads the backup header where the primary says it is and
// finds it at the disk's last sector, pointing back at the primary, and
// no GPT header left where the image used to end.
func checkBackupGPT(t *testing.T, f *os.File, oldSize, size int64) {
	t.Helper()
	primary, err := readGPTHeader(f, 1, 512)
	if err != nil {
		t.Fatal(err)
	}
	last := uint64(size/512 - 1)
	if primary.alternate != last {
		t.Errorf("primary header names the backup at LBA %d, want %d", primary.alternate, last)
	}
	backup, err := readGPTHeader(f, last, 512)
	if err != nil {
		t.Fatalf("backup header at LBA %d: %v", last, err)
	}
	if backup.self != last || backup.alternate != 1 || backup.entriesLBA != last-32 || backup.lastUsable != primary.lastUsable {
		t.Errorf("backup header %+v", backup)
	}
	old := make([]byte, 8)
	if _, err := f.ReadAt(old, oldSize-512); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(old, []byte("EFI PART")) {
		t.Error("the old backup header is still where the image ended")
	}
}

func TestParseCmdlineLayout(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "root=/dev/vda2", want: "slot= data= grow=false overlay= dirs=etc,var"},
		{in: "root=PARTUUID=x-02 ro ocidisk.slot=b ocidisk.data=PARTUUID=x-04 ocidisk.grow ocidisk.overlay=PARTUUID=x-04",
			want: "slot=b data=PARTUUID=x-04 grow=true overlay=PARTUUID=x-04 dirs=etc,var"},
		{in: "root=/dev/vda2 ocidisk.overlay=tmpfs ocidisk.overlaydirs=/etc/,var/lib,root", want: "slot= data= grow=false overlay=tmpfs dirs=etc,var/lib,root"},
		{in: "root=/dev/vda2 ocidisk.overlay=tmpfs ocidisk.overlay=none", want: "slot= data= grow=false overlay= dirs=etc,var"},
		{in: "root=/dev/vda2 ocidisk.data=/dev/vda4 ocidisk.grow=0", want: "slot= data=/dev/vda4 grow=false overlay= dirs=etc,var"},
		{in: "root=/dev/vda2 ocidisk.overlay=disk", err: "ocidisk.overlay=disk: want tmpfs"},
		{in: "root=/dev/vda2 ocidisk.overlaydirs=etc,../x", err: "ocidisk.overlaydirs=etc,../x"},
		{in: "root=/dev/vda2 ocidisk.grow", err: "ocidisk.grow without ocidisk.data="},
	} {
		c, err := parseCmdline(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseCmdline(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseCmdline(%q): %v", tc.in, err)
			continue
		}
		got := "slot=" + c.slot + " data=" + c.data + " grow=" + map[bool]string{true: "true", false: "false"}[c.grow] +
			" overlay=" + c.overlay + " dirs=" + strings.Join(c.overlayDirs, ",")
		if got != tc.want {
			t.Errorf("parseCmdline(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
