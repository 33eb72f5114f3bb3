package ext4

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's ext4_chksum: CRC-32C without the final inversion,
// continuing from crc. Go's crc32.Update inverts on entry and exit, so
// invert around it.
func crc32c(crc uint32, p []byte) uint32 {
	return ^crc32.Update(^crc, castagnoli, p)
}

func crc32cU32(crc, v uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return crc32c(crc, b[:])
}

// dirHash is ext4's half_md4 directory hash of name with seed; signed
// selects the signed-char variant (the superblock's signed_directory_hash
// flag). It returns the major hash (low bit clear) and the minor hash.
func dirHash(name []byte, seed [4]uint32, signed bool) (hash, minor uint32) {
	buf := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	if seed != [4]uint32{} {
		buf = seed
	}
	var in [8]uint32
	for p := name; ; p = p[32:] {
		hashBuf(p, in[:], signed)
		halfMD4(&buf, &in)
		if len(p) <= 32 {
			break
		}
	}
	hash = buf[1] &^ 1
	if hash == 0x7fffffff<<1 { // EXT4_HTREE_EOF_32BIT
		hash = (0x7fffffff - 1) << 1
	}
	return hash, buf[2]
}

// hashBuf is str2hashbuf: pack up to 4*len(out) bytes of msg into words,
// padding with a value derived from the remaining length.
func hashBuf(msg []byte, out []uint32, signed bool) {
	n := len(msg)
	pad := uint32(n) | uint32(n)<<8
	pad |= pad << 16
	val := pad
	num := len(out)
	if n > num*4 {
		n = num * 4
	}
	o := 0
	for i := 0; i < n; i++ {
		c := uint32(msg[i])
		if signed {
			c = uint32(int32(int8(msg[i])))
		}
		val = c + val<<8
		if i%4 == 3 {
			out[o] = val
			o++
			val = pad
			num--
		}
	}
	num--
	if num >= 0 {
		out[o] = val
		o++
	}
	for num--; num >= 0; num-- {
		out[o] = pad
		o++
	}
}

func halfMD4(buf *[4]uint32, in *[8]uint32) {
	const k2, k3 = 0o13240474631, 0o15666365641
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	r := func(fn func(x, y, z uint32) uint32, a *uint32, b, c, d, x uint32, s int) {
		*a = bits.RotateLeft32(*a+fn(b, c, d)+x, s)
	}
	r(f, &a, b, c, d, in[0], 3)
	r(f, &d, a, b, c, in[1], 7)
	r(f, &c, d, a, b, in[2], 11)
	r(f, &b, c, d, a, in[3], 19)
	r(f, &a, b, c, d, in[4], 3)
	r(f, &d, a, b, c, in[5], 7)
	r(f, &c, d, a, b, in[6], 11)
	r(f, &b, c, d, a, in[7], 19)

	r(g, &a, b, c, d, in[1]+k2, 3)
	r(g, &d, a, b, c, in[3]+k2, 5)
	r(g, &c, d, a, b, in[5]+k2, 9)
	r(g, &b, c, d, a, in[7]+k2, 13)
	r(g, &a, b, c, d, in[0]+k2, 3)
	r(g, &d, a, b, c, in[2]+k2, 5)
	r(g, &c, d, a, b, in[4]+k2, 9)
	r(g, &b, c, d, a, in[6]+k2, 13)

	r(h, &a, b, c, d, in[3]+k3, 3)
	r(h, &d, a, b, c, in[7]+k3, 9)
	r(h, &c, d, a, b, in[2]+k3, 11)
	r(h, &b, c, d, a, in[6]+k3, 15)
	r(h, &a, b, c, d, in[1]+k3, 3)
	r(h, &d, a, b, c, in[5]+k3, 9)
	r(h, &c, d, a, b, in[0]+k3, 11)
	r(h, &b, c, d, a, in[4]+k3, 15)

	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}
