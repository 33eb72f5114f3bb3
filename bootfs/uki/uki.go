// Package uki assembles Unified Kernel Images: systemd's EFI stub
// (linuxaa64.efi.stub of Debian's systemd-boot-efi) with the kernel, the
// initrd, the kernel command line, os-release, the kernel version and a
// device tree added as PE sections, one EFI executable that UEFI firmware
// boots from \EFI\BOOT\BOOTAA64.EFI.
//
// The sections are laid out as systemd's ukify lays them out: in its order
// (.osrel, .cmdline, .dtb, .uname, .initrd, .linux), each after the last
// at the stub's SectionAlignment in memory and its FileAlignment in the
// file, their headers added to the stub's section table, SizeOfImage and
// SizeOfInitializedData updated and the PE checksum zero, as ukify leaves
// it (UEFI firmware does not check it; a signature, when one is added,
// covers the image). Nothing comes from the clock: the same inputs give
// the same bytes. The image is streamed: the kernel and initrd are read
// when the image is, never held in memory.
package uki

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/ocidisk/ocidisk/fstree"
)

// Parts are what a UKI holds besides the stub. Linux is required; a nil
// node or an empty string leaves its section out, as ukify does.
type Parts struct {
	// Stub is the EFI stub, e.g. linuxaa64.efi.stub.
	Stub []byte
	// Linux is the kernel as an EFI application: an arm64 Image (not
	// Debian's gzip'd vmlinuz; kernel.Kernel.Image(true) decompresses it).
	Linux *fstree.Node
	// Initrd is the initramfs, DTB a device tree the stub installs.
	Initrd, DTB *fstree.Node
	// Cmdline is the kernel command line, OSRelease the os-release file
	// boot menus show, Uname the kernel version (uname -r).
	Cmdline, OSRelease, Uname string
}

// Section describes one section of the image.
type Section struct {
	Name string
	// VirtualAddress and VirtualSize place it in memory; Offset and
	// RawSize (a multiple of the file alignment) in the file.
	VirtualAddress, VirtualSize uint32
	Offset, RawSize             uint32
	// Size is the size of its content.
	Size int64
}

// Image is an assembled UKI: its layout, and its bytes on demand.
type Image struct {
	// Size is the file's size.
	Size int64
	// Sections are the stub's sections, then the added ones.
	Sections []Section
	pieces   []piece
}

// piece is a run of the file: bytes, or content of a known size.
type piece struct {
	name    string
	b       []byte
	content fstree.Content
	size    int64
}

// PE/COFF constants.
const (
	peMagic32     = 0x10b
	peMagic32Plus = 0x20b
	sectionHeader = 40
	// Section characteristics.
	scnCode     = 0x00000020
	scnInitData = 0x00000040
	scnMemRead  = 0x40000000
	// Data directory 4 is the certificate table: a signed stub.
	dirSecurity = 4
)

// Optional header fields at the same offsets in PE32 and PE32+.
const (
	optSizeOfInitData = 8
	optSectionAlign   = 32
	optFileAlign      = 36
	optSizeOfImage    = 56
	optSizeOfHeaders  = 60
	optCheckSum       = 64
)

// Build lays out the UKI of p. It reads the start of the kernel (for its
// SizeOfImage and machine) but none of the rest.
func Build(p Parts) (*Image, error) {
	if p.Linux == nil {
		return nil, errors.New("uki: no kernel")
	}
	st, err := parse(p.Stub)
	if err != nil {
		return nil, fmt.Errorf("uki: stub: %w", err)
	}
	kernelMachine, kernelImage, err := kernelInfo(p.Linux)
	if err != nil {
		return nil, fmt.Errorf("uki: kernel: %w", err)
	}
	if kernelMachine != st.machine {
		return nil, fmt.Errorf("uki: kernel is for PE machine %#04x, the stub for %#04x", kernelMachine, st.machine)
	}

	var add []piece
	text := func(name, s string) {
		if s != "" {
			add = append(add, piece{name: name, content: fstree.Bytes(s), size: int64(len(s))})
		}
	}
	node := func(name string, n *fstree.Node) {
		if n != nil && n.Size > 0 {
			add = append(add, piece{name: name, content: n.Content, size: n.Size})
		}
	}
	text(".osrel", p.OSRelease)
	text(".cmdline", p.Cmdline)
	node(".dtb", p.DTB)
	text(".uname", p.Uname)
	node(".initrd", p.Initrd)
	node(".linux", p.Linux)
	return st.appendSections(add, kernelImage)
}

