//go:build !amd64

package sha256x2

func blocks(state *[2][8]uint32, a, b *byte, n int) { panic("sha256x2: not on this architecture") }

func available() bool { return false }
