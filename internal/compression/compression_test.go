package compression

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// tool is a compressor as its users run it, the judge of what is valid.
type tool struct {
	name, pkg string
	args      []string
	format    Format
}

var tools = []tool{
	{"gzip", "gzip", []string{"-c"}, Gzip},
	{"xz", "xz-utils", []string{"-c"}, XZ},
	{"xz", "xz-utils", []string{"-c", "-T2", "--block-size=16KiB"}, XZ},
	{"zstd", "zstd", []string{"-c", "-q"}, Zstd},
	{"lz4", "lz4", []string{"-c", "-q"}, LZ4},
	{"lz4", "lz4", []string{"-c", "-q", "--content-size", "-BD", "-B4", "--no-frame-crc"}, LZ4},
	{"bzip2", "bzip2", []string{"-c"}, Bzip2},
}

func (tl tool) String() string { return tl.name + " " + strings.Join(tl.args, " ") }

// compress runs the tool over data given as a file (so that tools that
// record the size can) and returns its output.
func (tl tool) compress(t testing.TB, data []byte) []byte {
	t.Helper()
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(hosttool.Require(t, tl.name, tl.pkg), append(tl.args, in)...).Output()
	if err != nil {
		t.Fatalf("%s: %v", tl, err)
	}
	return out
}

// sample is data that compresses, but not to nothing.
func sample(n int) []byte {
	line := []byte("ocidisk reads compressed input to its end marker\n")
	data := bytes.Repeat(line, n/len(line)+1)[:n]
	for i := range data {
		if i%97 == 0 {
			data[i] = byte(i * 7)
		}
	}
	return data
}

// decodeAll decodes in through Read, and again through WriteTo (which
// io.Copy takes), and fails the test unless the two agree: the same
// bytes, or the same error.
func decodeAll(t testing.TB, in []byte, opts Options) ([]byte, Format, error) {
	t.Helper()
	rc, f, err := Open(bytes.NewReader(in), opts)
	if err != nil {
		return nil, f, err
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)

	rc2, _, _ := Open(bytes.NewReader(in), opts)
	defer rc2.Close()
	var to bytes.Buffer
	_, err2 := rc2.(io.WriterTo).WriteTo(&to)
	if fmt.Sprint(err) != fmt.Sprint(err2) || err == nil && !bytes.Equal(out, to.Bytes()) {
		t.Fatalf("Read gives %d bytes, %v; WriteTo %d bytes, %v", len(out), err, to.Len(), err2)
	}
	return out, f, err
}

