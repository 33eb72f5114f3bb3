// Package fattest holds what tests of FAT images share: a random boot-tree
// generator aimed at FAT's hard cases, and judges that check an image with
// fsck.vfat and read it back with mtools.
package fattest

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/ocidisk/ocidisk/fstree"
)

// TreeOptions shape a random tree.
type TreeOptions struct {
	// Entries is about how many names the tree gets; 0 means 40.
	Entries int
	// Big, when positive, adds /big.bin of that many bytes, generated on
	// the fly as it is read.
	Big int64
}

// Tree returns a random boot tree for seed: nested directories; short,
// long, unicode and very long names in mixed case (never two that differ
// only in case, which FAT refuses); names whose 8.3 aliases collide (longname1.txt ... longname12.txt next to a
// literal LONGNA~1.TXT); empty, zero-filled and cluster-boundary-sized
// files; times before 1980. Content is produced when read,
// so trees cost no memory for their bytes. The same seed gives the same
// tree.
func Tree(seed uint64, o TreeOptions) *fstree.Tree {
	if o.Entries == 0 {
		o.Entries = 40
	}
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x0c1d15c)), seed: seed, t: fstree.New()}
	g.t.Root.Mtime = g.time()
	left := o.Entries
	g.fill(g.t.Root, 0, &left)
	if o.Big > 0 {
		n := fstree.NewFile(0o644, o.Big, g.content(o.Big, false))
		n.Mtime = g.time()
		g.t.Root.SetChild("big.bin", n)
	}
	return g.t
}

type gen struct {
	r     *rand.Rand
	seed  uint64
	t     *fstree.Tree
	files uint64
}

func (g *gen) fill(d *fstree.Node, depth int, left *int) {
	n := 1 + g.r.IntN(10)
	for i := 0; i < n && *left > 0; i++ {
		*left--
		if g.r.IntN(8) == 0 {
			// A run of names whose aliases collide, past the ~9 limit
			// some of the time, next to the literal alias of the first.
			k := 2 + g.r.IntN(12)
			for j := 1; j <= k; j++ {
				g.file(d, fmt.Sprintf("longname%d.txt", j))
			}
			if g.r.IntN(2) == 0 {
				g.file(d, "LONGNA~1.TXT")
			}
			continue
		}
		name := g.name(d)
		if depth < 4 && g.r.IntN(4) == 0 {
			sub := fstree.NewDir(0o755)
			sub.Mtime = g.time()
			d.SetChild(name, sub)
			g.fill(sub, depth+1, left)
			continue
		}
		g.file(d, name)
	}
}

// taken reports that d has a name equal to name without regard to case,
// which FAT refuses.
func taken(d *fstree.Node, name string) bool {
	for _, e := range d.Entries() {
		if strings.EqualFold(e.Name, name) {
			return true
		}
	}
	return false
}

func (g *gen) file(d *fstree.Node, name string) {
	if taken(d, name) {
		return
	}
	size := g.size()
	n := fstree.NewFile(0o644, size, g.content(size, g.r.IntN(10) == 0))
	if g.r.IntN(8) == 0 {
		n.Mode = 0o444
	}
	n.Mtime = g.time()
	d.SetChild(name, n)
}

func (g *gen) size() int64 {
	switch g.r.IntN(4) {
	case 0:
		// Sizes at cluster and block boundaries.
		sizes := []int64{0, 1, 511, 512, 513, 2047, 2048, 2049, 4095, 4096, 4097, 32767, 32768, 32769, 65536}
		return sizes[g.r.IntN(len(sizes))]
	case 1:
		return int64(g.r.IntN(600))
	case 2:
		return int64(g.r.IntN(64 << 10))
	}
	return int64(g.r.IntN(400 << 10))
}

// time is a random time from 1975 (before FAT's epoch some of the time) to
// 2099, with sub-second parts, or zero now and then. Not later: mcopy -m
// 4.0.32 counts 2100 as a leap year and sets later times a day off.
func (g *gen) time() time.Time {
	if g.r.IntN(20) == 0 {
		return time.Time{}
	}
	lo := time.Date(1975, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	return time.Unix(lo+g.r.Int64N(hi-lo), g.r.Int64N(1e9)).UTC()
}

const (
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
	lower  = "abcdefghijklmnopqrstuvwxyz0123456789_-"
	mixed  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	longer = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .+,;=[]!#$%&'()-@^_`{}~"
)

// name returns a name not yet in d, of a random kind.
func (g *gen) name(d *fstree.Node) string {
	for {
		var s string
		switch g.r.IntN(9) {
		case 0:
			s = g.str(upper, 1, 8) + g.opt("."+g.str(upper, 1, 3))
		case 1:
			s = g.str(lower, 1, 8) + g.opt("."+g.str(lower, 1, 3))
		case 2:
			s = g.str(mixed, 2, 8) + g.opt("."+g.str(mixed, 1, 3))
		case 3:
			s = g.str(longer, 9, 60)
		case 4:
			// Beyond ASCII. Not beyond the BMP: mtools 4.0.32 shows
			// surrogate pairs as "__" (Linux and Windows read them).
			runes := []string{"é", "ü", "ß", "Ω", "ñ", "日本", "語", "ファイル", "中", "Ärger", "ø", "€"}
			var b strings.Builder
			for range 1 + g.r.IntN(6) {
				b.WriteString(runes[g.r.IntN(len(runes))])
				b.WriteString(g.opt(g.str(lower, 1, 4)))
			}
			s = b.String() + g.opt(".txt")
		case 5:
			s = g.str(longer, 200, 255)
		case 6:
			s = "." + g.str(lower, 1, 10)
		case 7:
			s = g.str(lower, 3, 5) + "." + g.str(lower, 4, 8) // extension too long
		case 8:
			s = g.str(upper, 1, 4) + "." + g.str(upper, 1, 2) + "." + g.str(lower, 1, 3) // several dots
		}
		s = strings.TrimLeft(s, " ")
		for s != "" && (strings.HasSuffix(s, ".") || strings.HasSuffix(s, " ")) {
			s = s[:len(s)-1]
		}
		if s == "" || s == "." || s == ".." || len(utf16.Encode([]rune(s))) > 255 || taken(d, s) {
			continue
		}
		return s
	}
}

func (g *gen) str(alphabet string, lo, hi int) string {
	n := lo + g.r.IntN(hi-lo+1)
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

func (g *gen) opt(s string) string {
	if g.r.IntN(2) == 0 {
		return ""
	}
	return s
}

// content returns size bytes of pseudo-random (or zero) content, made
// when opened.
func (g *gen) content(size int64, zero bool) fstree.Content {
	g.files++
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], g.seed)
	binary.LittleEndian.PutUint64(key[8:], g.files)
	return fstree.Func(func() (io.ReadCloser, error) {
		if zero {
			return io.NopCloser(io.LimitReader(zeros{}, size)), nil
		}
		return io.NopCloser(io.LimitReader(rand.NewChaCha8(key), size)), nil
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
