package compression

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes, seeded with each tool's output, to
// Open: it must never panic or hang, an input it decodes to the end must
// have the size Size reads from its metadata (when the format records
// one), and a failure must be an error, not a short read.
// Run with: go test -run XXX -fuzz FuzzDecode ./internal/compression/
func FuzzDecode(f *testing.F) {
	for i, tl := range tools {
		f.Add(tl.compress(f, sample(2000+1000*i)))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		type result struct {
			n   int64
			f   Format
			err error
		}
		done := make(chan result, 1)
		go func() {
			rc, f, err := Open(bytes.NewReader(in), Options{Name: "fuzz", Parallel: len(in)%2 == 0})
			if err != nil {
				done <- result{0, f, err}
				return
			}
			defer rc.Close()
			// A few bytes can claim gigabytes: read a bounded amount.
			n, err := io.Copy(io.Discard, io.LimitReader(rc, 8<<20))
			done <- result{n, f, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("decoding has not ended after 20s")
		}
		if r.err != nil || r.n == 8<<20 {
			return
		}
		size, err := Size(bytes.NewReader(in), int64(len(in)), r.f)
		if err != nil {
			t.Fatalf("%v decoded %d bytes, but Size fails: %v", r.f, r.n, err)
		}
		if size >= 0 && size != r.n {
			t.Fatalf("%v decoded %d bytes, Size says %d", r.f, r.n, size)
		}
	})
}
