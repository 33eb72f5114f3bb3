package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/debian"
)

// fakeKO builds a minimal relocatable aarch64 ELF whose .modinfo holds the
// given key=value strings: what a module looks like to a reader of
// .modinfo.
func fakeKO(info ...string) []byte {
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

// loadDir turns a host directory into a tree whose file content is read
// from the host files.
func loadDir(t testing.TB, dir string) *fstree.Tree {
	t.Helper()
	tr := fstree.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		var n *fstree.Node
		switch {
		case d.IsDir():
			n = fstree.NewDir(uint32(info.Mode().Perm()))
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			n = fstree.NewSymlink(target)
		case d.Type().IsRegular():
			n = fstree.NewFile(uint32(info.Mode().Perm()), info.Size(), fstree.HostFile(p))
		default:
			return nil
		}
		n.Mtime = info.ModTime()
		return tr.Put(rel, n, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var debianKernelOnce struct {
	sync.Once
	dir string
	err string
}

// debianKernel returns the tree of Debian's arm64 kernel package, extracted
// once per test binary.
func debianKernel(t testing.TB) *fstree.Tree {
	t.Helper()
	deb := debian.KernelDeb(t)
	hosttool.Require(t, "dpkg-deb", "dpkg")
	debianKernelOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ocidisk-kernel-test-")
		if err != nil {
			debianKernelOnce.err = err.Error()
			return
		}
		if out, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
			debianKernelOnce.err = strings.TrimSpace(string(out))
			return
		}
		debianKernelOnce.dir = dir
	})
	if debianKernelOnce.err != "" {
		t.Fatal(debianKernelOnce.err)
	}
	return loadDir(t, debianKernelOnce.dir)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if debianKernelOnce.dir != "" {
		os.RemoveAll(debianKernelOnce.dir)
	}
	os.Exit(code)
}
