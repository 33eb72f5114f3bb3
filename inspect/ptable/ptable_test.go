package ptable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// mbrDisk returns a disk of n sectors with the given MBR entries
// (boot flag, type, first sector, sectors).
func mbrDisk(n int, entries ...[4]uint32) []byte {
	d := make([]byte, n*sector)
	binary.LittleEndian.PutUint32(d[440:], 0xdeadbeef)
	for i, e := range entries {
		p := d[446+16*i:]
		p[0], p[4] = byte(e[0]), byte(e[1])
		binary.LittleEndian.PutUint32(p[8:], e[2])
		binary.LittleEndian.PutUint32(p[12:], e[3])
	}
	d[510], d[511] = 0x55, 0xaa
	return d
}

func TestMBR(t *testing.T) {
	for _, tc := range []struct {
		name    string
		disk    []byte
		want    string // error text; "" for success
		noTable bool
	}{
		{"two partitions", mbrDisk(100, [4]uint32{0x80, 0x0c, 2, 40}, [4]uint32{0, 0x83, 42, 58}), "", false},
		{"no signature", make([]byte, 4096), "no partition table", true},
		{"boot code, not a table", mbrDisk(100, [4]uint32{0x12, 0x83, 2, 10}), "boot flag 0x12", true},
		{"empty table", mbrDisk(100), "no partition table", true},
		{"past the end", mbrDisk(100, [4]uint32{0, 0x83, 50, 60}), "extends past the end of the image", false},
		{"overlap", mbrDisk(100, [4]uint32{0, 0x83, 2, 40}, [4]uint32{0, 0x83, 30, 10}), "partitions 1 and 2 overlap", false},
		{"inside the table", mbrDisk(100, [4]uint32{0, 0x83, 0, 10}), "inside the partition table", false},
		{"tiny", make([]byte, 100), "too small", false},
	} {
		tb, err := Read(bytes.NewReader(tc.disk), int64(len(tc.disk)))
		if tc.want == "" {
			if err != nil || tb.Type != "mbr" || tb.DiskID != "deadbeef" || len(tb.Partitions) != 2 {
				t.Errorf("%s: %+v, %v", tc.name, tb, err)
				continue
			}
			p := tb.Partitions[0]
			if p.Start != 2*sector || p.Size != 40*sector || p.Type != "0c" || p.TypeName != "FAT32 (LBA)" || !p.Bootable || p.PartUUID != "deadbeef-01" {
				t.Errorf("%s: partition 1 %+v", tc.name, p)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrNoTable) != tc.noTable {
			t.Errorf("%s: %v; want an error mentioning %q (no table: %v)", tc.name, err, tc.want, tc.noTable)
		}
	}
}

func TestGUID(t *testing.T) {
	b := []byte{0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b}
	if g := guid(b); g != "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" {
		t.Errorf("guid %s", g)
	}
}
