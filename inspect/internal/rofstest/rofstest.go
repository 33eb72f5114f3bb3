// Package rofstest holds what the fuzz targets of inspect's filesystem
// readers share: a bounded walk that exercises every reader call on a
// filesystem opened from arbitrary bytes, and a watchdog, since a reader
// must neither panic nor hang on a damaged image.
package rofstest

import (
	"errors"
	"io"
	"io/fs"
	"testing"
	"time"
)

// Limits of a walk: a damaged image can claim any number of entries, any
// depth (a directory that is its own parent) and files of any size.
const (
	maxEntries = 4096
	maxDepth   = 24
	maxRead    = 1 << 20  // of one file
	maxTotal   = 16 << 20 // of all files
)

// Walk lists every directory of fsys it can reach, depth first, stats each
// entry, reads up to a MiB of each regular file and the target of each
// symlink (through ReadLink, when fsys has it). Errors are the reader's
// answer to a damaged image and are fine; only a panic or a hang is not.
func Walk(fsys fs.FS) {
	n, total := 0, int64(0)
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		ents, err := fs.ReadDir(fsys, dir)
		if err != nil || depth > maxDepth {
			return
		}
		for _, e := range ents {
			if n++; n > maxEntries {
				return
			}
			p := e.Name()
			if dir != "." {
				p = dir + "/" + p
			}
			if !fs.ValidPath(p) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			_, _ = fs.Stat(fsys, p)
			switch {
			case fi.IsDir():
				walk(p, depth+1)
			case fi.Mode()&fs.ModeSymlink != 0:
				if rl, ok := fsys.(interface{ ReadLink(string) (string, error) }); ok {
					_, _ = rl.ReadLink(p)
				}
			case fi.Mode().IsRegular() && total < maxTotal:
				if f, err := fsys.Open(p); err == nil {
					k, _ := io.Copy(io.Discard, io.LimitReader(f, maxRead))
					total += k
					f.Close()
				}
			}
		}
	}
	walk(".", 0)
}

// Within runs fn and fails t when it has not returned in d.
func Within(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatal(errors.New("the reader has not returned after " + d.String()))
	}
}
