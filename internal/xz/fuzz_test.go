package xz

import (
	"bytes"
	"io"
	"testing"
	"time"

	uxz "github.com/ulikunitz/xz"
)

// FuzzDecode feeds arbitrary bytes, seeded with real xz files, to the
// decoder: it must never panic or hang, and whatever it accepts must be
// what ulikunitz/xz, the library it stands in for, decodes from the same
// bytes. Run with: go test -run XXX -fuzz FuzzDecode ./internal/xz/
func FuzzDecode(f *testing.F) {
	for i, args := range [][]string{{"-0"}, {"-6", "--check=sha256"}, {"-1", "--check=none", "-T2", "--block-size=4096"}, {"--lzma2=preset=1,lc=0,lp=2,pb=0"}} {
		f.Add(compress(f, content(uint64(i), 3000+i*2000), args...))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := within(t, "our decoder", func() ([]byte, error) {
			return decode(bytes.NewReader(in), Options{Workers: 2, MaxMemory: 8 << 20})
		})
		if err != nil {
			return
		}
		want, err := within(t, "ulikunitz/xz", func() ([]byte, error) {
			r, err := uxz.NewReader(bytes.NewReader(in))
			if err != nil {
				return nil, err
			}
			return io.ReadAll(r)
		})
		if err != nil {
			t.Fatalf("we decoded %d bytes; ulikunitz/xz fails: %v", len(got), err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, ulikunitz/xz %d, and they differ", len(got), len(want))
		}
	})
}

// within runs decode and fails the test when it has not ended in 10 s:
// a decoder must not hang on any input.
func within(t *testing.T, who string, decode func() ([]byte, error)) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := decode()
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s has not ended after 10s", who)
		return nil, nil
	}
}
