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

// FuzzEncode compresses arbitrary bytes, in blocks of a size the first
// byte picks (from 1 byte up), and decodes them with this package's
// decoder: the bytes must come back. Run with:
// go test -run XXX -fuzz FuzzEncode ./internal/xz/
func FuzzEncode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(append([]byte{0xFF}, make([]byte, 5000)...))
	f.Add(append([]byte{3}, content(1, 20000)...))
	f.Add(append([]byte{200}, random(2, 9000)...))
	f.Add(append([]byte{30}, sparse(3, 20000)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return // the fuzzer's time is better spent on more inputs
		}
		bs := DefaultBlockSize
		if len(in) > 0 {
			bs = 1 + int(in[0])*int(in[0])
			in = in[1:]
		}
		var out bytes.Buffer
		w, err := NewWriter(&out, WriterOptions{BlockSize: bs, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(in); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := decode(bytes.NewReader(out.Bytes()), Options{Workers: 2})
		if err != nil {
			t.Fatalf("%d bytes in blocks of %d: %v", len(in), bs, err)
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("%d bytes in blocks of %d: decoded %d bytes, first difference at %d", len(in), bs, len(got), firstDiff(got, in))
		}
	})
}
