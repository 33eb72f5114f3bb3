package rootfs

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/source"
)

// Layer is what Flatten reads: an uncompressed tar with random access.
// *source.Layer is one; tests make others from bytes.
type Layer interface {
	// Digest names the layer in errors.
	Digest() string
	// Open returns the layer tar. The reader must stay valid as long as
	// the tree is used: file content in the tree refers to it.
	Open(ctx context.Context) (*io.SectionReader, error)
}

// ImpliedMtime is the mtime, in Unix seconds, of directories that no layer
// names but an entry needs as its parent (the root too, unless a layer
// names it): the epoch, the one time that claims nothing.
const ImpliedMtime = 0

// Sizer is a Layer that knows how many bytes it stores (compressed):
// Flatten opens the largest first. *source.Layer is one.
type Sizer interface {
	Size() int64
}

// Flatten applies layers, oldest first, to an empty tree. Layers are opened
// (verified, decompressed) in parallel, up to GOMAXPROCS at a time, the
// largest first, while the ones already open are applied in order;
// opts.Log, when set, receives a debug line per layer.
//
// Largest first because the tree is done only when the last layer is: a
// large layer opened last, after the small ones, would run alone at the
// end with the other cores idle. Base layers are usually the largest, but
// not always (an image that installs a toolchain over a slim base).
func Flatten(ctx context.Context, layers []Layer, opts source.Options) (*fstree.Tree, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// On return, whatever the reason (an error, a signal), the workers are
	// stopped and waited for: one still decompressing a layer into the
	// cache must remove its temporary before the process exits.
	var workers sync.WaitGroup
	defer workers.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type opened struct {
		sr  *io.SectionReader
		err error
	}
	results := make([]chan opened, len(layers))
	for i := range results {
		results[i] = make(chan opened, 1)
	}
	order := make([]int, len(layers))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(size(layers[b]), size(layers[a])) })
	var next atomic.Int64
	for range min(runtime.GOMAXPROCS(0), len(layers)) {
		workers.Go(func() {
			for {
				n := int(next.Add(1) - 1)
				if n >= len(layers) || ctx.Err() != nil {
					return
				}
				i := order[n]
				sr, err := layers[i].Open(ctx)
				results[i] <- opened{sr, err}
			}
		})
	}

	t := fstree.New()
	t.Root.Mtime = time.Unix(ImpliedMtime, 0)
	for i, l := range layers {
		var r opened
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.err != nil {
			return nil, r.err
		}
		n, err := applyLayer(ctx, t, l.Digest(), r.sr, i == 0)
		if err != nil {
			return nil, err
		}
		log.Debug("applied layer", "layer", l.Digest(), "entries", n, "bytes", r.sr.Size())
	}
	return t, nil
}

// size is a layer's stored size, or 0 when it does not say.
func size(l Layer) int64 {
	if s, ok := l.(Sizer); ok {
		return s.Size()
	}
	return 0
}
