//go:build !amd64 && !arm64

package xz

// prefetch3 does nothing where there is no assembly for it (see
// prefetch_asm.go).
func prefetch3(a, b, c uintptr) {}