// A writer's own error comes back from WriteTo as it is, not as the
// input's.
func TestWriteToWriterError(t *testing.T) {
	full := tools[0].compress(t, sample(100_000))
	rc, _, err := Open(bytes.NewReader(full), Options{Name: "in"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	werr := errors.New("disk full")
	if _, err := rc.(io.WriterTo).WriteTo(failWriter{werr}); err != werr {
		t.Fatalf("got %v, want the writer's error itself", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
		ext  string
	}{
		{"", None, ""}, {"none", None, ""}, {"gz", Gzip, ".gz"}, {"gzip", Gzip, ".gz"}, {"xz", XZ, ".xz"},
		{"zst", Zstd, ".zst"}, {"zstd", Zstd, ".zst"}, {"lz4", LZ4, ".lz4"}, {"bz2", Bzip2, ".bz2"}, {"bzip2", Bzip2, ".bz2"},
	} {
		f, err := Parse(tc.in)
		if err != nil || f != tc.want || f.Ext() != tc.ext {
			t.Errorf("Parse(%q) = %v (%q), %v; want %v (%q)", tc.in, f, f.Ext(), err, tc.want, tc.ext)
		}
		if g, err := Parse(f.String()); err != nil || g != f {
			t.Errorf("Parse(%q) = %v, %v: String does not parse back", f.String(), g, err)
		}
	}
	if _, err := Parse("lzo"); err == nil || !strings.Contains(err.Error(), `"lzo"`) || !strings.Contains(err.Error(), "zstd") {
		t.Errorf("Parse(lzo): %v, want an error naming it and the formats", err)
	}
	for _, tc := range []struct{ in, base string }{{"a.img.zst", "a.img"}, {"a.img.gz", "a.img"}, {"a.img", "a.img"}, {".xz", ".xz"}} {
		if base, _ := TrimExt(tc.in); base != tc.base {
			t.Errorf("TrimExt(%q) = %q, want %q", tc.in, base, tc.base)
		}
	}
}

// TestRoundTrip decodes what each tool writes, alone and as two streams
// concatenated (as the tools read them), with and without Parallel, and
// Size agrees with the bytes wherever the format records it.
func TestRoundTrip(t *testing.T) {
	data := sample(300_000)
	for _, tl := range tools {
		t.Run(tl.String(), func(t *testing.T) {
			one := tl.compress(t, data)
			two := append(append([]byte(nil), one...), one...)
			for _, tc := range []struct {
				name string
				in   []byte
				want []byte
			}{{"one stream", one, data}, {"two streams", two, append(append([]byte(nil), data...), data...)}} {
				for _, parallel := range []bool{false, true} {
					got, f, err := decodeAll(t, tc.in, Options{Name: "in", Parallel: parallel})
					if err != nil {
						t.Fatalf("%s, parallel %v: %v", tc.name, parallel, err)
					}
					if f != tl.format || !bytes.Equal(got, tc.want) {
						t.Errorf("%s, parallel %v: format %v, %d bytes; want %v, the %d put in", tc.name, parallel, f, len(got), tl.format, len(tc.want))
					}
				}
				n, err := Size(bytes.NewReader(tc.in), int64(len(tc.in)), tl.format)
				if err != nil || n != -1 && n != int64(len(tc.want)) {
					t.Errorf("%s: Size = %d, %v; want %d or -1", tc.name, n, err, len(tc.want))
				}
			}
		})
	}
	got, f, err := decodeAll(t, data, Options{})
	if err != nil || f != None || !bytes.Equal(got, data) {
		t.Errorf("plain input: format %v, err %v, equal %v", f, err, bytes.Equal(got, data))
	}
}

// TestSizeRecorded: the formats that record their size give it without
// decoding (xz always; zstd when the tool knew it); the others say -1.
func TestSizeRecorded(t *testing.T) {
	data := sample(200_000)
	for _, tc := range []struct {
		tool
		want int64
	}{
		{tools[1], int64(len(data))},
		{tools[2], int64(len(data))},
		{tools[3], int64(len(data))}, // zstd records the size of a file
		{tools[5], -1},               // lz4 --content-size: not trusted
		{tools[4], -1},
		{tools[0], -1}, // gzip has it modulo 2^32 only
		{tools[6], -1},
	} {
		in := tc.compress(t, data)
		n, err := Size(bytes.NewReader(in), int64(len(in)), tc.format)
		if err != nil || n != tc.want {
			t.Errorf("%s: Size = %d, %v; want %d", tc.tool, n, err, tc.want)
		}
	}
	// zstd from a pipe does not know the size.
	cmd := exec.Command(hosttool.Require(t, "zstd", "zstd"), "-c", "-q")
	cmd.Stdin = bytes.NewReader(data)
	in, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Size(bytes.NewReader(in), int64(len(in)), Zstd); err != nil || n != -1 {
		t.Errorf("zstd from a pipe: Size = %d, %v; want -1", n, err)
	}
}

// TestTruncated cuts each tool's output at every byte of its last 40 and
// its first 24, and at points in between: decoding must fail with an error
// wrapping io.ErrUnexpectedEOF that names the input, never end cleanly
// with part of the data. Size must fail too, or not know.
func TestTruncated(t *testing.T) {
	data := sample(100_000)
	for _, tl := range tools {
		t.Run(tl.String(), func(t *testing.T) {
			full := tl.compress(t, data)
			var cuts []int
			for i := 1; i <= 40; i++ {
				cuts = append(cuts, len(full)-i)
			}
			for i := 1; i < 24; i++ {
				cuts = append(cuts, i)
			}
			for i := 1; i < 10; i++ {
				cuts = append(cuts, len(full)*i/10)
			}
			for _, cut := range cuts {
				in := full[:cut]
				got, f, err := decodeAll(t, in, Options{Name: "disk.img" + tl.format.Ext(), Parallel: cut%2 == 0})
				if f != tl.format && f != None {
					t.Fatalf("cut at %d: sniffed %v", cut, f)
				}
				if f == None {
					continue // too short to be told apart: it is then plain data, whole
				}
				if err == nil {
					t.Errorf("cut at %d of %d: decoded %d bytes without an error", cut, len(full), len(got))
					continue
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "disk.img"+tl.format.Ext()) {
					t.Errorf("cut at %d of %d: %v; want io.ErrUnexpectedEOF naming the input", cut, len(full), err)
				}
				if n, err := Size(bytes.NewReader(in), int64(len(in)), tl.format); err == nil && n != -1 {
					t.Errorf("cut at %d of %d: Size = %d, want an error or -1", cut, len(full), n)
				}
			}
		})
	}
}

// A damaged stream names the input and the format, and is not taken for a
// truncated one.
func TestCorrupt(t *testing.T) {
	data := sample(100_000)
	for _, tl := range tools {
		if strings.Contains(tl.String(), "--no-frame-crc") {
			continue // no checksum: nothing can tell
		}
		in := tl.compress(t, data)
		in[len(in)/2] ^= 0x55
		_, _, err := decodeAll(t, in, Options{Name: "layer L"})
		if err == nil || !strings.HasPrefix(err.Error(), "layer L: "+tl.format.String()) {
			t.Errorf("%s: %v, want an error naming the input and the format", tl, err)
		}
	}
}

// xz allows zeros between and after streams, in fours (ocidisk's own xz
// writer concatenates streams): decoding and Size read past them. A
// filter our decoder lacks is refused, saying so.
func TestXZStreams(t *testing.T) {
	data := sample(50_000)
	one := tools[1].compress(t, data)
	padded := append(append(append(append([]byte(nil), one...), 0, 0, 0, 0), one...), 0, 0, 0, 0, 0, 0, 0, 0)
	got, _, err := decodeAll(t, padded, Options{})
	if err != nil || len(got) != 2*len(data) {
		t.Errorf("padded streams: %d bytes, %v; want %d", len(got), err, 2*len(data))
	}
	if n, err := Size(bytes.NewReader(padded), int64(len(padded)), XZ); err != nil || n != int64(2*len(data)) {
		t.Errorf("padded streams: Size = %d, %v; want %d", n, err, 2*len(data))
	}
	bad := append(append([]byte(nil), one...), 0, 0)
	if _, err := Size(bytes.NewReader(bad), int64(len(bad)), XZ); err == nil {
		t.Error("padding of two bytes: Size accepted it")
	}
	arm := tool{"xz", "xz-utils", []string{"-c", "--arm64", "--lzma2"}, XZ}.compress(t, data)
	if _, _, err := decodeAll(t, arm, Options{Name: "kernel"}); err == nil || !strings.Contains(err.Error(), "unsupported") || !strings.HasPrefix(err.Error(), "kernel: xz: ") {
		t.Errorf("xz with the arm64 filter: %v, want an error naming the input and saying it is unsupported", err)
	}
}