// stub is a parsed stub: its bytes (headers patched as sections are
// added) and where its headers are.
type stub struct {
	b                   []byte
	machine             uint16
	coff, opt, secs     int // offsets of the COFF header, optional header, section table
	nsec                int
	fileAlign, secAlign uint32
	sizeOfHeaders       uint32
	firstRaw            uint32 // the lowest file offset of a section's data
	memEnd              uint32 // the end of the last section in memory
}

var le = binary.LittleEndian

func parse(b []byte) (*stub, error) {
	if len(b) < 0x40 || string(b[:2]) != "MZ" {
		return nil, errors.New("not a PE file (no MZ header)")
	}
	pe := int(le.Uint32(b[0x3c:]))
	if pe+24 > len(b) || string(b[pe:pe+4]) != "PE\x00\x00" {
		return nil, errors.New("not a PE file (no PE signature)")
	}
	s := &stub{b: bytes.Clone(b), coff: pe + 4, opt: pe + 24}
	s.machine = le.Uint16(b[s.coff:])
	s.nsec = int(le.Uint16(b[s.coff+2:]))
	optSize := int(le.Uint16(b[s.coff+16:]))
	s.secs = s.opt + optSize
	if s.secs+s.nsec*sectionHeader > len(b) {
		return nil, errors.New("section table past the end of the file")
	}
	var dirs int
	switch le.Uint16(b[s.opt:]) {
	case peMagic32:
		dirs = 96
	case peMagic32Plus:
		dirs = 112
	default:
		return nil, fmt.Errorf("unknown optional header magic %#x", le.Uint16(b[s.opt:]))
	}
	if optSize < optCheckSum+4 {
		return nil, fmt.Errorf("optional header of %d bytes is too short", optSize)
	}
	if n := int(le.Uint32(b[s.opt+dirs-4:])); n > dirSecurity && dirs+8*dirSecurity+8 <= optSize &&
		le.Uint32(b[s.opt+dirs+8*dirSecurity:]) != 0 {
		// A signature would not cover the sections added.
		return nil, errors.New("the stub is signed: sign the UKI instead")
	}
	s.secAlign = le.Uint32(b[s.opt+optSectionAlign:])
	s.fileAlign = le.Uint32(b[s.opt+optFileAlign:])
	if !pow2(s.secAlign) || !pow2(s.fileAlign) || s.fileAlign < 512 {
		return nil, fmt.Errorf("alignments %#x (sections) and %#x (file) are not powers of two", s.secAlign, s.fileAlign)
	}

	// A symbol table at the end of the file (old stubs kept one) is
	// dropped, as ukify does: sections go where it was.
	if symtab := le.Uint32(b[s.coff+8:]); symtab != 0 {
		end := int64(symtab) + 18*int64(le.Uint32(b[s.coff+12:]))
		if end+4 <= int64(len(b)) {
			end += int64(le.Uint32(b[end:]))
		}
		if end == int64(len(b)) {
			s.b = s.b[:symtab]
			le.PutUint32(s.b[s.coff+8:], 0)
			le.PutUint32(s.b[s.coff+12:], 0)
		}
	}

	// The space before the first section's data can take more headers.
	s.sizeOfHeaders = alignUp(le.Uint32(b[s.opt+optSizeOfHeaders:]), s.fileAlign)
	s.firstRaw = s.sizeOfHeaders
	for i := range s.nsec {
		h := b[s.secs+i*sectionHeader:]
		vs, va, raw, off := le.Uint32(h[8:]), le.Uint32(h[12:]), le.Uint32(h[16:]), le.Uint32(h[20:])
		if raw > 0 {
			if off%s.fileAlign != 0 || raw%s.fileAlign != 0 {
				return nil, fmt.Errorf("section %s: data at %#x, %#x bytes, not aligned to %#x", name(h), off, raw, s.fileAlign)
			}
			if int64(off)+int64(raw) > int64(len(s.b)) {
				return nil, fmt.Errorf("section %s: data past the end of the file", name(h))
			}
			s.firstRaw = min(s.firstRaw, off)
		}
		s.memEnd = max(s.memEnd, va+max(vs, raw))
	}
	return s, nil
}

