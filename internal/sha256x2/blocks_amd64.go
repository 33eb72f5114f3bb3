package sha256x2

import "golang.org/x/sys/cpu"

//go:noescape
func blocks(state *[2][8]uint32, a, b *byte, n int)

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

func available() bool {
	if !cpu.X86.HasSSSE3 || !cpu.X86.HasSSE41 {
		return false
	}
	if max, _, _, _ := cpuid(0, 0); max < 7 {
		return false
	}
	// Leaf 7's EBX bit 29: the SHA extensions.
	_, ebx, _, _ := cpuid(7, 0)
	return ebx&(1<<29) != 0
}
