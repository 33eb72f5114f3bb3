package uki

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/kernel"
	"github.com/ocidisk/ocidisk/kernel/kerneltest"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// stubPath is where systemd-boot-efi puts the arm64 stub.
const stubPath = "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub"

// inputs are Debian's arm64 stub and kernel, loaded once per test binary.
var inputs struct {
	sync.Mutex
	stub []byte
	k    *kernel.Kernel
}

func testStub(t testing.TB) []byte {
	t.Helper()
	inputs.Lock()
	defer inputs.Unlock()
	if inputs.stub == nil {
		b, err := debian.DebFile(t.Context(), debian.Package(t, "systemd-boot-efi:arm64"), stubPath)
		if err != nil {
			t.Fatal(err)
		}
		inputs.stub = b
	}
	return inputs.stub
}

func testKernel(t testing.TB) *kernel.Kernel {
	t.Helper()
	inputs.Lock()
	defer inputs.Unlock()
	if inputs.k == nil {
		// The image stays open for the life of the test binary.
		im, err := rootfs.Load(context.Background(), "deb:"+debian.KernelDeb(t), source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if inputs.k, err = kernel.Find(im.Tree); err != nil {
			t.Fatal(err)
		}
	}
	return inputs.k
}

// fakeKernel is a stand-in EFI application: a PE header for machine with
// the given SizeOfImage, then pseudo-random bytes up to size.
func fakeKernel(size int, machine uint16, sizeOfImage uint32) *fstree.Node {
	return fstree.NewFile(0o644, int64(size), fstree.Bytes(kerneltest.EFIImage(size, machine, sizeOfImage)))
}

func blob(seed byte, n int) *fstree.Node {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return fstree.NewFile(0o644, int64(n), fstree.Bytes(b))
}

func content(t testing.TB, n *fstree.Node) []byte {
	t.Helper()
	b, err := fstree.ReadAll(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t testing.TB, im *Image, path string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if n, err := im.WriteTo(&buf); err != nil || n != im.Size {
		t.Fatalf("WriteTo: %d bytes of %d, %v", n, im.Size, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// want is a section the test expects: its name and exact content.
type want struct {
	name string
	data []byte
}

func TestBuild(t *testing.T) {
	stub := testStub(t)
	const arm64 = 0xaa64
	linux := fakeKernel(300_001, arm64, 400_000)
	small := fakeKernel(5000, arm64, 4096) // SizeOfImage below the file size
	initrd, dtb := blob(1, 100_003), blob(2, 2_345)
	tests := []struct {
		name  string
		parts Parts
		want  []want
	}{
		{"every section", Parts{Linux: linux, Initrd: initrd, DTB: dtb, Cmdline: "console=ttyAMA0 root=PARTUUID=x",
			OSRelease: "ID=ocidisk\nPRETTY_NAME=\"ocidisk test\"\n", Uname: "6.1.0-0-arm64"},
			[]want{{".osrel", []byte("ID=ocidisk\nPRETTY_NAME=\"ocidisk test\"\n")}, {".cmdline", []byte("console=ttyAMA0 root=PARTUUID=x")},
				{".dtb", content(t, dtb)}, {".uname", []byte("6.1.0-0-arm64")}, {".initrd", content(t, initrd)}, {".linux", content(t, linux)}}},
		{"kernel only", Parts{Linux: linux}, []want{{".linux", content(t, linux)}}},
		{"empty parts left out", Parts{Linux: small, Initrd: fstree.NewFile(0o644, 0, fstree.Bytes(nil)), Cmdline: "quiet"},
			[]want{{".cmdline", []byte("quiet")}, {".linux", content(t, small)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.parts.Stub = stub
			im, err := Build(tt.parts)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "uki.efi")
			b := write(t, im, path)
			checkPE(t, stub, path, tt.want, tt.parts.Linux)
			checkObjdump(t, path)
			checkSigned(t, path)

			// The same inputs give the same bytes.
			again, err := Build(tt.parts)
			if err != nil {
				t.Fatal(err)
			}
			if b2 := write(t, again, path+".2"); !bytes.Equal(b, b2) {
				t.Error("two builds of the same inputs differ")
			}
		})
	}
}

// checkPE reads the UKI back with debug/pe: the stub's sections, then the
// added ones with their exact bytes, laid out as ukify lays them out.
func checkPE(t *testing.T, stubBytes []byte, path string, want []want, linux *fstree.Node) {
	t.Helper()
	stub, err := pe.NewFile(bytes.NewReader(stubBytes))
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	soh := stub.OptionalHeader.(*pe.OptionalHeader64)
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	if f.TimeDateStamp != stub.TimeDateStamp || oh.CheckSum != 0 || oh.AddressOfEntryPoint != soh.AddressOfEntryPoint {
		t.Errorf("timestamp %d (stub %d), checksum %#x, entry %#x (stub %#x)", f.TimeDateStamp, stub.TimeDateStamp, oh.CheckSum,
			oh.AddressOfEntryPoint, soh.AddressOfEntryPoint)
	}
	if len(f.Sections) != len(stub.Sections)+len(want) {
		t.Fatalf("%d sections, want the stub's %d and %d more", len(f.Sections), len(stub.Sections), len(want))
	}
	for i, s := range stub.Sections {
		if got := f.Sections[i]; got.SectionHeader != s.SectionHeader {
			t.Errorf("stub section %d: %+v, want %+v", i, got.SectionHeader, s.SectionHeader)
		}
	}
	memEnd, fileEnd := uint32(0), uint32(0)
	for _, s := range stub.Sections {
		memEnd = max(memEnd, s.VirtualAddress+s.VirtualSize)
		fileEnd = max(fileEnd, s.Offset+s.Size)
	}
	initData := soh.SizeOfInitializedData
	for i, w := range want {
		s := f.Sections[len(stub.Sections)+i]
		if s.Name != w.name {
			t.Errorf("section %d is %s, want %s", len(stub.Sections)+i, s.Name, w.name)
			continue
		}
		data, err := s.Data()
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if !bytes.Equal(data[:min(len(data), len(w.data))], w.data) || bytes.ContainsFunc(data[len(w.data):], func(r rune) bool { return r != 0 }) {
			t.Errorf("%s: the content differs from its input", s.Name)
		}
		vs := uint32(len(w.data))
		if w.name == ".linux" {
			kh, err := pe.NewFile(bytes.NewReader(w.data))
			if err != nil {
				t.Fatal(err)
			}
			vs = max(vs, kh.OptionalHeader.(*pe.OptionalHeader64).SizeOfImage)
		}
		if s.VirtualSize != vs {
			t.Errorf("%s: VirtualSize %d, want %d", s.Name, s.VirtualSize, vs)
		}
		if s.VirtualAddress%soh.SectionAlignment != 0 || s.VirtualAddress < memEnd ||
			s.Offset%soh.FileAlignment != 0 || s.Offset < fileEnd || s.Size%soh.FileAlignment != 0 {
			t.Errorf("%s: at %#x in memory, %#x in the file (%#x bytes): not aligned, or overlapping what precedes (%#x, %#x)",
				s.Name, s.VirtualAddress, s.Offset, s.Size, memEnd, fileEnd)
		}
		code := s.Characteristics&pe.IMAGE_SCN_CNT_CODE != 0
		if s.Characteristics&pe.IMAGE_SCN_MEM_READ == 0 || code != (w.name == ".linux") || s.Characteristics&pe.IMAGE_SCN_MEM_WRITE != 0 {
			t.Errorf("%s: characteristics %#x", s.Name, s.Characteristics)
		}
		memEnd, fileEnd = s.VirtualAddress+s.VirtualSize, s.Offset+s.Size
		initData += s.VirtualSize
	}
	if oh.SizeOfImage < memEnd || oh.SizeOfImage%soh.SectionAlignment != 0 || oh.SizeOfImage-memEnd >= soh.SectionAlignment {
		t.Errorf("SizeOfImage %#x for sections ending at %#x", oh.SizeOfImage, memEnd)
	}
	if oh.SizeOfInitializedData != initData {
		t.Errorf("SizeOfInitializedData %#x, want %#x", oh.SizeOfInitializedData, initData)
	}
	if st, _ := os.Stat(path); st.Size() != int64(fileEnd) {
		t.Errorf("file of %d bytes, sections end at %d", st.Size(), fileEnd)
	}
}

// checkObjdump has binutils list the sections: it must know the file as
// pei-aarch64-little and see every section.
func checkObjdump(t *testing.T, path string) {
	t.Helper()
	objdump := hosttool.Require(t, "aarch64-linux-gnu-objdump", "binutils-aarch64-linux-gnu")
	out, err := exec.Command(objdump, "-h", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "file format pei-aarch64-little") {
		t.Fatalf("objdump -h: %v\n%s", err, out)
	}
	f, err := pe.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`(?m)^\s+\d+ (\S+)\s+([0-9a-f]{8})\s+([0-9a-f]{16})\s+[0-9a-f]{16}\s+([0-9a-f]{8})`)
	got := line.FindAllStringSubmatch(string(out), -1)
	if len(got) != len(f.Sections) {
		t.Fatalf("objdump lists %d sections, the file has %d:\n%s", len(got), len(f.Sections), out)
	}
	for i, s := range f.Sections {
		size, _ := strconv.ParseUint(got[i][2], 16, 32)
		vma, _ := strconv.ParseUint(got[i][3], 16, 64)
		off, _ := strconv.ParseUint(got[i][4], 16, 32)
		// BFD shows the smaller of the memory and file sizes.
		if got[i][1] != s.Name || uint32(size) != min(s.VirtualSize, s.Size) || uint32(vma) != s.VirtualAddress || uint32(off) != s.Offset {
			t.Errorf("objdump: %q, want %s of %#x bytes at %#x, file offset %#x", got[i][0], s.Name, min(s.VirtualSize, s.Size), s.VirtualAddress, s.Offset)
		}
	}
}

// checkSigned signs the UKI with sbsign (sbsigntool computes the
// Authenticode hash over the headers and every section) and has sbverify
// check the signature against the certificate.
func checkSigned(t *testing.T, path string) {
	t.Helper()
	sbsign := hosttool.Require(t, "sbsign", "sbsigntool")
	sbverify := hosttool.Require(t, "sbverify", "sbsigntool")
	openssl := hosttool.Require(t, "openssl", "openssl")
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "db.key"), filepath.Join(dir, "db.crt")
	if out, err := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=ocidisk test",
		"-days", "1", "-keyout", key, "-out", cert).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	signed := filepath.Join(dir, "signed.efi")
	if out, err := exec.Command(sbsign, "--key", key, "--cert", cert, "--output", signed, path).CombinedOutput(); err != nil {
		t.Fatalf("sbsign: %v\n%s", err, out)
	}
	if out, err := exec.Command(sbverify, "--cert", cert, signed).CombinedOutput(); err != nil || !strings.Contains(string(out), "Signature verification OK") {
		t.Fatalf("sbverify: %v\n%s", err, out)
	}
}

// TestBuildKernel assembles Debian's kernel, decompressed, and reads it
// back from the UKI.
func TestBuildKernel(t *testing.T) {
	k := testKernel(t)
	img, err := k.Image(true)
	if err != nil {
		t.Fatal(err)
	}
	im, err := Build(Parts{Stub: testStub(t), Linux: img, Cmdline: "console=ttyAMA0", Uname: k.Version})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "uki.efi")
	write(t, im, path)
	checkPE(t, testStub(t), path, []want{{".cmdline", []byte("console=ttyAMA0")}, {".uname", []byte(k.Version)}, {".linux", content(t, img)}}, img)
	checkObjdump(t, path)
}

func TestBuildErrors(t *testing.T) {
	stub := testStub(t)
	signed := bytes.Clone(stub)
	// The certificate table entry of the stub's data directories.
	peOff := binary.LittleEndian.Uint32(signed[0x3c:])
	binary.LittleEndian.PutUint32(signed[peOff+24+112+4*8:], 0x1000)
	gz := fstree.NewFile(0o644, 100, fstree.Bytes(append([]byte{0x1f, 0x8b}, make([]byte, 98)...)))
	tests := []struct {
		name  string
		parts Parts
		want  string
	}{
		{"no kernel", Parts{Stub: stub}, "no kernel"},
		{"compressed kernel", Parts{Stub: stub, Linux: gz}, "not an EFI application"},
		{"kernel for another machine", Parts{Stub: stub, Linux: fakeKernel(5000, 0x8664, 8192)}, "PE machine 0x8664"},
		{"stub not a PE file", Parts{Stub: []byte("#!/bin/sh\n" + strings.Repeat("x", 100)), Linux: fakeKernel(5000, 0xaa64, 8192)}, "stub: not a PE file"},
		{"signed stub", Parts{Stub: signed, Linux: fakeKernel(5000, 0xaa64, 8192)}, "stub is signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.parts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}

	// Content that is not the size its node says fails the read.
	short := fstree.NewFile(0o644, 9000, fstree.Bytes(content(t, fakeKernel(8000, 0xaa64, 8192))))
	im, err := Build(Parts{Stub: stub, Linux: short})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.WriteTo(io.Discard); err == nil || !strings.Contains(err.Error(), "section .linux: content shorter") {
		t.Errorf("short content: err = %v", err)
	}
}