// name is a section header's name.
func name(h []byte) string { return string(bytes.TrimRight(h[:8], "\x00")) }

// kernelInfo reads the kernel's PE machine and SizeOfImage: in memory it
// needs room for its BSS beyond its file size.
func kernelInfo(n *fstree.Node) (machine uint16, sizeOfImage uint32, err error) {
	r, err := n.Content.Open()
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	head := make([]byte, min(n.Size, 4096))
	if _, err := io.ReadFull(r, head); err != nil {
		return 0, 0, fmt.Errorf("read the header: %w", err)
	}
	if len(head) < 0x40 || string(head[:2]) != "MZ" {
		return 0, 0, errors.New("not an EFI application (no MZ header): the stub needs a kernel built with its EFI stub, uncompressed")
	}
	pe := int(le.Uint32(head[0x3c:]))
	if pe+24+optSizeOfImage+4 > len(head) || string(head[pe:pe+4]) != "PE\x00\x00" {
		return 0, 0, errors.New("not an EFI application (no PE header)")
	}
	return le.Uint16(head[pe+4:]), le.Uint32(head[pe+24+optSizeOfImage:]), nil
}

// appendSections adds the sections after the stub's own and returns the
// image.
func (s *stub) appendSections(add []piece, kernelImage uint32) (*Image, error) {
	table := s.secs + (s.nsec+len(add))*sectionHeader
	if table > int(s.firstRaw) {
		return nil, fmt.Errorf("uki: stub: no room for %d more section headers before its first section", len(add))
	}
	im := &Image{}
	for i := range s.nsec {
		h := s.b[s.secs+i*sectionHeader:]
		im.Sections = append(im.Sections, Section{Name: name(h), VirtualSize: le.Uint32(h[8:]), VirtualAddress: le.Uint32(h[12:]),
			RawSize: le.Uint32(h[16:]), Offset: le.Uint32(h[20:]), Size: int64(le.Uint32(h[16:]))})
	}
	le.PutUint32(s.b[s.opt+optSizeOfHeaders:], s.sizeOfHeaders)

	fileEnd := int64(len(s.b))
	memEnd := int64(s.memEnd)
	initData := int64(le.Uint32(s.b[s.opt+optSizeOfInitData:]))
	for i, p := range add {
		va := alignUp64(memEnd, int64(s.secAlign))
		off := alignUp64(fileEnd, int64(s.fileAlign))
		raw := alignUp64(p.size, int64(s.fileAlign))
		vs := p.size
		ch := uint32(scnMemRead | scnInitData)
		if p.name == ".linux" {
			// The stub copies the kernel with the room for its BSS, as
			// the kernel's SizeOfImage says; ukify marks it code.
			vs = max(vs, int64(kernelImage))
			ch = scnMemRead | scnCode
		}
		if va+vs > 1<<32-1 || off+raw > 1<<32-1 {
			return nil, fmt.Errorf("uki: section %s of %d bytes takes the image past 4 GiB", p.name, p.size)
		}
		h := s.b[s.secs+(s.nsec+i)*sectionHeader:][:sectionHeader]
		clear(h)
		copy(h, p.name)
		le.PutUint32(h[8:], uint32(vs))
		le.PutUint32(h[12:], uint32(va))
		le.PutUint32(h[16:], uint32(raw))
		le.PutUint32(h[20:], uint32(off))
		le.PutUint32(h[36:], ch)
		im.Sections = append(im.Sections, Section{Name: p.name, VirtualAddress: uint32(va), VirtualSize: uint32(vs),
			Offset: uint32(off), RawSize: uint32(raw), Size: p.size})

		if off > fileEnd {
			im.pieces = append(im.pieces, piece{b: make([]byte, off-fileEnd)})
		}
		im.pieces = append(im.pieces, p)
		fileEnd = off + p.size
		memEnd = va + vs
		initData += vs
	}
	if pad := alignUp64(fileEnd, int64(s.fileAlign)) - fileEnd; pad > 0 {
		im.pieces = append(im.pieces, piece{b: make([]byte, pad)})
		fileEnd += pad
	}
	le.PutUint16(s.b[s.coff+2:], uint16(s.nsec+len(add)))
	le.PutUint32(s.b[s.opt+optSizeOfInitData:], uint32(min(initData, 1<<32-1)))
	le.PutUint32(s.b[s.opt+optSizeOfImage:], uint32(alignUp64(memEnd, int64(s.secAlign))))
	le.PutUint32(s.b[s.opt+optCheckSum:], 0)
	im.pieces = append([]piece{{name: "stub", b: s.b}}, im.pieces...)
	im.Size = fileEnd
	return im, nil
}

