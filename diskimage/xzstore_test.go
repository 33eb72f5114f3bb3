package diskimage

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// TestStoredXZ checks hand-made .xz streams of stored LZMA2 chunks with xz
// itself: they must test clean and decompress to the input, alone and
// concatenated with streams from github.com/ulikunitz/xz, at sizes around
// the 64 KiB chunk limit.
func TestStoredXZ(t *testing.T) {
	xz := hosttool.Require(t, "xz", "xz-utils")
	r := rand.NewChaCha8([32]byte{9})
	var all, stream []byte
	for _, n := range []int{0, 1, 3, 65535, 65536, 65537, 1<<20 + 3} {
		b := make([]byte, n)
		r.Read(b)
		s := storedXZ(b)
		cmd := exec.Command(xz, "-dc")
		cmd.Stdin = bytes.NewReader(s)
		out, err := cmd.Output()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("%d bytes: xz -dc: %v, %d bytes out", n, err, len(out))
		}
		c := compressXZ([]byte("compressible compressible compressible"))
		all = append(append(all, b...), "compressible compressible compressible"...)
		stream = append(append(stream, s...), c.b...)
	}
	cmd := exec.Command(xz, "-dc")
	cmd.Stdin = bytes.NewReader(stream)
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, all) {
		t.Fatalf("concatenated streams: xz -dc: %v, %d bytes out, want %d", err, len(out), len(all))
	}
	cmd = exec.Command(xz, "-t")
	cmd.Stdin = bytes.NewReader(stream)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xz -t: %v\n%s", err, out)
	}
}
