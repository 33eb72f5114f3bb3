package testimages

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
)

// TestCorpusWellFormed checks the corpus itself: enough cases, unique
// names, listings that parse, every case an image.
func TestCorpusWellFormed(t *testing.T) {
	corpus := Corpus()
	if len(corpus) < 30 {
		t.Fatalf("%d cases, want at least 30", len(corpus))
	}
	seen := map[string]bool{}
	for _, c := range corpus {
		if seen[c.Name] {
			t.Errorf("case %q twice", c.Name)
		}
		seen[c.Name] = true
		if (c.Want == "") == (c.WantErr == "") {
			t.Errorf("case %s: want exactly one of Want and WantErr", c.Name)
		}
		if c.Want != "" {
			rs, err := ParseListing(c.Want)
			if err != nil {
				t.Errorf("case %s: %v", c.Name, err)
			} else if len(rs) == 0 || rs[0].Path != "" {
				t.Errorf("case %s: the listing does not start with the root", c.Name)
			}
		}
		if _, err := c.Image(); err != nil {
			t.Errorf("case %s: %v", c.Name, err)
		}
	}
}

// TestParseListing checks the listing syntax, and that mistakes in it are
// reported rather than read as something else.
func TestParseListing(t *testing.T) {
	rs, err := ParseListing(`
/ dir 0755 0:0 mtime=0
"/a b" file 4755 1:2 "x\ny" mtime=5 xattr:user.k="v\x00"
/l symlink 0777 0:0 "/a b"
/d block 0660 0:6 254,1
/h hardlink "/a b"
`)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(rs))
	for i, r := range rs {
		got[i] = r.String()
	}
	// The hash of "x\ny" is sha256sum's.
	want := []string{
		`"/" directory 0755 0:0 mtime=0`,
		`"/a b" file 4755 1:2 size=3 sha256=9ab9de25768ac172 mtime=5 xattr:user.k=7600`,
		`"/l" symlink 0777 0:0 -> "/a b" mtime=1700000000`,
		`"/d" block device 0660 0:6 dev=254,1 mtime=1700000000`,
		`"/h" file 4755 1:2 size=3 sha256=9ab9de25768ac172 mtime=5 xattr:user.k=7600 link="/a b"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("parsed:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, bad := range []string{
		"etc dir 0755 0:0",                // not absolute
		"/etc folder 0755 0:0",            // no such type
		"/etc dir 0955 0:0",               // not octal
		"/etc dir 0755 root",              // not numeric
		"/f file 0644 0:0",                // no content
		`/f file 0644 0:0 "x" colour=red`, // unknown option
		"/d char 0600 0:0 1-3",            // bad device
		"/h hardlink /nowhere",            // no such first name
		`/f file 0644 0:0 "unterminated`,  // quoting
	} {
		if _, err := ParseListing(bad); err == nil {
			t.Errorf("ParseListing(%q) took it", bad)
		}
	}
}

// TestTarListing checks hardlink resolution and refusals of the tar
// lister.
func TestTarListing(t *testing.T) {
	b, err := TarOf([]Entry{File("a", "A", 0o600).Own(3, 4), Hardlink("b", "a"), Hardlink("c", "./b")})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := TarListing(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseListing("/a file 0600 3:4 \"A\"\n/b hardlink /a\n/c hardlink /a")
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffListings(want, rs); d != "" {
		t.Error(d)
	}
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"forward link", []Entry{Hardlink("b", "a"), File("a", "A", 0o644)}, "comes nowhere before it"},
		{"twice", []Entry{File("a", "1", 0o644), File("a", "2", 0o644)}, "listed twice"},
	} {
		b, err := TarOf(tc.entries)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := TarListing(bytes.NewReader(b)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../x", Typeflag: tar.TypeReg})
	tw.Close()
	if _, err := TarListing(&buf); err == nil {
		t.Error("TarListing took an unsafe path")
	}
}

// TestDiffListings checks that every kind of difference is reported.
func TestDiffListings(t *testing.T) {
	a, _ := ParseListing("/ dir 0755 0:0\n/x file 0644 0:0 \"1\"\n/y dir 0755 0:0")
	b, _ := ParseListing("/ dir 0755 0:0\n/x file 0644 0:0 \"2\"\n/z dir 0755 0:0")
	d := DiffListings(a, b)
	for _, w := range []string{`missing: "/y"`, `extra:   "/z"`, `want:    "/x"`, `got:     "/x"`} {
		if !strings.Contains(d, w) {
			t.Errorf("diff does not say %q:\n%s", w, d)
		}
	}
	if DiffListings(a, a) != "" {
		t.Error("a listing differs from itself")
	}
}
