package xz

import (
	"syscall"
	"unsafe"
)

// hugePages asks the kernel to back b with huge pages where it can: the
// match finder reads its tables and the block at random, and with 4 KiB
// pages most of those reads also miss the TLB. It is only advice, and
// harmless where the kernel does not take it.
func hugePages[T any](b []T) {
	n := len(b) * int(unsafe.Sizeof(b[0]))
	if n < 8<<20 {
		return // small enough for the TLB as it is
	}
	syscall.Madvise(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), n), syscall.MADV_HUGEPAGE)
}
