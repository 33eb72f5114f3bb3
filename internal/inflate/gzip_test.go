package inflate

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/internal/hosttool"
)

func gzipped(t testing.TB, data []byte, hdr gzip.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Header = hdr
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gunzip(z []byte, wrap func(io.Reader) io.Reader) ([]byte, error) {
	r, err := NewGzipReader(wrap(bytes.NewReader(z)))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// gunzipTo decodes through WriteTo, which must give what Read gives.
func gunzipTo(z []byte, wrap func(io.Reader) io.Reader) ([]byte, error) {
	r, err := NewGzipReader(wrap(bytes.NewReader(z)))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = r.WriteTo(&out)
	return out.Bytes(), err
}

// The gzip tool's own output, at its fastest and best levels and for a
// short text (which it codes with the fixed code), decodes to its input.
func TestGzipTool(t *testing.T) {
	tool := hosttool.Require(t, "gzip", "gzip")
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"short", []byte("hello, hello, hello world\n")},
		{"corpus", corpus(3, 2_000_000)},
	} {
		for _, level := range []string{"-1", "-6", "-9"} {
			cmd := exec.Command(tool, "-c", "-n", level)
			cmd.Stdin = bytes.NewReader(c.data)
			z, err := cmd.Output()
			if err != nil {
				t.Fatalf("gzip %s: %v", level, err)
			}
			for _, rd := range readers {
				got, err := gunzip(z, rd.wrap)
				if err != nil || !bytes.Equal(got, c.data) {
					t.Fatalf("%s, gzip %s, %s: %d bytes, %v; want the %d bytes given", c.name, level, rd.name, len(got), err, len(c.data))
				}
			}
		}
	}
}

// withHCRC sets FHCRC in a header-only gzip member (no name, extra or
// comment) and inserts the header's CRC, or a wrong one.
func withHCRC(z []byte, right bool) []byte {
	h := bytes.Clone(z[:10])
	h[3] |= flagHCRC
	crc := uint16(crc32.ChecksumIEEE(h))
	if !right {
		crc++
	}
	return append(binary.LittleEndian.AppendUint16(h, crc), z[10:]...)
}

func TestGzipFraming(t *testing.T) {
	a, b := corpus(4, 70000), []byte("second member")
	za, zb := gzipped(t, a, gzip.Header{}), gzipped(t, b, gzip.Header{})
	fields := gzipped(t, a, gzip.Header{Name: "layer.tar", Comment: "a comment", Extra: []byte("extra field")})
	badCRC := bytes.Clone(za)
	badCRC[len(badCRC)-8] ^= 1
	badSize := bytes.Clone(za)
	badSize[len(badSize)-1] ^= 1
	badCM := bytes.Clone(za)
	badCM[2] = 7
	reserved := bytes.Clone(za)
	reserved[3] |= 0x20
	// A second member whose match reaches into the first: members do not
	// share history.
	reach := append(append(bytes.Clone(zb[:10]), fixedStream([]int{257, 0, 2, 0})...), make([]byte, 8)...)

	for _, c := range []struct {
		name string
		z    []byte
		want []byte
		err  error // nil: want is the output
	}{
		{"one member", za, a, nil},
		{"two members", append(bytes.Clone(za), zb...), append(bytes.Clone(a), b...), nil},
		{"name, comment, extra", fields, a, nil},
		{"name of 511 bytes", gzipped(t, b, gzip.Header{Name: strings.Repeat("n", 511)}), b, nil},
		{"name of 512 bytes", gzipped(t, b, gzip.Header{Name: strings.Repeat("n", 512)}), nil, ErrHeader},
		{"header CRC", withHCRC(za, true), a, nil},
		{"wrong header CRC", withHCRC(za, false), nil, ErrHeader},
		{"empty", nil, nil, io.EOF},
		{"one byte", za[:1], nil, io.ErrUnexpectedEOF},
		{"not gzip", []byte("PK\x03\x04 and more than ten bytes"), nil, ErrHeader},
		{"method 7", badCM, nil, ErrHeader},
		{"reserved flag", reserved, a, nil},
		{"wrong CRC", badCRC, nil, ErrChecksum},
		{"wrong size", badSize, nil, ErrChecksum},
		{"no trailer", za[:len(za)-8], nil, io.ErrUnexpectedEOF},
		{"half a trailer", za[:len(za)-4], nil, io.ErrUnexpectedEOF},
		{"trailing garbage", append(bytes.Clone(za), 'x'), nil, io.ErrUnexpectedEOF},
		{"trailing header garbage", append(bytes.Clone(za), []byte("not a gzip header")...), nil, ErrHeader},
		{"trailing zeros", append(bytes.Clone(za), make([]byte, 512)...), nil, ErrHeader},
		{"history across members", append(bytes.Clone(za), reach...), nil, &CorruptError{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, rd := range readers {
				got, err := gunzip(c.z, rd.wrap)
				if to, terr := gunzipTo(c.z, rd.wrap); !bytes.Equal(to, got) && terr == nil || (terr == nil) != (err == nil) {
					t.Fatalf("%s: WriteTo gives %d bytes, %v; Read %d bytes, %v", rd.name, len(to), terr, len(got), err)
				}
				switch ce := (*CorruptError)(nil); {
				case c.err == nil:
					if err != nil || !bytes.Equal(got, c.want) {
						t.Fatalf("%s: %d bytes, %v; want the %d bytes", rd.name, len(got), err, len(c.want))
					}
				case errors.As(c.err, &ce):
					if !errors.As(err, &ce) {
						t.Fatalf("%s: got %v, want a CorruptError", rd.name, err)
					}
				case !errors.Is(err, c.err):
					t.Fatalf("%s: got %v, want %v", rd.name, err, c.err)
				}
				// compress/gzip agrees on which streams are good.
				std, serr := stdGunzip(c.z)
				if (serr == nil) != (c.err == nil) || serr == nil && !bytes.Equal(std, got) {
					t.Fatalf("compress/gzip reads %d bytes, %v", len(std), serr)
				}
			}
		})
	}
}

func stdGunzip(z []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// Arbitrary input reads as compress/gzip reads it: the same bytes, or an
// error from both.
func FuzzGzip(f *testing.F) {
	f.Add(gzipped(f, corpus(5, 5000), gzip.Header{Name: "x"}))
	f.Add(append(gzipped(f, []byte("a"), gzip.Header{}), gzipped(f, []byte("b"), gzip.Header{})...))
	f.Add(withHCRC(gzipped(f, []byte("hello"), gzip.Header{}), true))
	f.Fuzz(func(t *testing.T, z []byte) {
		want, werr := stdGunzip(z)
		got, gerr := gunzip(z, func(r io.Reader) io.Reader { return r })
		if (werr == nil) != (gerr == nil) || werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%s", fmt.Sprintf("input %x: got %d bytes, %v; compress/gzip %d bytes, %v", z, len(got), gerr, len(want), werr))
		}
	})
}
