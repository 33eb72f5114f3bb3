package inflate

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// corpus makes n bytes shaped like what layers hold: text of a Zipf-ish
// vocabulary, incompressible runs, zeros, repeats of earlier bytes at
// every distance up to past the window, short periods and counters.
func corpus(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := make([][]byte, 400)
	for i := range words {
		w := make([]byte, 2+r.IntN(9))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		words[i] = w
	}
	var b []byte
	for len(b) < n {
		switch k := r.IntN(10); {
		case k < 5:
			for range 50 + r.IntN(2000) {
				b = append(b, words[int(r.ExpFloat64()*40)%len(words)]...)
				b = append(b, " \n"[r.IntN(12)/11])
			}
		case k == 5:
			for range 100 + r.IntN(5000) {
				b = append(b, byte(r.Uint32()))
			}
		case k == 6:
			b = append(b, make([]byte, 1+r.IntN(20000))...)
		case k == 7 && len(b) > 0:
			from := len(b) - 1 - r.IntN(min(len(b), 40000))
			for range 3 + r.IntN(3000) {
				b = append(b, b[from])
				from++
			}
		case k == 8:
			period := 1 + r.IntN(7)
			pat := make([]byte, period)
			for i := range pat {
				pat[i] = byte(r.Uint32())
			}
			for i := range 10 + r.IntN(1000) {
				b = append(b, pat[i%period])
			}
		default:
			v := r.Uint32()
			for range r.IntN(500) {
				b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
				v += uint32(r.IntN(3))
			}
		}
	}
	return b[:n]
}

func deflate(t testing.TB, level int, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readers feed the compressed bytes in the ways that reach every path:
// whole, a byte per Read (the decoder's slow path and refills at every
// offset), and data arriving with io.EOF.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one-byte", iotest.OneByteReader},
	{"data-err", iotest.DataErrReader},
	{"half", iotest.HalfReader},
}

func TestDeflateMatchesFlate(t *testing.T) {
	levels := []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, 5, flate.BestCompression}
	for _, size := range []int{0, 1, 300, 100_000, 3_000_000} {
		data := corpus(uint64(size), size)
		for _, level := range levels {
			z := deflate(t, level, data)
			for _, rd := range readers {
				t.Run(fmt.Sprintf("%d/level%d/%s", size, level, rd.name), func(t *testing.T) {
					got, err := io.ReadAll(NewReader(rd.wrap(bytes.NewReader(z))))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("decoded %d bytes, differ from the %d compressed", len(got), len(data))
					}
					var to bytes.Buffer
					if _, err := NewReader(rd.wrap(bytes.NewReader(z))).WriteTo(&to); err != nil || !bytes.Equal(to.Bytes(), data) {
						t.Fatalf("WriteTo: %d bytes, %v; want the %d compressed", to.Len(), err, len(data))
					}
				})
			}
		}
	}
}

