package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/bootfs"
	"github.com/ocidisk/ocidisk/bootfs/initramfs"
	"github.com/ocidisk/ocidisk/kernel"
)

// initrdAhead builds the initramfs in the background once the kernel and
// the build's time are known, which is before the root is: the initramfs
// depends on neither the root nor the disk (bootfs.InitramfsSpec), and
// compressing it was 0.1 s of the boot partition's assembly, on the build's
// critical path after the root's last layer.
type initrdAhead struct {
	done    chan struct{}
	abandon chan struct{}
	once    sync.Once
	spec    initramfs.Spec
	built   bool // spec was built: rd and err are its
	rd      []byte
	err     error
}

// startInitrd starts waiting for the kernel and the time, from kernels and
// times, for layout l.
func startInitrd(ctx context.Context, l *boards.Layout, verity bool, kernels <-chan *kernel.Kernel, times <-chan time.Time) *initrdAhead {
	a := &initrdAhead{done: make(chan struct{}), abandon: make(chan struct{})}
	go func() {
		defer close(a.done)
		k, ok := receive(ctx, a.abandon, kernels)
		if !ok {
			return
		}
		t, ok := receive(ctx, a.abandon, times)
		if !ok {
			return
		}
		spec, err := bootfs.InitramfsSpec(l, k, verity, t)
		if err != nil {
			return // the assembly meets it again, and reports it
		}
		a.spec, a.built = spec, true
		a.rd, a.err = initramfs.Build(spec)
	}()
	return a
}

// receive waits for a value from c, unless stop closes or ctx ends first.
func receive[T any](ctx context.Context, stop <-chan struct{}, c <-chan T) (v T, ok bool) {
	select {
	case v = <-c:
		return v, true
	case <-stop:
	case <-ctx.Done():
	}
	return v, false
}

// stop gives up on what has not started and waits for what has.
func (a *initrdAhead) stop() {
	a.once.Do(func() { close(a.abandon) })
	<-a.done
}

// build is bootfs.Options.Initramfs: the initramfs made ahead when it is
// of spec, else one built now.
func (a *initrdAhead) build(spec initramfs.Spec) ([]byte, error) {
	a.stop()
	if a.built && a.spec.Equal(spec) {
		return a.rd, a.err
	}
	return initramfs.Build(spec)
}
