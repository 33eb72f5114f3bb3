package rootfs

import (
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// fuzzComponents are the names fuzzed paths are made of: plain ones, the
// whiteout and opaque markers, and the names a hostile layer uses to
// escape or confuse.
var fuzzComponents = []string{"a", "b", "etc", ".wh.a", ".wh.b", ".wh..wh..opq", ".wh..wh.plnk", "..", ".", "", ".wh.", ".wh..", "a\x00b"}

// fuzzLayers decodes a fuzz input into layers: either one raw tar (the
// first byte's top bit), or layers of entries of every kind, with paths
// made of fuzzComponents, that testimages.TarOf writes.
func fuzzLayers(data []byte) []Layer {
	if len(data) > 0 && data[0]&0x80 != 0 {
		return []Layer{memLayer{name: "raw", b: data[1:]}}
	}
	r := randtree.NewBytes(data)
	path := func() string {
		var parts []string
		for range 1 + r.U8()%3 {
			parts = append(parts, fuzzComponents[int(r.U8())%len(fuzzComponents)])
		}
		p := strings.Join(parts, "/")
		switch r.U8() % 5 {
		case 1:
			p = "./" + p
		case 2:
			p = "/" + p
		case 3:
			p += "/"
		}
		return p
	}
	var layers []Layer
	for l := range 1 + int(r.U8()%4) {
		var es []testimages.Entry
		for i := 0; i < 24 && r.More(); i++ {
			var e testimages.Entry
			switch op := r.U8() % 10; op {
			case 0:
				e = testimages.File(path(), string(r.Take(int(r.U8()%64))), int64(r.U16()))
			case 1:
				e = testimages.Dir(path(), int64(r.U16()))
			case 2:
				e = testimages.Symlink(path(), path())
			case 3:
				e = testimages.Hardlink(path(), path())
			case 4:
				e = testimages.Whiteout(path())
			case 5:
				e = testimages.Opaque(path())
			case 6:
				e = testimages.CharDev(path(), 0o666, int64(r.U16()), int64(r.U32()%(1<<20)))
			case 7:
				e = testimages.FIFO(path(), 0o644)
			case 8:
				e = testimages.Entry{Name: path(), Type: "0125673SLKgxA"[r.U8()%13], Mode: 0o644, Link: path()}
			case 9:
				e = testimages.File(path(), "", 0o4755).Own(int(r.U32()), int(r.U32()))
				e.Mtime = time.Unix(int64(r.U64()%(1<<40)), 0)
			}
			es = append(es, e)
		}
		b, err := testimages.TarOf(es)
		if err != nil {
			continue
		}
		layers = append(layers, memLayer{name: "layer" + string(rune('0'+l)), b: b})
	}
	return layers
}

// FuzzFlatten applies arbitrary layers (whiteouts, opaque directories,
// hardlinks, replacements, names that escape, raw tar bytes): Flatten may
// refuse them, but never panics, and a tree it returns holds only valid
// names, no whiteout marker as a file, and link counts that match its
// names.
// Run with: go test -run XXX -fuzz FuzzFlatten ./rootfs/
func FuzzFlatten(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 2, 0, 0xed, 1, 4, 0, 0, 1, 0, 1, 0, 5, 0, 4, 1, 3, 0, 1, 0, 0, 0})
	for _, c := range testimages.Corpus()[:12] {
		if b, err := testimages.TarOf(c.Layers[len(c.Layers)-1]); err == nil {
			f.Add(append([]byte{0x80}, b...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Flatten(t.Context(), fuzzLayers(data), source.Options{})
		if err != nil {
			return
		}
		names := map[*fstree.Node]int{}
		err = tr.Walk(func(p string, n *fstree.Node) error {
			if p == "" {
				return nil
			}
			base := p[strings.LastIndexByte(p, '/')+1:]
			if err := fstree.CheckName(base); err != nil {
				t.Fatalf("%q: %v", p, err)
			}
			// A directory may carry such a name when a deeper entry
			// implies it ("x/.wh.b/c"), as runtimes create it; a file
			// so named would be a whiteout applied as a file.
			if strings.HasPrefix(base, ".wh.") && n.Type != fstree.TypeDir {
				t.Fatalf("%q: a whiteout marker is in the tree as a %v", p, n.Type)
			}
			names[n]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for n, k := range names {
			if n.Type != fstree.TypeDir && n.Links() != k {
				t.Fatalf("a %v node has %d names in the tree but counts %d links", n.Type, k, n.Links())
			}
		}
	})
}
