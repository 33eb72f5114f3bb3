package inspect

import (
	"bufio"
	"bytes"
	"io/fs"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
)

// cmdline finds the kernel command line on a boot partition: first where
// the board's own config templates put {{.Cmdline}}, so that a board with
// a new config format needs no code, then in the files bootloaders read
// (cmdline.txt, extlinux.conf, uEnv.txt, grub.cfg), then in the .cmdline
// section of a Unified Kernel Image.
func cmdline(fsys fs.FS, b *boards.Board, files map[string]int64) (string, string) {
	if b != nil {
		for _, c := range b.Configs {
			prefix, suffix, ok := cmdlineLine(c.Template)
			if !ok {
				continue
			}
			if s, ok := findLine(fsys, c.Path, prefix, suffix); ok {
				return s, c.Path
			}
		}
	}
	if data, err := fs.ReadFile(fsys, "config.txt"); err == nil {
		// The Pi firmware reads the file config.txt names with cmdline=.
		for _, l := range lines(data) {
			if v, ok := strings.CutPrefix(l, "cmdline="); ok {
				if s, ok := findLine(fsys, strings.TrimPrefix(v, "/"), "", ""); ok {
					return s, v
				}
			}
		}
	}
	for _, g := range []struct{ file, prefix string }{
		{"cmdline.txt", ""},
		{"extlinux/extlinux.conf", "append "},
		{"boot/extlinux/extlinux.conf", "append "},
		{"uEnv.txt", "bootargs="},
		{"grub/grub.cfg", "linux "},
		{"boot/grub/grub.cfg", "linux "},
	} {
		if _, ok := files[g.file]; !ok {
			continue
		}
		if s, ok := findLine(fsys, g.file, g.prefix, ""); ok {
			if g.prefix == "linux " { // the kernel's path comes first
				_, s, _ = strings.Cut(s, " ")
			}
			return strings.TrimSpace(s), g.file
		}
	}
	if s, from, ok := findUKICmdline(fsys, b, files); ok {
		return s, from
	}
	return "", ""
}

// cmdlineLine returns the literal text around {{.Cmdline}} on its line of
// a config template.
func cmdlineLine(tmpl string) (prefix, suffix string, ok bool) {
	for _, l := range strings.Split(tmpl, "\n") {
		if before, after, found := strings.Cut(l, "{{.Cmdline}}"); found {
			return strings.TrimSpace(before), strings.TrimSpace(after), true
		}
	}
	return "", "", false
}

// findLine returns the first non-comment line of file that starts with
// prefix (case-insensitively, as bootloader keywords are) and ends with
// suffix, without them.
func findLine(fsys fs.FS, file, prefix, suffix string) (string, bool) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return "", false
	}
	for _, l := range lines(data) {
		if len(l) < len(prefix)+len(suffix) || !strings.EqualFold(l[:len(prefix)], prefix) || !strings.HasSuffix(l, suffix) {
			continue
		}
		if prefix == "" && suffix == "" && strings.HasPrefix(l, "#") {
			continue
		}
		return strings.TrimSpace(l[len(prefix) : len(l)-len(suffix)]), true
	}
	return "", false
}

// lines returns the trimmed, non-empty lines of data.
func lines(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
