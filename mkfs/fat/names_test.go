package fat

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"
)

func alias(n shortName) string {
	s := strings.TrimRight(string(n.name[:8]), " ")
	if ext := strings.TrimRight(string(n.name[8:]), " "); ext != "" {
		s += "." + ext
	}
	return s
}

// TestAliases checks alias generation against what the Linux vfat driver
// (shortname=winnt) does for the same names created in the same order.
func TestAliases(t *testing.T) {
	type want struct {
		alias string
		lcase byte
		long  bool
	}
	for _, tc := range []struct {
		names []string
		want  []want
	}{
		{[]string{"README.TXT"}, []want{{"README.TXT", 0, false}}},
		{[]string{"config.txt"}, []want{{"CONFIG.TXT", caseLowerBase | caseLowerExt, false}}},
		{[]string{"kernel8.IMG"}, []want{{"KERNEL8.IMG", caseLowerBase, false}}},
		{[]string{"Makefile"}, []want{{"MAKEFILE", 0, true}}},
		{[]string{"Image.gz"}, []want{{"IMAGE.GZ", 0, true}}},
		{[]string{"longnames.txt"}, []want{{"LONGNA~1.TXT", 0, true}}},
		{[]string{"LONGNA~1.TXT", "longnames.txt"}, []want{{"LONGNA~1.TXT", 0, false}, {"LONGNA~2.TXT", 0, true}}},
		// The literal alias wins even when listed after the long name.
		{[]string{"longnames.txt", "LONGNA~1.TXT"}, []want{{"LONGNA~2.TXT", 0, true}, {"LONGNA~1.TXT", 0, false}}},
		{[]string{"README.TXT", "readme.txt"}, []want{{"README.TXT", 0, false}, {"README~1.TXT", 0, true}}},
		{[]string{"a+b=c.dtbo"}, []want{{"A_B_C~1.DTB", 0, true}}},
		{[]string{".bashrc"}, []want{{"BASHRC~1", 0, true}}},
		{[]string{"foo.tar.gz"}, []want{{"FOOTAR~1.GZ", 0, true}}},
		{[]string{"日本.txt"}, []want{{"__~1.TXT", 0, true}}},
		{[]string{"a b"}, []want{{"AB~1", 0, true}}},
		{[]string{"bcm2711-rpi-4-b.dtb"}, []want{{"BCM271~1.DTB", 0, true}}},
		{[]string{"...x"}, []want{{"X~1", 0, true}}},
	} {
		got := aliases(tc.names)
		for i, w := range tc.want {
			if g := got[i]; alias(g) != w.alias || g.lcase != w.lcase || g.long != w.long {
				t.Errorf("%q: %q got %s lcase=%#x long=%v, want %s lcase=%#x long=%v",
					tc.names, tc.names[i], alias(g), g.lcase, g.long, w.alias, w.lcase, w.long)
			}
		}
	}
}

// TestAliasTails checks that a crowd of colliding names gets ~1 to ~9 and
// then Windows-style hashed aliases, all distinct.
func TestAliasTails(t *testing.T) {
	var names []string
	for i := range 300 {
		names = append(names, "longname"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+".txt")
	}
	seen := map[[11]byte]string{}
	hashed := regexp.MustCompile(`^LO[0-9A-F]{4}~1\.TXT$`)
	for i, a := range aliases(names) {
		if other, ok := seen[a.name]; ok {
			t.Fatalf("%q and %q share alias %s", other, names[i], alias(a))
		}
		seen[a.name] = names[i]
		s := alias(a)
		if !regexp.MustCompile(`^LONGNA~[1-9]\.TXT$`).MatchString(s) && !hashed.MatchString(s) {
			t.Errorf("%q: alias %s", names[i], s)
		}
	}
}

func TestCheckLongName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"config.txt", true},
		{" leading space", true},
		{"日本語", true},
		{"a😀b", true},
		{strings.Repeat("x", 255), true},
		{strings.Repeat("x", 256), false},
		{strings.Repeat("😀", 128), false}, // 256 UTF-16 units
		{"a:b", false},
		{"a*b", false},
		{"a?b", false},
		{`a"b`, false},
		{"a<b", false},
		{"a>b", false},
		{"a|b", false},
		{`a\b`, false},
		{"a\x01b", false},
		{"a\x7fb", false},
		{"trailing.", false},
		{"trailing ", false},
		{"bad\xffutf8", false},
	} {
		err := checkLongName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("checkLongName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("checkLongName(%q) = %v, not ErrInvalidName", tc.name, err)
		}
	}
}

// TestLongEntries checks the long-name entries' layout: sequence numbers,
// the last-entry flag, NUL then 0xFFFF padding, and surrogate pairs for
// characters beyond the BMP, which mtools cannot show but Linux and
// Windows read.
func TestLongEntries(t *testing.T) {
	for _, name := range []string{"a", "exactly13char", "fourteenchars", "a😀b.txt", strings.Repeat("y", 255)} {
		sum := byte(0x5a)
		b := appendLong(nil, name, sum)
		u := utf16.Encode([]rune(name))
		n := (len(u) + 12) / 13
		if len(b) != n*32 {
			t.Fatalf("%q: %d bytes, want %d entries", name, len(b), n)
		}
		var units []uint16
		for i := n - 1; i >= 0; i-- { // stored last part first
			e := b[i*32 : i*32+32]
			seq := byte(n - i)
			if i == 0 {
				seq |= 0x40
			}
			if e[0] != seq || e[11] != attrLongName || e[13] != sum || e[12] != 0 || e[26] != 0 || e[27] != 0 {
				t.Fatalf("%q entry %d: % x", name, i, e)
			}
			for _, at := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				units = append(units, uint16(e[at])|uint16(e[at+1])<<8)
			}
		}
		want := append([]uint16{}, u...)
		if len(want)%13 != 0 {
			want = append(want, 0)
		}
		for len(want)%13 != 0 {
			want = append(want, 0xffff)
		}
		if string(utf16.Decode(units)) != string(utf16.Decode(want)) || len(units) != len(want) {
			t.Errorf("%q: units %x, want %x", name, units, want)
		}
	}
}
