package fat

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxLongName is the longest VFAT name in UTF-16 code units.
const maxLongName = 255

// NT case flags in a short entry (byte 12): the base name or the
// extension is to be shown in lower case. Windows NT and Linux honour them;
// they spare a long-name entry for names like "config.txt".
const (
	caseLowerBase = 0x08
	caseLowerExt  = 0x10
)

// errInvalidName is wrapped by every name error, so callers can test for it.
var errInvalidName = errors.New("invalid FAT name")

// checkLongName reports why name cannot be stored as a VFAT long name. The
// rules are the Linux vfat driver's: no control characters or any of
// * ? < > | " : / \, no trailing space or dot (the driver strips trailing
// dots, so the name would not come back as written), valid UTF-8, and at
// most 255 UTF-16 units.
func checkLongName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w %q", errInvalidName, name)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w %q: not valid UTF-8", errInvalidName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w %q: control character %U", errInvalidName, name, r)
		}
		if strings.ContainsRune(`*?<>|":/\`, r) {
			return fmt.Errorf("%w %q: FAT names cannot contain %q", errInvalidName, name, r)
		}
	}
	switch name[len(name)-1] {
	case ' ':
		return fmt.Errorf("%w %q: FAT names cannot end with a space", errInvalidName, name)
	case '.':
		return fmt.Errorf("%w %q: FAT names cannot end with a dot", errInvalidName, name)
	}
	if n := len(utf16.Encode([]rune(name))); n > maxLongName {
		return fmt.Errorf("%w %q: %d UTF-16 units, FAT allows %d", errInvalidName, name, n, maxLongName)
	}
	return nil
}

// foldName is what two names must not share in one directory: FAT
// compares names without regard to case.
func foldName(name string) string { return strings.ToUpper(name) }

// shortChar maps one character of a long name to its 8.3 form. It reports
// the byte (0 to skip the character) and whether the mapping kept the
// character exactly, up to case.
func shortChar(r rune) (b byte, exact bool) {
	switch {
	case r == '.' || r == ' ':
		return 0, false
	case r >= 'a' && r <= 'z':
		return byte(r - 'a' + 'A'), true
	case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return byte(r), true
	case strings.ContainsRune("$%'`-@{}~!#()&_^", r):
		return byte(r), true
	}
	// [ ] ; , + = are legal in long names only; anything beyond ASCII has
	// no code page here (output must not depend on one), so it becomes "_"
	// as in Linux for characters the code page cannot hold.
	return '_', false
}

// caseOf classifies the letters of s: lower reports that s has a lower
// case letter, upper an upper case one.
func caseOf(s string) (lower, upper bool) {
	for _, r := range s {
		lower = lower || r >= 'a' && r <= 'z'
		upper = upper || r >= 'A' && r <= 'Z'
	}
	return lower, upper
}

// shortName is the 8.3 alias of a long name.
type shortName struct {
	name  [11]byte // base padded to 8, extension padded to 3, with spaces
	lcase byte     // NT case flags
	long  bool     // a long name entry must precede the alias
}

// splitExt returns the base and extension parts of a long name the way
// Windows 95 and Linux do: the extension follows the last dot, unless that
// dot ends the name or only dots and spaces precede it (".bashrc" has no
// extension).
func splitExt(name string) (base, ext string, hasExt bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 || strings.Trim(name[:i], ". ") == "" {
		return name, "", false
	}
	return name[:i], name[i+1:], true
}

// basis computes the alias a long name would get if it were alone in its
// directory. exact reports that the alias holds every character of the name
// up to case; mixed that a part (base or extension) mixes upper and lower
// case, which only a long name keeps. For exact names that are not mixed,
// lcase holds the NT flags that restore their case.
func basis(name string) (base, ext []byte, lcase byte, exact, mixed bool) {
	b, e, _ := splitExt(name)
	exact = true
	for _, r := range b {
		c, ok := shortChar(r)
		exact = exact && ok
		if c == 0 {
			continue
		}
		if len(base) == 8 {
			exact = false
			break
		}
		base = append(base, c)
	}
	for _, r := range e {
		c, ok := shortChar(r)
		exact = exact && ok
		if c == 0 {
			continue
		}
		if len(ext) == 3 {
			exact = false
			break
		}
		ext = append(ext, c)
	}
	if len(base) == 0 {
		// Only dots and spaces before the extension: a placeholder keeps
		// the alias valid (Linux refuses to make one).
		base, exact = []byte{'_'}, false
	}
	bl, bu := caseOf(b)
	el, eu := caseOf(e)
	mixed = (bl && bu) || (el && eu)
	if exact && !mixed {
		if bl {
			lcase |= caseLowerBase
		}
		if el {
			lcase |= caseLowerExt
		}
	}
	return base, ext, lcase, exact, mixed
}

