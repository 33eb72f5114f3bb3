package inspect

import (
	"bytes"
	"debug/pe"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
)

// A Unified Kernel Image carries the kernel command line in its .cmdline
// section, and the kernel in .linux: read with debug/pe, only the section
// headers and the command line are read, not the 30-odd MiB of kernel.

// openPE opens a file of fsys as a PE image, or returns nil.
func openPE(fsys fs.FS, name string) (*pe.File, func()) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return nil, nil
	}
	p, err := pe.NewFile(ra)
	if err != nil {
		f.Close()
		return nil, nil
	}
	return p, func() { p.Close(); f.Close() }
}

// isUKI reports whether a file is a PE image with a kernel in a .linux
// section.
func isUKI(fsys fs.FS, name string) bool {
	p, done := openPE(fsys, name)
	if p == nil {
		return false
	}
	defer done()
	return p.Section(".linux") != nil
}

// ukiCmdline returns the command line in a UKI's .cmdline section, as the
// stub passes it: up to the first NUL, without a trailing newline.
func ukiCmdline(fsys fs.FS, name string) (string, bool) {
	p, done := openPE(fsys, name)
	if p == nil {
		return "", false
	}
	defer done()
	s := p.Section(".cmdline")
	if s == nil || p.Section(".linux") == nil {
		return "", false
	}
	// VirtualSize is the content; the raw data is padded to the file
	// alignment.
	b, err := io.ReadAll(io.NewSectionReader(s, 0, int64(min(s.VirtualSize, s.Size))))
	if err != nil {
		return "", false
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b)), true
}

// ukiCandidates are the files of a boot partition that may be UKIs, in
// the order firmware and systemd-boot would find them: the board's own,
// the removable-media path (\EFI\BOOT\BOOT*.EFI) and the Boot Loader
// Specification's Type 2 entries (\EFI\Linux\*.efi).
func ukiCandidates(b *boards.Board, files map[string]int64) []string {
	var out []string
	if b != nil && b.UKI != nil {
		out = append(out, b.UKI.Path)
	}
	var rest []string
	for f := range files {
		l := strings.ToLower(f)
		if ok, _ := path.Match("efi/boot/boot*.efi", l); ok {
			rest = append(rest, f)
		} else if ok, _ := path.Match("efi/linux/*.efi", l); ok {
			rest = append(rest, f)
		}
	}
	slices.Sort(rest)
	for _, f := range rest {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// findUKICmdline returns the command line of the first candidate that is
// a UKI, and where it was found.
func findUKICmdline(fsys fs.FS, b *boards.Board, files map[string]int64) (string, string, bool) {
	for _, f := range ukiCandidates(b, files) {
		if s, ok := ukiCmdline(fsys, f); ok {
			return s, f, true
		}
	}
	return "", "", false
}
