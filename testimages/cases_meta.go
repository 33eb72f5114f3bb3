package testimages

// metadataCases: device numbers, all mode bits, owners, xattrs and times
// are kept exactly.
func metadataCases() []Case {
	return []Case{{
		Name:  "devices",
		About: "char and block devices with their numbers, a FIFO, owners and modes",
		Layers: [][]Entry{{
			Dir("dev", 0o755),
			CharDev("dev/null", 0o666, 1, 3), CharDev("dev/tty0", 0o620, 4, 0).Own(0, 5),
			BlockDev("dev/vda", 0o660, 254, 0).Own(0, 6), BlockDev("dev/big", 0o600, 4095, 1048575),
			FIFO("dev/initctl", 0o600),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/dev dir 0755 0:0
/dev/big block 0600 0:0 4095,1048575
/dev/initctl fifo 0600 0:0
/dev/null char 0666 0:0 1,3
/dev/tty0 char 0620 0:5 4,0
/dev/vda block 0660 0:6 254,0
`,
	}, {
		Name:  "mode-bits",
		About: "setuid, setgid, sticky and no permissions at all",
		Layers: [][]Entry{{
			File("sudo", "s", 0o4755), File("wall", "w", 0o2755).Own(0, 5), File("both", "b", 0o6711),
			Dir("tmp", 0o1777), Dir("srv", 0o2775).Own(0, 50), File("odd", "o", 0o7000), File("none", "", 0o000),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/both file 6711 0:0 "b"
/none file 0000 0:0 ""
/odd file 7000 0:0 "o"
/srv dir 2775 0:50
/sudo file 4755 0:0 "s"
/tmp dir 1777 0:0
/wall file 2755 0:5 "w"
`,
	}, {
		Name:  "owners",
		About: "numeric owners, large ones too (PAX uid/gid records)",
		Layers: [][]Entry{{
			File("a", "", 0o644).Own(1000, 1000), File("b", "", 0o644).Own(65534, 65534),
			File("c", "", 0o644).Own(100000, 200000), File("d", "", 0o644).Own(3000000000, 4000000000),
			Symlink("l", "a").Own(7, 8),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/a file 0644 1000:1000 ""
/b file 0644 65534:65534 ""
/c file 0644 100000:200000 ""
/d file 0644 3000000000:4000000000 ""
/l symlink 0777 7:8 "a"
`,
	}, {
		Name:  "xattrs",
		About: "xattrs from SCHILY.xattr PAX records, binary values included",
		Layers: [][]Entry{{
			File("ping", "p", 0o755).Xattr("security.capability", capability),
			Dir("data", 0o755).Xattr("user.comment", "hello").Xattr("trusted.bin", "\x00\xff"),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/data dir 0755 0:0 xattr:trusted.bin="\x00\xff" xattr:user.comment="hello"
/ping file 0755 0:0 "p" xattr:security.capability="\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
`,
	}, {
		Name:  "dir-metadata-update",
		About: "a directory over a directory takes the new mode, owner, mtime and xattrs and keeps the entries",
		Layers: [][]Entry{
			{Dir("d", 0o755).Own(1, 1).At(100).Xattr("user.a", "1"), File("d/f", "f", 0o644)},
			{Dir("d", 0o700).Own(2, 2).At(200).Xattr("user.b", "2")},
		},
		Want: `
/ dir 0755 0:0 mtime=0
/d dir 0700 2:2 mtime=200 xattr:user.b="2"
/d/f file 0644 0:0 "f"
`,
	}, {
		Name:  "mtimes",
		About: "mtimes are kept, early, late and with nanoseconds",
		Layers: [][]Entry{{
			File("early", "", 0o644).At(1), File("late", "", 0o644).At(4102444800),
			Dir("day", 0o755).At(86400), Symlink("link", "early").At(123456789),
			nanos(File("nanos", "", 0o644)),
		}},
		Want: `
/ dir 0755 0:0 mtime=0
/day dir 0755 0:0 mtime=86400
/early file 0644 0:0 "" mtime=1
/late file 0644 0:0 "" mtime=4102444800
/link symlink 0777 0:0 "early" mtime=123456789
/nanos file 0644 0:0 "" mtime=1600000000
`,
	}}
}

// nanos gives e an mtime of 1600000000.999999999.
func nanos(e Entry) Entry {
	e = e.At(1600000000)
	e.Mtime = e.Mtime.Add(999999999)
	return e
}

// errorCases: inputs that must be refused with an error naming the layer
// and the path.
func errorCases() []Case {
	return []Case{{
		Name:    "unsafe-path",
		About:   "an entry that climbs out of the root",
		Layers:  [][]Entry{{File("../escape", "x", 0o644)}},
		WantErr: "path escapes the root",
	}, {
		Name:    "unsafe-path-inner",
		About:   "an entry that climbs out of the root through a directory",
		Layers:  [][]Entry{{Dir("a", 0o755), File("a/../../b", "x", 0o644)}},
		WantErr: "path escapes the root",
	}, {
		Name:    "unsafe-hardlink-target",
		About:   "a hardlink whose target climbs out of the root",
		Layers:  [][]Entry{{File("a", "a", 0o644), Hardlink("b", "../a")}},
		WantErr: "path escapes the root",
	}, {
		Name:    "hardlink-missing",
		About:   "a hardlink to nothing",
		Layers:  [][]Entry{{File("a", "a", 0o644)}, {Hardlink("b", "nope")}},
		WantErr: "hardlink /b to /nope: no such file",
	}, {
		Name:    "hardlink-to-dir",
		About:   "a hardlink to a directory",
		Layers:  [][]Entry{{Dir("d", 0o755), Hardlink("l", "d")}},
		WantErr: "hardlink /l to /d: the target is a directory",
	}, {
		Name:    "whiteout-dotdot",
		About:   "a whiteout of .. would hide the parent",
		Layers:  [][]Entry{{Dir("a", 0o755)}, {Entry{Name: "a/.wh...", Type: '0', Mode: 0o644}}},
		WantErr: "not a valid whiteout",
	}}
}
