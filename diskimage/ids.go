package diskimage

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// DiskID returns the disk's identifier as Linux shows it: the MBR disk
// signature as 8 hex digits, or the GPT disk GUID, lower case. It depends
// only on Seed or ID, never on sizes.
func (l *Layout) DiskID() string {
	if l.Table == GPT {
		g, err := l.diskGUID()
		if err != nil {
			return l.ID
		}
		return formatGUID(g)
	}
	sig, err := l.signature()
	if err != nil {
		return l.ID
	}
	return fmt.Sprintf("%08x", sig)
}

// PartUUID returns the PARTUUID Linux gives l.Partitions[i], for
// root=PARTUUID=... on a kernel command line: the disk signature and the
// partition number ("1a2b3c4d-02") for MBR, the partition GUID for GPT.
func (l *Layout) PartUUID(i int) string {
	if l.Table == GPT {
		g, err := l.partGUID(i)
		if err != nil {
			return l.Partitions[i].GUID
		}
		return formatGUID(g)
	}
	return fmt.Sprintf("%s-%02x", l.DiskID(), i+1) // libblkid's format: the number in hex
}

// derive returns 32 bytes for one purpose from the seed.
func (l *Layout) derive(purpose string) [32]byte {
	h := sha256.New()
	h.Write([]byte("ocidisk diskimage " + purpose + "\x00"))
	h.Write(l.Seed)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// signature is the MBR disk signature, never 0 (which tools take for "none
// set" and replace).
func (l *Layout) signature() (uint32, error) {
	if l.ID != "" {
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(l.ID), "0x"), 16, 32)
		if err != nil || v == 0 {
			return 0, fmt.Errorf("disk ID %q: want 8 hex digits, not all zero, for an MBR disk signature", l.ID)
		}
		return uint32(v), nil
	}
	b := l.derive("mbr disk signature")
	for i := 0; i+4 <= len(b); i += 4 {
		if v := binary.LittleEndian.Uint32(b[i:]); v != 0 {
			return v, nil
		}
	}
	return 1, nil
}

func (l *Layout) diskGUID() ([16]byte, error) {
	if l.ID != "" {
		g, err := parseGUID(l.ID)
		if err != nil {
			return g, fmt.Errorf("disk ID: %w", err)
		}
		return g, nil
	}
	return derivedGUID(l.derive("gpt disk guid")), nil
}

func (l *Layout) partGUID(i int) ([16]byte, error) {
	if s := l.Partitions[i].GUID; s != "" {
		g, err := parseGUID(s)
		if err != nil {
			return g, fmt.Errorf("partition %d: %w", i+1, err)
		}
		return g, nil
	}
	return derivedGUID(l.derive(fmt.Sprintf("gpt partition %d guid", i+1))), nil
}

// derivedGUID makes a version 4 (random) GUID of hash bytes: random as far
// as anyone can tell, and the same for the same seed.
func derivedGUID(h [32]byte) [16]byte {
	var g [16]byte
	copy(g[:], h[:16])
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// A GUID here is held in the byte order of its text form; on disk GPT
// stores the first three fields little-endian (guidBytes).

func parseGUID(s string) ([16]byte, error) {
	var g [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' || len(h) != 32 {
		return g, fmt.Errorf("GUID %q: want the form 01234567-89ab-cdef-0123-456789abcdef", s)
	}
	if _, err := hex.Decode(g[:], []byte(h)); err != nil {
		return g, fmt.Errorf("GUID %q: %w", s, err)
	}
	return g, nil
}

func formatGUID(g [16]byte) string {
	h := hex.EncodeToString(g[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// guidBytes is g in GPT's on-disk mixed-endian order.
func guidBytes(g [16]byte) [16]byte {
	var b [16]byte
	b[0], b[1], b[2], b[3] = g[3], g[2], g[1], g[0]
	b[4], b[5] = g[5], g[4]
	b[6], b[7] = g[7], g[6]
	copy(b[8:], g[8:])
	return b
}

// Index returns the index in l.Partitions of the partition called name,
// or -1.
func (l *Layout) Index(name string) int {
	for i, p := range l.Partitions {
		if p.Name == name {
			return i
		}
	}
	return -1
}
