package testimages

import "strings"

// basicCases: plain trees, name spellings, implied parents, the root entry,
// compression and layer counts.
func basicCases() []Case {
	long := strings.Repeat("long-", 30) // 150 bytes: past ustar's 100
	return []Case{{
		Name:  "basic",
		About: "files, directories, relative, absolute and dangling symlinks, one layer",
		Layers: [][]Entry{{
			Dir("etc", 0o755), File("etc/hostname", "box\n", 0o644),
			Dir("bin", 0o755), File("bin/busybox", "#!busybox", 0o755),
			Symlink("bin/sh", "busybox"), Symlink("bin/abs", "/bin/busybox"),
			Symlink("bin/dangling", "../nowhere/at/all"),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/bin dir 0755 0:0
/bin/abs symlink 0777 0:0 "/bin/busybox"
/bin/busybox file 0755 0:0 "#!busybox"
/bin/dangling symlink 0777 0:0 "../nowhere/at/all"
/bin/sh symlink 0777 0:0 "busybox"
/etc dir 0755 0:0
/etc/hostname file 0644 0:0 "box\n"
`,
	}, {
		Name:  "name-spellings",
		About: "./ prefixes, absolute names, doubled slashes, . and .. that stay inside all name the same tree",
		Layers: [][]Entry{{
			Dir("./etc/", 0o755), File("./etc/a", "a", 0o644), File("/etc/b", "b", 0o644),
			File("etc//c", "c", 0o644), File("etc/./d", "d", 0o644), File("etc/x/../e", "e", 0o644),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/etc dir 0755 0:0
/etc/a file 0644 0:0 "a"
/etc/b file 0644 0:0 "b"
/etc/c file 0644 0:0 "c"
/etc/d file 0644 0:0 "d"
/etc/e file 0644 0:0 "e"
`,
	}, {
		Name:   "implied-parents",
		About:  "parents no entry names are made 0755 root:root with mtime 0",
		Layers: [][]Entry{{File("usr/share/doc/x/README", "read me", 0o640).Own(1, 2)}},
		Want: `
/ dir 0755 0:0 mtime=0
/usr dir 0755 0:0 mtime=0
/usr/share dir 0755 0:0 mtime=0
/usr/share/doc dir 0755 0:0 mtime=0
/usr/share/doc/x dir 0755 0:0 mtime=0
/usr/share/doc/x/README file 0640 1:2 "read me"
`,
	}, {
		Name:  "root-entry",
		About: "a layer's ./ entry sets the root's metadata; a later layer's wins",
		Layers: [][]Entry{
			{Dir("./", 0o700).At(1000), File("f", "f", 0o644)},
			{Dir("/", 0o750).Own(0, 5).At(2000)},
		},
		Want: `
/ dir 0750 0:5 mtime=2000
/f file 0644 0:0 "f"
`,
	}, {
		Name:  "long-and-odd-names",
		About: "names past ustar's limits (PAX path and linkpath), spaces, UTF-8, a newline",
		Layers: [][]Entry{{
			File(long, "long", 0o644),
			Symlink("to-long", "/"+long),
			File("with space", "s", 0o644),
			File("ünïcødé ☃", "u", 0o644),
			File("new\nline", "n", 0o644),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
"/new\nline" file 0644 0:0 "n"
"/to-long" symlink 0777 0:0 "/` + long + `"
"/with space" file 0644 0:0 "s"
"/ünïcødé ☃" file 0644 0:0 "u"
/` + long + ` file 0644 0:0 "long"
`,
	}, {
		Name:        "zstd-layers",
		About:       "zstd-compressed layers with a whiteout between them",
		Compression: Zstd,
		Layers: [][]Entry{
			{Dir("etc", 0o755), File("etc/a", "a", 0o644), File("etc/b", "b", 0o644)},
			{Whiteout("etc/a"), File("etc/c", "c", 0o600)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/etc dir 0755 0:0
/etc/b file 0644 0:0 "b"
/etc/c file 0600 0:0 "c"
`,
	}, {
		Name:        "uncompressed-layers",
		About:       "uncompressed layers are read in place; hardlinks and a whiteout across them",
		Compression: Uncompressed,
		Layers: [][]Entry{
			{Dir("bin", 0o755), File("bin/busybox", "BB", 0o755), Hardlink("bin/ls", "bin/busybox")},
			{Whiteout("bin/busybox"), File("bin/true", "T", 0o755)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/bin dir 0755 0:0
/bin/ls file 0755 0:0 "BB"
/bin/true file 0755 0:0 "T"
`,
	}, {
		Name:  "empty-layers",
		About: "layers with no entries change nothing",
		Layers: [][]Entry{
			{}, {File("a", "a", 0o644)}, {},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0644 0:0 "a"
`,
	}, {
		Name:   "many-layers",
		About:  "eight layers rewriting one file and whiting out another's",
		Layers: manyLayers(),
		Want: `
/ dir 0755 0:0 mtime=0
/etc dir 0755 0:0 mtime=0
/etc/version file 0644 0:0 "v8"
/log1 file 0644 0:0 "1"
/log2 file 0644 0:0 "2"
/log4 file 0644 0:0 "4"
/log5 file 0644 0:0 "5"
/log6 file 0644 0:0 "6"
/log7 file 0644 0:0 "7"
/log8 file 0644 0:0 "8"
`,
	}}
}

func manyLayers() [][]Entry {
	var ls [][]Entry
	for i := 1; i <= 8; i++ {
		d := string(rune('0' + i))
		l := []Entry{File("etc/version", "v"+d, 0o644), File("log"+d, d, 0o644)}
		if i == 6 {
			l = append(l, Whiteout("log3"))
		}
		ls = append(ls, l)
	}
	return ls
}
