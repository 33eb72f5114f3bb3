//go:build amd64 || arm64

package xz

// prefetch3 asks the processor to bring the memory at three addresses into
// its caches. Go has no prefetch of its own; a load would stall the walk
// that the prefetch is meant to overlap. A prefetch never faults, so the
// addresses need not be valid.
//
//go:noescape
func prefetch3(a, b, c uintptr)