func pack(base, ext []byte) [11]byte {
	var n [11]byte
	for i := range n {
		n[i] = ' '
	}
	copy(n[:8], base)
	copy(n[8:], ext)
	return n
}

// aliases assigns 8.3 aliases to the names of one directory so that no two
// collide, the way Linux and Windows would have if the files had been
// created in this order of preference: names that are exact 8.3 names
// first (a literal "LONGNA~1.TXT" keeps its name and pushes the alias of
// "longname.txt" to ~2), then exact names in mixed case ("Makefile" gets
// the alias MAKEFILE and a long name), then the rest in order. Generated
// aliases follow Linux: up to six characters of the base, "~" and a digit
// 1 to 9; beyond that, like Windows, two characters, four hex digits of a
// hash of the long name and "~1" (Linux uses a random number there; a hash
// keeps the output deterministic).
func aliases(names []string) []shortName {
	out := make([]shortName, len(names))
	done := make([]bool, len(names))
	used := make(map[[11]byte]bool, len(names))
	for pass := 0; pass < 3; pass++ {
		for i, name := range names {
			if done[i] {
				continue
			}
			base, ext, lcase, exact, mixed := basis(name)
			n := pack(base, ext)
			switch {
			case pass == 0 && exact && !mixed && !used[n]:
				out[i] = shortName{name: n, lcase: lcase}
			case pass == 1 && exact && !used[n]:
				out[i] = shortName{name: n, long: true}
			case pass == 2:
				out[i] = shortName{name: numericTail(name, base, ext, used), long: true}
			default:
				continue
			}
			used[out[i].name] = true
			done[i] = true
		}
	}
	return out
}

func numericTail(name string, base, ext []byte, used map[[11]byte]bool) [11]byte {
	try := func(b []byte) ([11]byte, bool) {
		n := pack(b, ext)
		return n, !used[n]
	}
	b6 := base[:min(len(base), 6)]
	for i := 1; i <= 9; i++ {
		if n, ok := try(fmt.Appendf(append([]byte{}, b6...), "~%d", i)); ok {
			return n
		}
	}
	b2 := base[:min(len(base), 2)]
	h := fnv.New32a()
	h.Write([]byte(name))
	x := h.Sum32()
	for i := uint32(0); i < 0x10000; i++ {
		if n, ok := try(fmt.Appendf(append([]byte{}, b2...), "%04X~1", uint16(x+i*11))); ok {
			return n
		}
	}
	// A directory has at most 65536 entries, so a free alias exists
	// among ~1..~999999.
	for i := 10; ; i++ {
		t := fmt.Sprintf("~%d", i)
		if n, ok := try(append(append([]byte{}, base[:min(len(base), 8-len(t))]...), t...)); ok {
			return n
		}
	}
}

// checksum is the alias checksum stored in each long-name entry.
func checksum(n [11]byte) byte {
	var s byte
	for _, c := range n {
		s = (s&1)<<7 + s>>1 + c
	}
	return s
}

// longSlots is the number of 32-byte long-name entries name needs.
func longSlots(name string) int {
	return (len(utf16.Encode([]rune(name))) + 12) / 13
}

// appendLong appends the long-name entries of name, last part first as
// they are stored, for an alias with checksum sum.
func appendLong(dst []byte, name string, sum byte) []byte {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	// The name ends with a NUL unless it fills its last entry, and the rest
	// is padded with 0xFFFF.
	padded := make([]uint16, n*13)
	copy(padded, u)
	for i := len(u); i < len(padded); i++ {
		padded[i] = 0xffff
	}
	if len(u) < len(padded) {
		padded[len(u)] = 0
	}
	for seq := n; seq >= 1; seq-- {
		var e [32]byte
		e[0] = byte(seq)
		if seq == n {
			e[0] |= 0x40
		}
		part := padded[(seq-1)*13 : seq*13]
		for i, c := range part {
			var at int
			switch {
			case i < 5:
				at = 1 + 2*i
			case i < 11:
				at = 14 + 2*(i-5)
			default:
				at = 28 + 2*(i-11)
			}
			e[at] = byte(c)
			e[at+1] = byte(c >> 8)
		}
		e[11] = attrLongName
		e[13] = sum
		dst = append(dst, e[:]...)
	}
	return dst
}
