package testimages

// hardlinkCases: hardlinks within a layer and to lower layers, sharing one
// inode that survives the overwriting or deletion of its first name
// (go-containerregistry issues #977 and #2002 show what goes wrong when
// links are resolved by copying, or resolved at the end).
//
// In a listing, "/b hardlink /a" says that /b is the same inode as /a, the
// first of its names in walk order.
func hardlinkCases() []Case {
	return []Case{{
		Name:  "hardlink-same-layer",
		About: "hardlinks in the layer of their target; ./ in the target name",
		Layers: [][]Entry{{
			Dir("bin", 0o755), File("bin/busybox", "BB", 0o755),
			Hardlink("bin/ls", "bin/busybox"), Hardlink("bin/cat", "./bin/busybox"),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/bin dir 0755 0:0
/bin/busybox file 0755 0:0 "BB"
/bin/cat hardlink /bin/busybox
/bin/ls hardlink /bin/busybox
`,
	}, {
		Name:  "hardlink-to-lower",
		About: "a hardlink to a file of a lower layer takes its metadata too",
		Layers: [][]Entry{
			{File("a", "A", 0o640).Own(1, 1)},
			{Hardlink("b", "a")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0640 1:1 "A"
/b hardlink /a
`,
	}, {
		Name:  "hardlink-target-overwritten",
		About: "#977: a later layer overwrites the target; the link keeps the old inode",
		Layers: [][]Entry{
			{File("t", "old", 0o644), Hardlink("l", "t")},
			{File("t", "new", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/l file 0644 0:0 "old"
/t file 0644 0:0 "new"
`,
	}, {
		Name:  "hardlink-target-overwritten-across",
		About: "#977 across three layers: target, link to it, new target",
		Layers: [][]Entry{
			{File("t", "old", 0o644)},
			{Hardlink("l", "t")},
			{File("t", "new", 0o600)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/l file 0644 0:0 "old"
/t file 0600 0:0 "new"
`,
	}, {
		Name:  "hardlink-target-deleted",
		About: "#2002: a later layer deletes the target; the link keeps the content",
		Layers: [][]Entry{
			{File("t", "keep me", 0o644), Hardlink("l", "t")},
			{Whiteout("t")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/l file 0644 0:0 "keep me"
`,
	}, {
		Name:  "hardlink-target-deleted-across",
		About: "#2002 across three layers: target, link to it, whiteout of the target",
		Layers: [][]Entry{
			{File("t", "keep me", 0o755)},
			{Hardlink("l", "t")},
			{Whiteout("t")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/l file 0755 0:0 "keep me"
`,
	}, {
		Name:  "hardlink-chain",
		About: "a link to a link names the same inode",
		Layers: [][]Entry{{
			File("a", "A", 0o644), Hardlink("b", "a"), Hardlink("c", "b"),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0644 0:0 "A"
/b hardlink /a
/c hardlink /a
`,
	}, {
		Name:  "hardlink-whiteout-dir",
		About: "whiting out a directory with hardlinked files leaves the name outside it",
		Layers: [][]Entry{
			{Dir("d", 0o755), File("d/f", "F", 0o644), Hardlink("keep", "d/f"), Hardlink("d/g", "d/f")},
			{Whiteout("d")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/keep file 0644 0:0 "F"
`,
	}, {
		Name:  "hardlink-opaque-dir",
		About: "an opaque directory hides one name of an inode; the other stays",
		Layers: [][]Entry{
			{Dir("d", 0o755), File("d/f", "F", 0o644), Hardlink("x", "d/f")},
			{Opaque("d"), File("d/n", "n", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/d dir 0755 0:0
/d/n file 0644 0:0 "n"
/x file 0644 0:0 "F"
`,
	}, {
		Name:  "hardlink-to-hidden",
		About: "a link to a lower file its own layer whites out still finds it (the link predates the deletion)",
		Layers: [][]Entry{
			{Dir("d", 0o755), File("d/f", "F", 0o644)},
			{Whiteout("d"), Hardlink("g", "d/f")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/g file 0644 0:0 "F"
`,
	}, {
		Name:  "hardlink-target-replaced-in-layer",
		About: "the target is replaced later in the same layer: the link keeps the first inode",
		Layers: [][]Entry{{
			File("a", "one", 0o644), Hardlink("b", "a"), File("a", "two", 0o600),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0600 0:0 "two"
/b file 0644 0:0 "one"
`,
	}, {
		Name:  "hardlink-name-replaced",
		About: "a later layer replaces the link's own name: the target stands alone",
		Layers: [][]Entry{
			{File("a", "A", 0o644), Hardlink("b", "a")},
			{File("b", "new b", 0o644)},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0644 0:0 "A"
/b file 0644 0:0 "new b"
`,
	}, {
		Name:  "hardlink-special",
		About: "hardlinks to a symlink and to a device node",
		Layers: [][]Entry{{
			Symlink("s", "target"), Hardlink("s2", "s"),
			CharDev("null", 0o666, 1, 3), Hardlink("null2", "null"),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/null char 0666 0:0 1,3
/null2 hardlink /null
/s symlink 0777 0:0 "target"
/s2 hardlink /s
`,
	}}
}
