package provision

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// Machines are the ELF machines each board architecture runs. A 64-bit
// Arm kernel also runs 32-bit Arm programs (Debian's arm64 kernels have
// COMPAT, and the Pi's and QEMU virt's cores have AArch32 at EL0), as
// Raspberry Pi OS's 32-bit images do on their 64-bit kernels.
var Machines = map[string][]elf.Machine{
	"arm64": {elf.EM_AARCH64, elf.EM_ARM},
	"arm":   {elf.EM_ARM},
}

// MachineName is an ELF machine as people call it.
func MachineName(m elf.Machine) string {
	switch m {
	case elf.EM_AARCH64:
		return "arm64 (AArch64)"
	case elf.EM_ARM:
		return "32-bit Arm"
	case elf.EM_X86_64:
		return "x86-64"
	case elf.EM_386:
		return "x86 (i386)"
	case elf.EM_RISCV:
		return "RISC-V"
	case elf.EM_PPC64:
		return "POWER (ppc64)"
	case elf.EM_S390:
		return "s390x"
	case elf.EM_MIPS:
		return "MIPS"
	case elf.EM_LOONGARCH:
		return "LoongArch"
	}
	return strings.TrimPrefix(m.String(), "EM_")
}

// ArchError is a root whose programs are for another machine than the
// board's.
type ArchError struct {
	// File is the program named, Machine what it is for.
	File    string
	Machine elf.Machine
	// Arch is the board's architecture.
	Arch string
	// Of and Foreign count the ELF files under /usr/bin and those of them
	// for other machines, when the check counted them.
	Of, Foreign int
}

func (e *ArchError) Error() string {
	what := e.File + " is"
	if e.Of > 0 {
		what = fmt.Sprintf("%d of the %d programs in /usr/bin are for other machines than the board's; %s is", e.Foreign, e.Of, e.File)
	}
	return fmt.Sprintf("%s a program for %s, but the board runs %s", what, MachineName(e.Machine), e.Arch)
}

// elfHeaderLen is what is read of a file to know its machine: e_ident,
// e_type and e_machine.
const elfHeaderLen = 20

// elfMachine reads the machine from the ELF header of a regular file;
// ok is false for anything that is not ELF.
func elfMachine(n *fstree.Node) (m elf.Machine, ok bool, err error) {
	if n.Type != fstree.TypeRegular || n.Size < elfHeaderLen || n.Content == nil {
		return 0, false, nil
	}
	r, err := n.Content.Open()
	if err != nil {
		return 0, false, err
	}
	defer r.Close()
	var h [elfHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, false, err
	}
	if !bytes.Equal(h[:4], []byte(elf.ELFMAG)) {
		return 0, false, nil
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if elf.Data(h[elf.EI_DATA]) == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	return elf.Machine(bo.Uint16(h[18:])), true, nil
}

// interpreter returns the program a script's #! line names, or "".
func interpreter(n *fstree.Node) (string, error) {
	if n.Type != fstree.TypeRegular || n.Size < 3 || n.Content == nil {
		return "", nil
	}
	r, err := n.Content.Open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	b := make([]byte, min(n.Size, 256))
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	l, ok := bytes.CutPrefix(b, []byte("#!"))
	if !ok {
		return "", nil
	}
	if i := bytes.IndexByte(l, '\n'); i >= 0 {
		l = l[:i]
	}
	f := strings.Fields(string(l))
	if len(f) == 0 {
		return "", nil
	}
	return f[0], nil
}

// CheckArch checks that the root's programs run on a board of arch
// (arm64 or arm): its init (the first of inits it has; a script's
// interpreter), and most of the ELF files in /usr/bin. It reads only the
// first bytes of each file, through the tree's content references. A
// root for another machine is an *ArchError naming a file and both
// machines.
func CheckArch(t *fstree.Tree, arch string, inits []string) error {
	ok := Machines[arch]
	if ok == nil {
		return fmt.Errorf("architecture %q: want arm64 or arm", arch)
	}
	for _, p := range inits {
		err := checkProgram(t, p, arch, ok, 0)
		if errors.Is(err, errNoProgram) {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	return checkDir(t, "usr/bin", arch, ok)
}

var errNoProgram = errors.New("no program")

// checkProgram checks the program at p, following a script's #! line a
// few times.
func checkProgram(t *fstree.Tree, p, arch string, ok []elf.Machine, depth int) error {
	n, rp, err := lookup(t, p)
	if err != nil || n == nil || n.Type != fstree.TypeRegular {
		return errNoProgram
	}
	m, isELF, err := elfMachine(n)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if isELF {
		if !slices.Contains(ok, m) {
			name := p
			if "/"+rp != p {
				name += " (/" + rp + ")"
			}
			return &ArchError{File: name, Machine: m, Arch: arch}
		}
		return nil
	}
	interp, err := interpreter(n)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if interp == "" || depth > 4 {
		return nil
	}
	if err := checkProgram(t, interp, arch, ok, depth+1); !errors.Is(err, errNoProgram) {
		return err
	}
	return nil
}

// checkDir fails when more than half of the ELF files directly in dir
// are for machines the board does not run: one foreign program may be a
// deliberate helper, most of them is the wrong image.
func checkDir(t *fstree.Tree, dir, arch string, ok []elf.Machine) error {
	d, rp, err := lookup(t, dir)
	if err != nil || d == nil || !d.IsDir() {
		return nil
	}
	var of, foreign int
	var first *ArchError
	for _, e := range d.Entries() {
		m, isELF, err := elfMachine(e.Node)
		if err != nil {
			return fmt.Errorf("/%s/%s: %w", rp, e.Name, err)
		}
		if !isELF {
			continue
		}
		of++
		if !slices.Contains(ok, m) {
			foreign++
			if first == nil {
				first = &ArchError{File: "/" + rp + "/" + e.Name, Machine: m, Arch: arch}
			}
		}
	}
	if 2*foreign > of {
		first.Of, first.Foreign = of, foreign
		return first
	}
	return nil
}
