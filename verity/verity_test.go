package verity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/verity/layout"
)

// testData returns n blocks of random bytes, every fifth block zeros (the
// zero digest is a special case of the Writer).
func testData(n int64, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	b := make([]byte, n*BlockSize)
	for i := int64(0); i < n; i++ {
		if i%5 != 3 {
			r.Read(b[i*BlockSize : (i+1)*BlockSize])
		}
	}
	return b
}

func uuidString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openRW(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// veritysetupArgs are the options that place tr's tree for veritysetup.
func veritysetupArgs(tr *Tree) []string {
	args := []string{"--hash-offset=" + strconv.FormatInt(tr.HashOffset, 10)}
	if tr.NoSuperblock {
		salt := "-"
		if len(tr.Salt) > 0 {
			salt = hex.EncodeToString(tr.Salt)
		}
		args = append(args, "--no-superblock", "--salt="+salt, "--data-blocks="+strconv.FormatUint(tr.DataBlocks, 10))
	}
	return args
}

// veritysetupVerify runs `veritysetup verify` and reports whether it
// accepted the data, tree and root hash, with its output.
func veritysetupVerify(t *testing.T, data, hash string, tr *Tree) (bool, string) {
	t.Helper()
	vs := hosttool.Require(t, "veritysetup", "cryptsetup-bin")
	args := append([]string{"verify"}, veritysetupArgs(tr)...)
	out, err := exec.Command(vs, append(args, data, hash, hex.EncodeToString(tr.RootHash))...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return err == nil, string(out)
}

var rootHashLine = regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]+)$`)

// veritysetupFormat runs `veritysetup format` with tr's parameters and
// returns the root hash it prints.
func veritysetupFormat(t *testing.T, data, hash string, tr *Tree) []byte {
	t.Helper()
	vs := hosttool.Require(t, "veritysetup", "cryptsetup-bin")
	salt := "-"
	if len(tr.Salt) > 0 {
		salt = hex.EncodeToString(tr.Salt)
	}
	args := append([]string{"format", "--salt=" + salt, "--data-blocks=" + strconv.FormatUint(tr.DataBlocks, 10)}, veritysetupArgs(tr)...)
	if !tr.NoSuperblock {
		args = append(args, "--uuid="+uuidString(tr.UUID))
	}
	out, err := exec.Command(vs, append(args, data, hash)...).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup %q: %v\n%s", args, err, out)
	}
	m := rootHashLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("veritysetup format printed no root hash:\n%s", out)
	}
	root, _ := hex.DecodeString(string(m[1]))
	return root
}

// TestVeritysetupAgrees builds trees over data sizes around the tree's
// fan-out (128 digests a block) and has veritysetup judge them: `verify`
// accepts our tree and root hash, and `format` with the same salt and
// UUID writes the same bytes and prints the same root hash. Then one
// flipped byte in a data block and in a hash block must be found by
// Verify, and refused by veritysetup.
func TestVeritysetupAgrees(t *testing.T) {
	hosttool.Require(t, "veritysetup", "cryptsetup-bin")
	salt := bytes.Repeat([]byte{0x5a, 0xc3}, 16)
	for _, tc := range []struct {
		name   string
		blocks int64
		salt   []byte
		// sameFile puts the tree after the data in the data file, at
		// hashOff past the data's end; otherwise in a file of its own at
		// hashOff.
		sameFile bool
		hashOff  int64
		noSB     bool
	}{
		{name: "1 block", blocks: 1, salt: salt},
		{name: "1 block after the data", blocks: 1, salt: salt, sameFile: true},
		{name: "2 blocks", blocks: 2, salt: salt},
		{name: "127 blocks", blocks: 127, salt: salt, sameFile: true},
		{name: "128 blocks", blocks: 128, salt: salt},
		{name: "129 blocks", blocks: 129, salt: salt, sameFile: true},
		{name: "1000 blocks, no salt", blocks: 1000},
		{name: "1000 blocks, salt of 256 bytes", blocks: 1000, salt: bytes.Repeat([]byte{7}, 256), sameFile: true},
		{name: "16384 blocks", blocks: 128 * 128, salt: salt, sameFile: true},
		{name: "16385 blocks", blocks: 128*128 + 1, salt: salt},
		{name: "16385 blocks after a gap", blocks: 128*128 + 1, salt: salt, sameFile: true, hashOff: 1 << 20},
		{name: "superblock at 512", blocks: 300, salt: salt, hashOff: 512},
		{name: "no superblock", blocks: 300, salt: salt, noSB: true},
		{name: "no superblock after the data", blocks: 129, salt: salt, noSB: true, sameFile: true, hashOff: 8192},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := testData(tc.blocks, uint64(tc.blocks))
			dataFile := filepath.Join(dir, "data")
			writeFile(t, dataFile, data)
			hashFile, hashOff := filepath.Join(dir, "hash"), tc.hashOff
			if tc.sameFile {
				hashFile, hashOff = dataFile, int64(len(data))+tc.hashOff
			}
			df := openRW(t, dataFile)
			hf := df
			if !tc.sameFile {
				hf = openRW(t, hashFile)
			}
			opts := Options{Salt: tc.salt, NoSuperblock: tc.noSB}
			tr, err := Build(df, 0, int64(len(data)), hf, hashOff, opts)
			if err != nil {
				t.Fatal(err)
			}
			if tr.HashOffset != hashOff || tr.DataBlocks != uint64(tc.blocks) || len(tr.RootHash) != DigestSize {
				t.Fatalf("tree %+v", tr)
			}
			if ok, out := veritysetupVerify(t, dataFile, hashFile, tr); !ok {
				t.Fatalf("veritysetup verify refused our tree:\n%s", out)
			}
			if err := Verify(df, hf, tr); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			ours := readFile(t, hashFile)[hashOff:]
			if int64(len(ours)) != tr.Size() {
				t.Errorf("tree of %d bytes, Size says %d", len(ours), tr.Size())
			}
			if !tc.noSB && tc.hashOff%BlockSize == 0 && tr.Size() != Size(int64(len(data))) {
				t.Errorf("Size(%d) = %d, the tree is %d", len(data), Size(int64(len(data))), tr.Size())
			}

			// veritysetup format, same parameters: same bytes.
			theirData, theirHash := filepath.Join(dir, "their-data"), filepath.Join(dir, "their-hash")
			writeFile(t, theirData, data)
			if tc.sameFile {
				theirHash = theirData
			} else {
				writeFile(t, theirHash, nil)
			}
			root := veritysetupFormat(t, theirData, theirHash, tr)
			if !bytes.Equal(root, tr.RootHash) {
				t.Errorf("root hash %x, veritysetup format says %x", tr.RootHash, root)
			}
			theirs := readFile(t, theirHash)[hashOff:]
			if !bytes.Equal(ours, theirs) {
				t.Errorf("tree differs from veritysetup's (%d and %d bytes) from byte %d", len(ours), len(theirs), firstDiff(ours, theirs))
			}

			// A flipped byte in the last data block and in the first hash
			// block (the top level; the data block's digest alone for a
			// single block).
			last := tc.blocks - 1
			flip(t, df, last*BlockSize+100)
			var ce *CorruptError
			if err := Verify(df, hf, tr); !errors.As(err, &ce) || ce.Metadata || ce.Block != uint64(last) {
				t.Errorf("Verify after flipping data block %d: %v", last, err)
			}
			if ok, out := veritysetupVerify(t, dataFile, hashFile, tr); ok {
				t.Errorf("veritysetup verify accepted a flipped data block:\n%s", out)
			}
			flip(t, df, last*BlockSize+100)
			if layout.NewGeometry(tr.DataBlocks).Levels > 0 {
				flip(t, hf, int64(tr.HashStart())*BlockSize+5)
				if err := Verify(df, hf, tr); !errors.As(err, &ce) || !ce.Metadata || ce.Block != tr.HashStart() {
					t.Errorf("Verify after flipping hash block %d: %v", tr.HashStart(), err)
				}
			}
		})
	}
}

func flip(t *testing.T, f *os.File, off int64) {
	t.Helper()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestReadSuperblock reads the superblock `veritysetup format` writes.
func TestReadSuperblock(t *testing.T) {
	dir := t.TempDir()
	data, hash := filepath.Join(dir, "data"), filepath.Join(dir, "hash")
	writeFile(t, data, testData(300, 1))
	writeFile(t, hash, nil)
	want := &Tree{DataBlocks: 300, Salt: []byte{1, 2, 3, 4, 5}, UUID: [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x81}, HashOffset: 4096}
	want.RootHash = veritysetupFormat(t, data, hash, want)
	f := openRW(t, hash)
	got, err := ReadSuperblock(f, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if got.DataBlocks != want.DataBlocks || !bytes.Equal(got.Salt, want.Salt) || got.UUID != want.UUID ||
		got.HashOffset != want.HashOffset || got.NoSuperblock || got.HashStart() != 2 {
		t.Errorf("ReadSuperblock = %+v, want %+v", got, want)
	}
	got.RootHash = want.RootHash
	d := openRW(t, data)
	if err := Verify(d, f, got); err != nil {
		t.Errorf("Verify with veritysetup's tree: %v", err)
	}
	if _, err := ReadSuperblock(d, 0); !errors.Is(err, ErrNoSuperblock) {
		t.Errorf("ReadSuperblock of data: %v, want ErrNoSuperblock", err)
	}
}

// TestEmpty: dm-verity protects at least one block; veritysetup refuses an
// empty device too.
func TestEmpty(t *testing.T) {
	if _, err := NewWriter(nil, 0, 0, Options{}); err == nil {
		t.Error("NewWriter of 0 bytes: no error")
	}
	if _, err := Build(bytes.NewReader(nil), 0, 0, nil, 0, Options{}); err == nil {
		t.Error("Build of 0 bytes: no error")
	}
	if _, err := NewWriter(nil, 0, 1000, Options{}); err == nil {
		t.Error("NewWriter of 1000 bytes: no error")
	}
	if _, err := NewWriter(nil, 0, 4096, Options{Salt: make([]byte, 257)}); err == nil {
		t.Error("salt of 257 bytes: no error")
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r  io.ReaderAt
	mu sync.Mutex
	n  int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.n += int64(len(p))
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

// zeroTarget is a fresh file with ZeroAt, as diskimage's recorder over a
// new image is: zero ranges are recorded, not written.
type zeroTarget struct {
	*os.File
	mu     sync.Mutex
	zeroed int64
}

func (z *zeroTarget) ZeroAt(off, n int64) error {
	z.mu.Lock()
	z.zeroed += n
	z.mu.Unlock()
	return nil
}

// TestWriterWrites writes data through the Writer in the ways filesystem
// writers do (whole blocks, pieces, rewrites, out of order, ZeroAt,
// concurrently), and checks that veritysetup accepts the tree of what the
// file holds in the end, that only blocks written in part were read back,
// and that ZeroAt reached the target.
func TestWriterWrites(t *testing.T) {
	const blocks = 300
	type write struct {
		off, n int64
		zero   bool // ZeroAt
		// expect: Expect for the range, with the digests of what the
		// next write writes there, or with garbage ones.
		expect, garbage bool
	}
	B := int64(BlockSize)
	for _, tc := range []struct {
		name   string
		base   int64 // where the data area starts in the file
		writes []write
		// rereads is the number of blocks Finish must read back: those
		// written in part or more than once.
		rereads int64
		zeroed  int64 // bytes ZeroAt passed to the target
		// expected is the number of blocks whose digest Expect gave and
		// a write confirmed.
		expected int64
	}{
		{name: "whole blocks in order", writes: []write{{off: 0, n: 100 * B}, {off: 100 * B, n: 200 * B}}},
		{name: "nothing written", writes: nil},
		{name: "one byte", base: 3 * B, writes: []write{{off: B + 7, n: 1}}, rereads: 1},
		{name: "unaligned large write", writes: []write{{off: 100, n: 50 * B}}, rereads: 2},
		{name: "pieces of one block", writes: []write{{off: 0, n: 1000}, {off: 1000, n: B - 1000}}, rereads: 1},
		{name: "whole block after pieces", writes: []write{{off: 0, n: 10}, {off: B - 10, n: 10}, {off: 0, n: B}}, rereads: 1},
		{name: "piece after whole block", writes: []write{{off: 0, n: 2 * B}, {off: B + 5, n: 3}}, rereads: 1},
		{name: "rewritten whole", writes: []write{{off: 0, n: 10 * B}, {off: 2 * B, n: 3 * B}}, rereads: 3},
		{name: "out of order", writes: []write{{off: 250 * B, n: 50 * B}, {off: 0, n: 10 * B}, {off: 100*B + 1, n: 30 * B}}, rereads: 2},
		{name: "zero whole blocks over data", writes: []write{{off: 0, n: 20 * B}, {off: 5 * B, n: 5 * B, zero: true}}, rereads: 5, zeroed: 5 * B},
		{name: "zero in part", writes: []write{{off: 0, n: 20 * B}, {off: 5*B + 1, n: 2 * B, zero: true}}, rereads: 3, zeroed: 2 * B},
		{name: "zero, then written whole", writes: []write{{off: 0, n: 20 * B, zero: true}, {off: 0, n: 10 * B}}, zeroed: 20 * B},
		{name: "last block in part", base: 1 << 20, writes: []write{{off: (blocks - 1) * B, n: B / 2}}, rereads: 1},
		{name: "expected, written whole", base: 3 * B, writes: []write{{off: 10 * B, n: 20 * B, expect: true}, {off: 10 * B, n: 20 * B}}, expected: 20},
		{name: "expected, written in part or not at all", writes: []write{{off: 0, n: 2 * B, expect: true, garbage: true}, {off: B + 5, n: 3}}, rereads: 2},
		{name: "expected, zeroed", writes: []write{{off: 0, n: 2 * B, expect: true, garbage: true}, {off: 0, n: 2 * B, zero: true}}, zeroed: 2 * B},
		{name: "expected after the write", writes: []write{{off: 0, n: 2 * B}, {off: 0, n: 2 * B, expect: true, garbage: true}}},
		{name: "expected, then rewritten", writes: []write{{off: 0, n: 2 * B, expect: true}, {off: 0, n: 2 * B}, {off: 0, n: B}}, rereads: 1, expected: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "image")
			f := openRW(t, path)
			// A fresh image, as diskimage makes it: sized, holding zeros.
			if err := f.Truncate(tc.base + blocks*B); err != nil {
				t.Fatal(err)
			}
			target := &zeroTarget{File: f}
			salt := []byte("ocidisk verity test")
			v, err := NewWriter(target, tc.base, blocks*B, Options{Salt: salt})
			if err != nil {
				t.Fatal(err)
			}
			src := testData(blocks+1, 99)
			written := func(i int) []byte { // what write i writes
				w := tc.writes[i]
				return src[w.off+int64(i)*7:][:w.n]
			}
			for i, w := range tc.writes {
				if w.expect {
					digests := bytes.Repeat([]byte{0xee}, int(w.n/B*DigestSize))
					if !w.garbage {
						if digests, err = NewHasher(salt).Blocks(nil, bytes.NewReader(written(i+1))); err != nil {
							t.Fatal(err)
						}
					}
					if err := v.Expect(tc.base+w.off, digests); err != nil {
						t.Fatalf("write %d %+v: %v", i, w, err)
					}
					continue
				}
				if w.zero {
					err = v.ZeroAt(tc.base+w.off, w.n)
					// Where something was written before, diskimage's
					// ZeroAt writes zeros; zeroTarget only counts.
					if _, err := f.WriteAt(make([]byte, w.n), tc.base+w.off); err != nil {
						t.Fatal(err)
					}
				} else {
					// Each write takes different bytes, so that a stale
					// digest of an earlier write shows.
					_, err = v.WriteAt(written(i), tc.base+w.off)
				}
				if err != nil {
					t.Fatalf("write %d %+v: %v", i, w, err)
				}
			}
			r := &countingReader{r: f}
			hashOff := tc.base + blocks*B
			tr, err := v.Finish(r, f, hashOff)
			if err != nil {
				t.Fatal(err)
			}
			if r.n != tc.rereads*B {
				t.Errorf("read back %d bytes, want %d blocks", r.n, tc.rereads)
			}
			if v.expected != tc.expected {
				t.Errorf("%d blocks took their digest from Expect, want %d", v.expected, tc.expected)
			}
			if target.zeroed != tc.zeroed {
				t.Errorf("ZeroAt passed %d bytes on, want %d", target.zeroed, tc.zeroed)
			}
			// veritysetup reads the data device from its start: give it
			// the data area as a file of its own.
			data := filepath.Join(dir, "data")
			img := readFile(t, path)
			writeFile(t, data, img[tc.base:hashOff])
			hash := filepath.Join(dir, "hash")
			writeFile(t, hash, img[hashOff:])
			tr.HashOffset = 0
			if ok, out := veritysetupVerify(t, data, hash, tr); !ok {
				t.Fatalf("veritysetup verify refused the tree:\n%s", out)
			}
		})
	}
}

// TestWriterConcurrent writes disjoint ranges from many goroutines, whole
// and in part, as a parallel filesystem writer may.
func TestWriterConcurrent(t *testing.T) {
	const blocks = 2000
	dir := t.TempDir()
	path := filepath.Join(dir, "data")
	f := openRW(t, path)
	v, err := NewWriter(f, 0, blocks*BlockSize, Options{Salt: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	src := testData(blocks, 5)
	// Pieces of irregular length, written from 8 goroutines in an order
	// unlike the file's.
	var pieces [][2]int64
	for off := int64(0); off < int64(len(src)); {
		n := min(int64(len(src))-off, int64(1+(off*7919)%(300*1024)))
		pieces = append(pieces, [2]int64{off, n})
		off += n
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := len(pieces) - 1 - g; i >= 0; i -= 8 {
				p := pieces[i]
				if _, err := v.WriteAt(src[p[0]:p[0]+p[1]], p[0]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	hash := filepath.Join(dir, "hash")
	h := openRW(t, hash)
	tr, err := v.Finish(f, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, out := veritysetupVerify(t, path, hash, tr); !ok {
		t.Fatalf("veritysetup verify refused the tree:\n%s", out)
	}
}

// TestWriteOutside: a write beyond the data area is an error, not data
// silently left out of the tree; so is an Expect beyond it or not of
// whole blocks.
func TestWriteOutside(t *testing.T) {
	v, err := NewWriter(&zeroTarget{}, 8192, 8192, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range [][2]int64{{0, 10}, {8190, 4}, {16380, 5}} {
		if _, err := v.WriteAt(make([]byte, w[1]), w[0]); err == nil {
			t.Errorf("write of %d bytes at %d: no error", w[1], w[0])
		}
	}
	// Expect takes whole digests of whole blocks inside the data area.
	for _, e := range []struct{ off, digests int64 }{{0, DigestSize}, {8192 + 1, DigestSize}, {8192, DigestSize - 1}, {8192, 3 * DigestSize}} {
		if err := v.Expect(e.off, make([]byte, e.digests)); err == nil {
			t.Errorf("Expect of %d bytes at %d: no error", e.digests, e.off)
		}
	}
	if err := v.Expect(8192, make([]byte, 2*DigestSize)); err != nil {
		t.Errorf("Expect of the whole area: %v", err)
	}
}

// TestSums: hashing blocks two at a time (with the SHA extensions, for
// salts shorter than SHA-256's block) gives each block's digest as one at
// a time does, for salts of every length around the boundaries, and odd
// and even numbers of blocks.
func TestSums(t *testing.T) {
	data := testData(7, 5)
	for _, n := range []int{0, 1, 31, 32, 54, 55, 56, 57, 63, 64, 65, 200} {
		salt := testData(1, uint64(n))[:n]
		s := newHasher(salt)
		for blocks := range 8 {
			got := s.sums(nil, data[:blocks*BlockSize])
			var want []byte
			for i := range blocks {
				want = s.sum(want, data[i*BlockSize:(i+1)*BlockSize])
			}
			if !bytes.Equal(got, want) {
				t.Errorf("salt of %d bytes, %d blocks (two at a time: %v): digests differ", n, blocks, s.pairs)
			}
		}
	}
}
