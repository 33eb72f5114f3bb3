package testimages

// whiteoutCases: .wh.NAME and .wh..wh..opq hide lower layers only, at any
// depth; aufs metadata is ignored.
func whiteoutCases() []Case {
	return []Case{{
		Name:  "whiteout-file",
		About: "a whiteout removes a lower file",
		Layers: [][]Entry{
			{Dir("etc", 0o755), File("etc/a", "a", 0o644), File("etc/b", "b", 0o644)},
			{Whiteout("etc/a")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/etc dir 0755 0:0
/etc/b file 0644 0:0 "b"
`,
	}, {
		Name:  "whiteout-dir",
		About: "a whiteout removes a lower directory and everything in it",
		Layers: [][]Entry{
			{Dir("opt", 0o755), Dir("opt/app", 0o755), File("opt/app/bin", "x", 0o755),
				Dir("opt/app/lib", 0o755), File("opt/app/lib/l.so", "l", 0o644), File("opt/keep", "k", 0o644)},
			{Whiteout("opt/app")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/opt dir 0755 0:0
/opt/keep file 0644 0:0 "k"
`,
	}, {
		Name:  "whiteout-after-own-entry",
		About: "a whiteout later in the stream does not remove its own layer's entry",
		Layers: [][]Entry{
			{File("a", "lower", 0o644)},
			{File("a", "upper", 0o600), Whiteout("a")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0600 0:0 "upper"
`,
	}, {
		Name:  "whiteout-then-recreate",
		About: "a whiteout of a directory and the same layer's new directory there: only the new entries",
		Layers: [][]Entry{
			{Dir("d", 0o755), File("d/old", "old", 0o644)},
			{Whiteout("d"), Dir("d", 0o700), File("d/new", "new", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/d dir 0700 0:0
/d/new file 0644 0:0 "new"
`,
	}, {
		Name:  "whiteout-missing",
		About: "a whiteout of nothing removes nothing; its directory exists in the upper layer, so it is made",
		Layers: [][]Entry{
			{File("a", "a", 0o644)},
			{Whiteout("nothing/here/x")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0644 0:0 "a"
/nothing dir 0755 0:0 mtime=0
/nothing/here dir 0755 0:0 mtime=0
`,
	}, {
		Name:  "whiteout-under-symlink",
		About: "a whiteout under a lower symlink does not follow it: the symlink becomes a directory",
		Layers: [][]Entry{
			{Dir("usr", 0o755), Dir("usr/lib", 0o755), File("usr/lib/x", "x", 0o644), Symlink("lib", "usr/lib")},
			{Whiteout("lib/x")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/lib dir 0755 0:0 mtime=0
/usr dir 0755 0:0
/usr/lib dir 0755 0:0
/usr/lib/x file 0644 0:0 "x"
`,
	}, {
		Name:  "opaque-top",
		About: "an opaque directory hides its lower entries, keeps the layer's own",
		Layers: [][]Entry{
			{Dir("etc", 0o755), File("etc/a", "a", 0o644), Dir("etc/sub", 0o755), File("etc/sub/b", "b", 0o644), File("top", "t", 0o644)},
			{Dir("etc", 0o711), Opaque("etc"), File("etc/c", "c", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/etc dir 0711 0:0
/etc/c file 0644 0:0 "c"
/top file 0644 0:0 "t"
`,
	}, {
		Name:  "opaque-deep",
		About: "an opaque directory three levels down leaves the levels above alone",
		Layers: [][]Entry{
			{Dir("a", 0o755), File("a/f1", "1", 0o644), Dir("a/b", 0o755), File("a/b/f2", "2", 0o644),
				Dir("a/b/c", 0o755), File("a/b/c/f3", "3", 0o644), Dir("a/b/c/d", 0o755), File("a/b/c/d/f4", "4", 0o644)},
			{Opaque("a/b/c"), File("a/b/c/new", "n", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/a dir 0755 0:0
/a/b dir 0755 0:0
/a/b/c dir 0755 0:0
/a/b/c/new file 0644 0:0 "n"
/a/b/f2 file 0644 0:0 "2"
/a/f1 file 0644 0:0 "1"
`,
	}, {
		Name:  "opaque-several-depths",
		About: "opaque markers at depth 3 in one layer and depth 1 in the next",
		Layers: [][]Entry{
			{Dir("p", 0o755), File("p/1", "1", 0o644), Dir("p/q", 0o755), File("p/q/2", "2", 0o644),
				Dir("p/q/r", 0o755), File("p/q/r/3", "3", 0o644)},
			{Opaque("p/q/r"), File("p/q/r/n3", "n3", 0o644)},
			{Opaque("p"), Dir("p/q", 0o750), File("p/q/n2", "n2", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/p dir 0755 0:0
/p/q dir 0750 0:0
/p/q/n2 file 0644 0:0 "n2"
`,
	}, {
		Name:  "opaque-root",
		About: "an opaque marker at the root hides every lower entry",
		Layers: [][]Entry{
			{File("a", "a", 0o644), Dir("b", 0o755), File("b/c", "c", 0o644)},
			{Opaque(""), File("z", "z", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/z file 0644 0:0 "z"
`,
	}, {
		Name:  "opaque-stream-order",
		About: "the layer's entries before and after its opaque marker both survive",
		Layers: [][]Entry{
			{Dir("d", 0o755), File("d/lower", "l", 0o644)},
			{File("d/before", "b", 0o644), Opaque("d"), File("d/after", "a", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/d dir 0755 0:0
/d/after file 0644 0:0 "a"
/d/before file 0644 0:0 "b"
`,
	}, {
		Name:  "opaque-over-file",
		About: "an opaque marker where the lower layer has a file: the file goes, a directory stands",
		Layers: [][]Entry{
			{File("x", "file", 0o644)},
			{Opaque("x")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/x dir 0755 0:0 mtime=0
`,
	}, {
		Name:  "aufs-metadata",
		About: ".wh..wh.* names are aufs bookkeeping, not whiteouts and not content",
		Layers: [][]Entry{
			{File("a", "a", 0o644)},
			{Dir(".wh..wh.plnk", 0o700), File(".wh..wh.plnk/1234.5678", "x", 0o644), File(".wh..wh.aufs", "", 0o600), File("b", "b", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0644 0:0 "a"
/b file 0644 0:0 "b"
`,
	}}
}

// replaceCases: a later entry replaces an earlier one of another type, both
// ways; a path named twice in a layer takes the last; a non-directory where
// a parent is needed becomes a directory (symlinks are never followed).
func replaceCases() []Case {
	return []Case{{
		Name:  "file-to-dir",
		About: "a directory replaces a lower file",
		Layers: [][]Entry{
			{File("x", "file", 0o644)},
			{Dir("x", 0o750), File("x/y", "y", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/x dir 0750 0:0
/x/y file 0644 0:0 "y"
`,
	}, {
		Name:  "dir-to-file",
		About: "a file replaces a lower directory and its whole subtree",
		Layers: [][]Entry{
			{Dir("x", 0o755), File("x/y", "y", 0o644), Dir("x/z", 0o755), File("x/z/w", "w", 0o644)},
			{File("x", "now a file", 0o600)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/x file 0600 0:0 "now a file"
`,
	}, {
		Name:  "dir-to-symlink",
		About: "a symlink replaces a lower directory (its entries go, nothing is followed)",
		Layers: [][]Entry{
			{Dir("lib", 0o755), File("lib/a", "a", 0o644), Dir("usr", 0o755), Dir("usr/lib", 0o755)},
			{Symlink("lib", "usr/lib")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/lib symlink 0777 0:0 "usr/lib"
/usr dir 0755 0:0
/usr/lib dir 0755 0:0
`,
	}, {
		Name:  "symlink-to-dir",
		About: "a directory replaces a lower symlink; the symlink's target is untouched",
		Layers: [][]Entry{
			{Dir("usr", 0o755), Dir("usr/lib", 0o755), File("usr/lib/a", "a", 0o644), Symlink("lib", "usr/lib")},
			{Dir("lib", 0o755), File("lib/b", "b", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/lib dir 0755 0:0
/lib/b file 0644 0:0 "b"
/usr dir 0755 0:0
/usr/lib dir 0755 0:0
/usr/lib/a file 0644 0:0 "a"
`,
	}, {
		Name:  "file-symlink-swap",
		About: "a file becomes a symlink and a symlink a file",
		Layers: [][]Entry{
			{File("a", "A", 0o644), Symlink("b", "a")},
			{Symlink("a", "b-target"), File("b", "B", 0o640)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/a symlink 0777 0:0 "b-target"
/b file 0640 0:0 "B"
`,
	}, {
		Name:  "special-replacements",
		About: "a FIFO becomes a file, a device node a directory",
		Layers: [][]Entry{
			{FIFO("p", 0o644), CharDev("c", 0o600, 1, 3)},
			{File("p", "now a file", 0o644), Dir("c", 0o755), File("c/inside", "i", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/c dir 0755 0:0
/c/inside file 0644 0:0 "i"
/p file 0644 0:0 "now a file"
`,
	}, {
		Name:  "twice-in-layer",
		About: "a path named twice in one layer takes the last entry, of whatever type",
		Layers: [][]Entry{{
			File("a", "first", 0o644), File("a", "second", 0o600),
			Dir("d", 0o700), Dir("d", 0o755).At(5),
			File("f", "x", 0o644), Dir("f", 0o711),
			Dir("g", 0o755), File("g/in", "in", 0o644), File("g", "file now", 0o644),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0600 0:0 "second"
/d dir 0755 0:0 mtime=5
/f dir 0711 0:0
/g file 0644 0:0 "file now"
`,
	}, {
		Name:  "parent-is-symlink",
		About: "lower lib -> usr/lib and upper lib/x: lib becomes a directory, usr/lib is untouched",
		Layers: [][]Entry{
			{Dir("usr", 0o755), Dir("usr/lib", 0o755), File("usr/lib/libc", "c", 0o644), Symlink("lib", "usr/lib")},
			{File("lib/x", "x", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/lib dir 0755 0:0 mtime=0
/lib/x file 0644 0:0 "x"
/usr dir 0755 0:0
/usr/lib dir 0755 0:0
/usr/lib/libc file 0644 0:0 "c"
`,
	}, {
		Name:  "parent-is-file",
		About: "a lower file where a parent is needed becomes an implied directory",
		Layers: [][]Entry{
			{File("a", "f", 0o644)},
			{File("a/b/c", "deep", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/a dir 0755 0:0 mtime=0
/a/b dir 0755 0:0 mtime=0
/a/b/c file 0644 0:0 "deep"
`,
	}}
}
