package debian

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// Test is the directory of synthetic entries the upper layers add to every
// Debian tree, so that each case exists whatever the packages hold.
const testDir = "ocidisk-test"

// capNetRaw is a security.capability value (VFS_CAP_REVISION_2, effective,
// cap_net_raw permitted), what ping carries on a configured system.
const capNetRaw = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// rec builds a record for a generated entry, owned by root at Epoch.
func rec(p string, t fstree.Type, mode uint32) fstree.Record {
	return fstree.Record{Path: p, Type: t, Mode: mode, Mtime: Epoch()}
}

func fileRec(p string, mode uint32, content string) *xrec {
	r := rec(p, fstree.TypeRegular, mode)
	r.Size = int64(len(content))
	sum := sha256.Sum256([]byte(content))
	r.SHA256 = fmt.Sprintf("%x", sum)
	return &xrec{rec: r, body: fstree.Bytes(content)}
}

func dirRec(p string, mode uint32) *xrec { return &xrec{rec: rec(p, fstree.TypeDir, mode)} }

func symlinkRec(p, target string) *xrec {
	r := rec(p, fstree.TypeSymlink, 0o777)
	r.Target = target
	return &xrec{rec: r}
}

func devRec(p string, t fstree.Type, mode, major, minor uint32) *xrec {
	r := rec(p, t, mode)
	r.Major, r.Minor = major, minor
	return &xrec{rec: r}
}

// step is one change; steps run in order, each seeing the model as the
// ones before left it.
type step struct {
	layer int
	op    string
	do    func(s *splitter, l int) error
}

// synthetic returns the changes to testDir: every case once, whatever the
// Debian packages contain. Layer 3 builds the directory; layer 4 changes it.
func synthetic() []step {
	d := func(name string) string { return testDir + "/" + name }
	add := func(l int, xs ...*xrec) func(s *splitter, _ int) error {
		return func(s *splitter, _ int) error {
			for _, x := range xs {
				if err := s.put(l, x, "add", ""); err != nil {
					return err
				}
			}
			return nil
		}
	}
	owned := fileRec(d("owned"), 0o640, "owned by 1000:1000\n")
	owned.rec.UID, owned.rec.GID = 1000, 1000
	ownedLink := symlinkRec(d("owned-link"), "owned")
	ownedLink.rec.UID, ownedLink.rec.GID = 1000, 1000
	xattrFile := fileRec(d("xattrs"), 0o755, "#!/bin/sh\n")
	xattrFile.rec.Xattrs = map[string]string{"security.capability": capNetRaw, "user.ocidisk": "test"}
	blk := devRec(d("loop0"), fstree.TypeBlockDev, 0o660, 7, 0)
	blk.rec.GID = 6
	return []step{
		{3, "add", add(3,
			dirRec(testDir, 0o755),
			fileRec(d("keep"), 0o644, "kept\n"),
			fileRec(d("old.conf"), 0o644, "old\n"),
			dirRec(d("gone"), 0o755), fileRec(d("gone/a"), 0o644, "a\n"),
			dirRec(d("gone/sub"), 0o700), fileRec(d("gone/sub/b"), 0o600, "b\n"),
			fileRec(d("was-file"), 0o644, "a file, later a directory\n"),
			dirRec(d("was-dir"), 0o755), fileRec(d("was-dir/child"), 0o644, "gone with its directory\n"),
			symlinkRec(d("was-link"), "keep"),
			dirRec(d("opaque"), 0o755), fileRec(d("opaque/x"), 0o644, "x\n"), fileRec(d("opaque/y"), 0o644, "old y\n"),
			fileRec(d("linked"), 0o644, "shared before the overwrite\n"),
			fileRec(d("linked-del"), 0o644, "shared, first name deleted\n"),
			fileRec(d("setuid"), 0o4755, "#!/bin/sh\n"),
			dirRec(d("setgid-dir"), 0o2775), dirRec(d("sticky-dir"), 0o1777),
			devRec(d("fifo"), fstree.TypeFIFO, 0o644, 0, 0),
			blk,
			// A major above 255 and a minor above 255 need ext4's new encoding.
			devRec(d("bigdev"), fstree.TypeCharDev, 0o600, 300, 70000),
			fileRec(d("long-"+strings.Repeat("n", 200)), 0o644, "a 205-byte name\n"),
			owned, ownedLink, xattrFile,
		)},
		{3, "hardlink", func(s *splitter, l int) error {
			if err := s.link(l, d("linked2"), d("linked"), ""); err != nil {
				return err
			}
			if err := s.link(l, d("keep-hardlink"), d("keep"), ""); err != nil {
				return err
			}
			return s.link(l, d("linked-del2"), d("linked-del"), "")
		}},
		{4, "whiteout", func(s *splitter, l int) error {
			if err := s.whiteout(l, d("old.conf"), "a file of a lower layer"); err != nil {
				return err
			}
			return s.whiteout(l, d("gone"), "a directory and its subtree")
		}},
		{4, "retype", func(s *splitter, l int) error {
			if err := s.put(l, dirRec(d("was-file"), 0o755), "retype", "file to directory"); err != nil {
				return err
			}
			if err := s.put(l, fileRec(d("was-file/inside"), 0o644, "in the new directory\n"), "add", ""); err != nil {
				return err
			}
			if err := s.put(l, symlinkRec(d("was-dir"), "keep"), "retype", "directory to symlink"); err != nil {
				return err
			}
			if err := s.put(l, dirRec(d("was-link"), 0o700), "retype", "symlink to directory"); err != nil {
				return err
			}
			return nil
		}},
		{4, "opaque", func(s *splitter, l int) error {
			if err := s.opaque(l, d("opaque"), ""); err != nil {
				return err
			}
			if err := s.put(l, fileRec(d("opaque/y"), 0o644, "new y\n"), "add", "a name the opaque layer brings back"); err != nil {
				return err
			}
			return s.put(l, fileRec(d("opaque/z"), 0o644, "z\n"), "add", "")
		}},
		{4, "replace", func(s *splitter, l int) error {
			if err := s.put(l, fileRec(d("linked"), 0o644, "overwritten\n"), "replace", "first name of a hardlink pair; linked2 keeps the old content"); err != nil {
				return err
			}
			return s.whiteout(l, d("linked-del"), "first name of a hardlink pair; linked-del2 keeps the content")
		}},
	}
}
