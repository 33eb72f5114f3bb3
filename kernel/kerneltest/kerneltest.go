// Package kerneltest makes kernel modules for tests: minimal ELF files
// with the .modinfo section a module's reader looks at; and stand-ins for
// a kernel Image that is an EFI application.
package kerneltest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"math/rand/v2"
)

// Module builds a minimal relocatable aarch64 ELF whose .modinfo holds the
// given key=value strings: what a module looks like to a reader of
// .modinfo.
func Module(info ...string) []byte {
	var modinfo []byte
	for _, kv := range info {
		modinfo = append(append(modinfo, kv...), 0)
	}
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	infoOff := uint64(64)
	strOff := infoOff + uint64(len(modinfo))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7
	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_AARCH64), Version: 1,
		Shoff: shOff, Ehsize: 64, Shentsize: 64, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	binary.Write(&b, binary.LittleEndian, hdr)
	b.Write(modinfo)
	b.Write(shstr)
	b.Write(make([]byte, shOff-uint64(b.Len())))
	for _, s := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: infoOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	} {
		binary.Write(&b, binary.LittleEndian, s)
	}
	return b.Bytes()
}

// EFIImage is a stand-in for a kernel built with its EFI stub (an arm64
// Image is an EFI application): the MZ and PE headers of a PE32+ image
// for machine (0xaa64 for arm64) with the given SizeOfImage, what a UKI's
// builder and debug/pe read, the arm64 Image magic, then pseudo-random
// bytes up to size.
func EFIImage(size int, machine uint16, sizeOfImage uint32) []byte {
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size)}).Read(b)
	copy(b, "MZ")
	clear(b[0x38 : 0x40+24+240]) // the headers debug/pe reads
	copy(b[0x38:], "ARM\x64")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x44:], machine)
	binary.LittleEndian.PutUint16(b[0x54:], 240) // SizeOfOptionalHeader
	binary.LittleEndian.PutUint16(b[0x58:], 0x20b)
	binary.LittleEndian.PutUint32(b[0x58+56:], sizeOfImage)
	binary.LittleEndian.PutUint32(b[0x58+108:], 16) // NumberOfRvaAndSizes
	return b
}
