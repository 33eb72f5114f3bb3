package sha256x2

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// sum hashes two messages through Blocks, padded as Pad does.
func sum(a, b []byte) (da, db []byte) {
	st := [2][8]uint32{IV, IV}
	wholeA, wholeB := len(a)/BlockSize*BlockSize, len(b)/BlockSize*BlockSize
	n := min(wholeA, wholeB)
	Blocks(&st, a[:n], b[:n])
	// The rest of each, padded, lane by lane: the other lane hashes a
	// copy, whose result is dropped.
	for lane, m := range [][]byte{a, b} {
		rest := Pad(append([]byte(nil), m[n:]...), uint64(len(m)))
		two := [2][8]uint32{st[lane], st[lane]}
		Blocks(&two, rest, rest)
		st[lane] = two[0]
	}
	return Sum(nil, &st[0]), Sum(nil, &st[1])
}

// TestBlocks: the two lanes give crypto/sha256's digests, for messages
// of every length around the block and padding boundaries, of unequal
// lengths, and each lane independent of the other.
func TestBlocks(t *testing.T) {
	if !Available {
		t.Skip("the CPU has no SHA extensions (or is not amd64)")
	}
	r := rand.New(rand.NewPCG(1, 2))
	msg := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 4096, 4128, 65536 + 17} {
		for _, m := range []int{0, n, n + 1, 3 * n / 2} {
			a, b := msg(n), msg(m)
			da, db := sum(a, b)
			if wa := sha256.Sum256(a); string(da) != string(wa[:]) {
				t.Errorf("lane a, %d bytes (lane b %d): %x, want %x", n, m, da, wa)
			}
			if wb := sha256.Sum256(b); string(db) != string(wb[:]) {
				t.Errorf("lane b, %d bytes (lane a %d): %x, want %x", m, n, db, wb)
			}
		}
	}
}

func TestBlocksPanics(t *testing.T) {
	for _, tc := range []struct{ a, b int }{{64, 128}, {63, 63}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Blocks of %d and %d bytes did not panic", tc.a, tc.b)
				}
			}()
			var st [2][8]uint32
			Blocks(&st, make([]byte, tc.a), make([]byte, tc.b))
		}()
	}
}

// BenchmarkBlocks compares two 4 KiB messages hashed at once with
// crypto/sha256 hashing them one after the other.
func BenchmarkBlocks(b *testing.B) {
	a, c := make([]byte, 4096), make([]byte, 4096)
	b.Run("sha256x2", func(b *testing.B) {
		if !Available {
			b.Skip("no SHA extensions")
		}
		b.SetBytes(2 * 4096)
		for b.Loop() {
			st := [2][8]uint32{IV, IV}
			Blocks(&st, a, c)
		}
	})
	b.Run("crypto-sha256", func(b *testing.B) {
		b.SetBytes(2 * 4096)
		for b.Loop() {
			sha256.Sum256(a)
			sha256.Sum256(c)
		}
	})
}