func pow2(x uint32) bool { return x != 0 && x&(x-1) == 0 }

func alignUp(x, a uint32) uint32 { return (x + a - 1) &^ (a - 1) }

func alignUp64(x, a int64) int64 { return (x + a - 1) &^ (a - 1) }

// Open returns a reader of the image's bytes: the patched stub, then each
// section's content, opened in turn, and padding.
func (im *Image) Open() (io.ReadCloser, error) {
	return &reader{pieces: slices.Clone(im.pieces)}, nil
}

// Node returns the image as a file node (mode 0644, no mtime: the caller
// sets it) whose content is Open, for a FAT writer to copy onto the ESP.
func (im *Image) Node() *fstree.Node { return fstree.NewFile(0o644, im.Size, im) }

// WriteTo writes the image to w.
func (im *Image) WriteTo(w io.Writer) (int64, error) {
	r, _ := im.Open()
	defer r.Close()
	return io.Copy(w, r)
}

// reader streams the pieces, each section's content checked to be the
// size it was laid out with.
type reader struct {
	pieces []piece
	cur    io.ReadCloser
	left   int64
}

func (r *reader) Read(p []byte) (int, error) {
	for {
		if r.cur != nil {
			if r.left == 0 {
				// The content must end where its size said.
				var one [1]byte
				n, _ := r.cur.Read(one[:])
				r.cur.Close()
				r.cur = nil
				if n > 0 {
					return 0, fmt.Errorf("uki: section %s: content longer than its size", r.pieces[0].name)
				}
				r.pieces = r.pieces[1:]
				continue
			}
			n, err := r.cur.Read(p[:min(int64(len(p)), r.left)])
			r.left -= int64(n)
			if err == io.EOF && r.left > 0 {
				err = fmt.Errorf("uki: section %s: content shorter than its %d bytes: %w", r.pieces[0].name, r.pieces[0].size, io.ErrUnexpectedEOF)
			} else if err == io.EOF {
				err = nil
			}
			return n, err
		}
		if len(r.pieces) == 0 {
			return 0, io.EOF
		}
		pc := &r.pieces[0]
		if pc.content == nil {
			n := copy(p, pc.b)
			if pc.b = pc.b[n:]; len(pc.b) == 0 {
				r.pieces = r.pieces[1:]
			}
			if n > 0 || len(p) == 0 {
				return n, nil
			}
			continue
		}
		c, err := pc.content.Open()
		if err != nil {
			return 0, fmt.Errorf("uki: section %s: %w", pc.name, err)
		}
		r.cur, r.left = c, pc.size
	}
}

func (r *reader) Close() error {
	if r.cur != nil {
		err := r.cur.Close()
		r.cur = nil
		return err
	}
	return nil
}
