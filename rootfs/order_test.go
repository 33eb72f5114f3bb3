package rootfs

import (
	"context"
	"io"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages"
)

// sizedLayer records when it is opened and says how large it is.
type sizedLayer struct {
	memLayer
	size   int64
	mu     *sync.Mutex
	opened *[]string
}

func (l sizedLayer) Size() int64 { return l.size }
func (l sizedLayer) Open(ctx context.Context) (*io.SectionReader, error) {
	l.mu.Lock()
	*l.opened = append(*l.opened, l.name)
	l.mu.Unlock()
	return l.memLayer.Open(ctx)
}

// TestFlattenOpensLargestFirst: layers are opened largest first (equal
// sizes in layer order), and applied in layer order all the same.
func TestFlattenOpensLargestFirst(t *testing.T) {
	// One worker, so that the order of the opens is the schedule's.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	tests := []struct {
		sizes []int64
		want  []string
	}{
		{[]int64{10, 300, 20, 300, 5}, []string{"l1", "l3", "l2", "l0", "l4"}},
		{[]int64{1, 2, 3}, []string{"l2", "l1", "l0"}},
		{[]int64{7, 7}, []string{"l0", "l1"}},
	}
	for _, tt := range tests {
		var (
			mu     sync.Mutex
			opened []string
			ls     []Layer
		)
		for i, size := range tt.sizes {
			// Each layer writes the same file: the last one's must win.
			b, err := testimages.TarOf([]testimages.Entry{testimages.File("f", string(rune('a'+i)), 0o644)})
			if err != nil {
				t.Fatal(err)
			}
			name := "l" + string(rune('0'+i))
			ls = append(ls, sizedLayer{memLayer{name, b}, size, &mu, &opened})
		}
		tr, err := Flatten(t.Context(), ls, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(opened, tt.want) {
			t.Errorf("sizes %v: opened %v, want %v", tt.sizes, opened, tt.want)
		}
		got, err := fstree.ReadAll(lookup(t, tr, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(rune('a'+len(tt.sizes)-1)) {
			t.Errorf("sizes %v: /f = %q, want the last layer's", tt.sizes, got)
		}
	}
}
