package source

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ocidisk/ocidisk/internal/compression"
)

// files gives random access to the named files of an image layout: a
// directory, or a tar archive read in place.
type files interface {
	// open returns the file called name (slash-separated, relative); the
	// reader stays valid until the image is closed.
	open(name string) (*io.SectionReader, error)
}

// dirFiles are the files under a directory.
type dirFiles struct {
	root string
	im   *Image
}

func (d dirFiles) open(name string) (*io.SectionReader, error) {
	f, err := os.Open(filepath.Join(d.root, filepath.FromSlash(name)))
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	d.im.keep(f)
	return io.NewSectionReader(f, 0, st.Size()), nil
}

// tarFiles are the regular files of a tar archive, found by one pass over
// its headers (the content is skipped by seeking) and read where they lie.
type tarFiles struct {
	f     *os.File
	index map[string][2]int64 // name → offset, size
}

func indexTar(f *os.File) (*tarFiles, error) {
	kind, err := compression.SniffAt(f)
	if err != nil {
		return nil, err
	}
	if kind != compression.None {
		return nil, fmt.Errorf("the archive is compressed with %s; it is read in place, so decompress it first", kind)
	}
	t := &tarFiles{f: f, index: map[string][2]int64{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		t.index[path.Clean(strings.TrimPrefix(h.Name, "./"))] = [2]int64{off, h.Size}
	}
	if len(t.index) == 0 {
		return nil, errors.New("empty archive")
	}
	return t, nil
}

func (t *tarFiles) open(name string) (*io.SectionReader, error) {
	e, ok := t.index[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return io.NewSectionReader(t.f, e[0], e[1]), nil
}

// readSmall reads a whole small file (JSON).
func readSmall(fsys files, name string) ([]byte, error) {
	sr, err := fsys.open(name)
	if err != nil {
		return nil, err
	}
	if sr.Size() > maxJSON {
		return nil, fmt.Errorf("%s: %d bytes is too large", name, sr.Size())
	}
	b := make([]byte, sr.Size())
	if _, err := io.ReadFull(sr, b); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

// splitPathRef splits "PATH[:REF]" or "PATH@DIGEST". A path may itself
// hold colons: the shortest prefix that exists is the path. When none
// exists the part before the first colon is taken, so that the error names
// what is missing.
func splitPathRef(s string) (p, ref string) {
	if i := strings.LastIndex(s, "@sha256:"); i > 0 {
		return s[:i], s[i:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		if _, err := os.Stat(s[:i]); err == nil {
			return s[:i], s[i+1:]
		}
	}
	if _, err := os.Stat(s); err == nil {
		return s, ""
	}
	p, ref, _ = strings.Cut(s, ":")
	return p, ref
}
