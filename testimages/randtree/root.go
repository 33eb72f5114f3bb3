package randtree

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
)

// RootStats counts what WriteRootTar wrote.
type RootStats struct {
	Entries int   // tar entries, the root directory excluded
	Bytes   int64 // file content
}

// WriteRootTar streams a layer tar of a synthetic root filesystem of
// entries names, shaped like a distribution's root rather than like New's
// trees, which exercise every corner: ASCII names of a few to 40 bytes,
// about 80% regular files (most under 2 KiB, a few up to 128 KiB, one in
// five empty), 8% directories, 11% symlinks, a few hardlinks, device nodes
// and file capabilities, owners mostly root, times in whole seconds.
// Some directories are very wide (tens of thousands of entries, like
// /usr/share/doc or a module tree), most hold a few dozen.
//
// It exists for scale: a million entries cost the generator a few MiB,
// never a tree in memory, so what a benchmark measures is the reader's
// memory. The same seed and count give the same bytes.
func WriteRootTar(w io.Writer, seed uint64, entries int) (RootStats, error) {
	g := &rootGen{
		r:     rand.New(rand.NewPCG(seed, 0x726f_6f74_7461_7221)),
		bw:    bufio.NewWriterSize(w, 1<<20),
		buf:   make([]byte, 128<<10),
		epoch: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).Unix(),
	}
	g.tw = tar.NewWriter(g.bw)
	dirs := max(1, entries*8/100)
	// Each directory's parent is an earlier one, mostly a shallow one, so
	// the tree is bushy and some depth builds up; each non-directory goes
	// to a directory drawn with a skew, so that a few are very wide.
	g.parent = make([]int32, dirs)
	g.kids = make([][]int32, dirs)
	for i := 1; i < dirs; i++ {
		p := int32(g.r.IntN(i))
		if g.r.IntN(2) == 0 {
			p = int32(g.r.IntN(min(i, 64)))
		}
		g.parent[i] = p
		g.kids[p] = append(g.kids[p], int32(i))
	}
	g.files = make([]int32, dirs)
	for range entries - (dirs - 1) {
		// The square of a uniform draw favours low numbers: directories
		// made early (near the top) take most entries.
		u := g.r.Float64()
		g.files[int(u*u*u*float64(dirs))]++
	}
	if err := g.header(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}); err != nil {
		return g.stats, err
	}
	g.stats.Entries-- // the root is not an entry
	if err := g.dir(0, ""); err != nil {
		return g.stats, err
	}
	if err := g.tw.Close(); err != nil {
		return g.stats, fmt.Errorf("root tar: %w", err)
	}
	return g.stats, g.bw.Flush()
}

type rootGen struct {
	r      *rand.Rand
	bw     *bufio.Writer
	tw     *tar.Writer
	buf    []byte
	epoch  int64
	parent []int32
	kids   [][]int32 // subdirectories of each directory
	files  []int32   // non-directories of each directory
	recent [256]string
	nfiles int
	stats  RootStats
}

var rootWords = []string{"lib", "share", "bin", "doc", "python3", "locale", "man", "include", "x86", "aarch64",
	"gnu", "perl", "systemd", "modules", "kernel", "drivers", "net", "usr", "etc", "conf", "data", "util", "core", "base"}

var rootExts = []string{"", "", ".so", ".so.1", ".py", ".pyc", ".h", ".gz", ".conf", ".txt", ".pm", ".ko", ".mo", ".html", ".json"}

// name is the i-th name of a directory: a word, a number that keeps names
// unique, an extension.
func (g *rootGen) name(i int, ext bool) string {
	b := make([]byte, 0, 40)
	b = append(b, rootWords[g.r.IntN(len(rootWords))]...)
	if g.r.IntN(3) == 0 {
		b = append(b, '-')
		b = append(b, rootWords[g.r.IntN(len(rootWords))]...)
	}
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(i), 10)
	if ext {
		b = append(b, rootExts[g.r.IntN(len(rootExts))]...)
	}
	return string(b)
}

func (g *rootGen) meta(h *tar.Header) {
	h.ModTime = time.Unix(g.epoch-int64(g.r.IntN(400))*86400, 0)
	if g.r.IntN(20) == 0 {
		h.Uid, h.Gid = 100+g.r.IntN(10), 100+g.r.IntN(10)
	}
	h.Format = tar.FormatPAX
}

func (g *rootGen) header(h *tar.Header) error {
	g.stats.Entries++
	if err := g.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("root tar: %s: %w", h.Name, err)
	}
	return nil
}

// dir writes the entries of directory d at path p (with a trailing slash,
// or "" for the root): its non-directories, then each subdirectory and its
// subtree.
func (g *rootGen) dir(d int, p string) error {
	n := 0
	for range g.files[d] {
		if err := g.nonDir(p + g.name(n, true)); err != nil {
			return err
		}
		n++
	}
	for _, k := range g.kids[d] {
		sp := p + g.name(n, false) + "/"
		n++
		h := &tar.Header{Typeflag: tar.TypeDir, Name: "./" + sp, Mode: 0o755}
		g.meta(h)
		if err := g.header(h); err != nil {
			return err
		}
		if err := g.dir(int(k), sp); err != nil {
			return err
		}
	}
	return nil
}

func (g *rootGen) nonDir(p string) error {
	h := &tar.Header{Name: "./" + p, Mode: 0o644}
	g.meta(h)
	switch x := g.r.IntN(1000); {
	case x < 120: // symlinks, most short
		h.Typeflag, h.Mode = tar.TypeSymlink, 0o777
		h.Linkname = "../" + g.name(g.r.IntN(1000), true)
		if x < 10 {
			h.Linkname = "/usr/lib/" + g.name(g.r.IntN(1000), false) + "/" + g.name(g.r.IntN(1000), false) + "/" + g.name(g.r.IntN(1000), true)
		}
		return g.header(h)
	case x < 125 && g.nfiles > 0: // hardlinks, to a file written shortly before
		h.Typeflag = tar.TypeLink
		h.Linkname = g.recent[g.r.IntN(min(g.nfiles, len(g.recent)))]
		return g.header(h)
	case x < 128:
		h.Typeflag, h.Mode, h.Devmajor, h.Devminor = tar.TypeChar, 0o660, int64(g.r.IntN(256)), int64(g.r.IntN(256))
		return g.header(h)
	}
	h.Typeflag = tar.TypeReg
	if g.r.IntN(3) == 0 {
		h.Mode = 0o755
	}
	if g.r.IntN(2000) == 0 {
		h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x30\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
	}
	switch x := g.r.IntN(100); {
	case x < 20:
	case x < 90:
		h.Size = g.r.Int64N(2 << 10)
	case x < 99:
		h.Size = g.r.Int64N(8 << 10)
	default:
		h.Size = g.r.Int64N(128 << 10)
	}
	if err := g.header(h); err != nil {
		return err
	}
	g.recent[g.nfiles%len(g.recent)] = h.Name
	g.nfiles++
	c := Content{Seed: g.r.Uint64(), Size: h.Size}
	b := g.buf[:h.Size]
	if _, err := c.ReadAt(b, 0); err != nil && err != io.EOF {
		return err
	}
	if _, err := g.tw.Write(b); err != nil {
		return fmt.Errorf("root tar: %s: %w", h.Name, err)
	}
	g.stats.Bytes += h.Size
	return nil
}