// bitWriter packs a DEFLATE stream by hand, for streams no compressor
// makes: codes the fixed way, corrupt ones.
type bitWriter struct {
	b     []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= v << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.b = append(w.b, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

// code writes a Huffman codeword, most significant bit first.
func (w *bitWriter) code(c uint32, n uint) { w.bits(uint64(reverse(c, n)), n) }

// fixedSym writes literal/length symbol s in the fixed code.
func (w *bitWriter) fixedSym(s int) {
	switch {
	case s < 144:
		w.code(uint32(0x30+s), 8)
	case s < 256:
		w.code(uint32(0x190+s-144), 9)
	case s < 280:
		w.code(uint32(s-256), 7)
	default:
		w.code(uint32(0xc0+s-280), 8)
	}
}

func (w *bitWriter) done() []byte {
	if w.nbits > 0 {
		w.b = append(w.b, byte(w.acc))
	}
	return w.b
}

// fixedStream is one final fixed-code block; ops are literals (0-255),
// or matches as {length symbol, length extra, dist symbol, dist extra}.
func fixedStream(ops ...[]int) []byte {
	var w bitWriter
	w.bits(1, 1) // final
	w.bits(1, 2) // fixed
	for _, op := range ops {
		w.fixedSym(op[0])
		if len(op) > 1 {
			w.bits(uint64(op[1]), uint(lengthExtra[op[0]-257]))
			w.code(uint32(op[2]), 5)
			if op[2] < 30 {
				w.bits(uint64(op[3]), uint(distExtra[op[2]]))
			}
		}
	}
	w.fixedSym(256)
	return w.done()
}

func TestCraftedStreams(t *testing.T) {
	lit := func(c byte) []int { return []int{int(c)} }
	var badType bitWriter
	badType.bits(1, 1)
	badType.bits(3, 2)
	storedHead := func(nlen byte) []byte {
		var w bitWriter
		w.bits(1, 1) // final
		w.bits(0, 2) // stored
		return append(w.done(), 5, 0, nlen, 0xff, 'h', 'e', 'l', 'l', 'o')
	}
	for _, c := range []struct {
		name    string
		stream  []byte
		want    string
		corrupt bool
	}{
		// Length symbol 257 is 3 bytes, distance symbol 2 is 3 back.
		{"fixed match", fixedStream(lit('a'), lit('b'), lit('c'), []int{257, 0, 2, 0}), "abcabc", false},
		// Distance 1 repeated: a run, the copy overlapping itself.
		{"fixed run", fixedStream(lit('z'), []int{284, 30, 0, 0}), "z" + string(bytes.Repeat([]byte("z"), 257)), false},
		{"stored", storedHead(0xfa), "hello", false},
		{"distance before start", fixedStream(lit('a'), []int{257, 0, 1, 0}), "", true},
		{"distance symbol 30", fixedStream(lit('a'), []int{257, 0, 30, 0}), "", true},
		{"length symbol 286", fixedStream(lit('a'), []int{286}), "", true},
		{"block type 3", badType.done(), "", true},
		{"stored length complement", storedHead(0xfb), "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, rd := range readers {
				got, err := io.ReadAll(NewReader(rd.wrap(bytes.NewReader(c.stream))))
				var ce *CorruptError
				if c.corrupt {
					if !errors.As(err, &ce) {
						t.Fatalf("%s: want a CorruptError, got %v", rd.name, err)
					}
					continue
				}
				if err != nil || string(got) != c.want {
					t.Fatalf("%s: got %q, %v; want %q", rd.name, got, err, c.want)
				}
				// The standard library agrees on what the stream means.
				std, err := io.ReadAll(flate.NewReader(bytes.NewReader(c.stream)))
				if err != nil || !bytes.Equal(std, got) {
					t.Fatalf("compress/flate reads %q, %v", std, err)
				}
			}
		})
	}
}

// Every prefix of a stream is truncated: an error wrapping
// io.ErrUnexpectedEOF, never a short success, never a panic.
func TestTruncated(t *testing.T) {
	data := corpus(7, 4000)
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, flate.BestCompression} {
		z := deflate(t, level, data)
		for n := range len(z) {
			for _, rd := range readers[:2] {
				_, err := io.ReadAll(NewReader(rd.wrap(bytes.NewReader(z[:n]))))
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("level %d, %d of %d bytes, %s: got %v, want io.ErrUnexpectedEOF", level, n, len(z), rd.name, err)
				}
			}
		}
	}
}

// A flipped bit anywhere gives what compress/flate gives: the same bytes,
// or an error from both.
func TestCorruptMatchesFlate(t *testing.T) {
	z := deflate(t, flate.BestCompression, corpus(9, 30000))
	r := rand.New(rand.NewPCG(9, 9))
	for range 3000 {
		bad := bytes.Clone(z)
		bad[r.IntN(len(bad))] ^= 1 << r.IntN(8)
		checkLikeFlate(t, bad)
	}
}

func checkLikeFlate(t *testing.T, z []byte) {
	t.Helper()
	want, werr := io.ReadAll(flate.NewReader(bytes.NewReader(z)))
	got, gerr := io.ReadAll(NewReader(bytes.NewReader(z)))
	switch {
	case werr == nil && gerr == nil:
		if !bytes.Equal(got, want) {
			t.Fatalf("stream %x: decoded %d bytes, compress/flate %d, and they differ", z, len(got), len(want))
		}
	case werr == nil:
		t.Fatalf("stream %x: error %v, compress/flate reads it", z, gerr)
	case gerr == nil:
		t.Fatalf("stream %x: read, compress/flate says %v", z, werr)
	}
}

func FuzzInflate(f *testing.F) {
	for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.BestCompression} {
		f.Add(deflate(f, level, corpus(uint64(level+3), 3000)))
	}
	f.Add(fixedStream([]int{'a'}, []int{257, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, z []byte) { checkLikeFlate(t, z) })
}
