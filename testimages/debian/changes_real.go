package debian

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// The changes below are made to the Debian entries themselves. Each picks
// its target by a fixed rule (a list of likely paths, then the first match
// in walk order), so any package set gets every case it can hold and the
// same packages always give the same picks.

// pick returns the first of candidates that ok accepts, else the first path
// in walk order under dir that ok accepts, else "".
func (s *splitter) pick(candidates []string, dir string, ok func(*xrec) bool) string {
	for _, c := range candidates {
		if x := s.st.get(c); x != nil && ok(x) {
			return c
		}
	}
	for _, p := range s.st.paths() {
		if p != dir && under(p, dir) && ok(s.st.get(p)) {
			return p
		}
	}
	return ""
}

func (s *splitter) isFile(x *xrec) bool {
	return x.rec.Type == fstree.TypeRegular && x.group == "" && !under(x.rec.Path, testDir)
}

// subtree counts the entries under directory p.
func (s *splitter) subtree(p string) int {
	n := 0
	for q := range s.st.m {
		if q != p && under(q, p) {
			n++
		}
	}
	return n
}

// groups returns the hardlink groups of the original tree with two or more
// names, each as its names in walk order, the groups in walk order of their
// first names.
func (s *splitter) groups() [][]string {
	byGroup := map[string][]string{}
	var order []string
	for _, p := range s.st.paths() {
		g := s.st.get(p).group
		if g == "" || strings.HasPrefix(g, "new:") {
			continue
		}
		if byGroup[g] == nil {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], p)
	}
	var out [][]string
	for _, g := range order {
		if len(byGroup[g]) > 1 {
			out = append(out, byGroup[g])
		}
	}
	return out
}

// primaryOf returns the member of a group that the layers store as a
// regular file, the one the other members' tar hardlinks name.
func (s *splitter) primaryOf(names []string) string {
	for l := range s.layers {
		for _, n := range names {
			if e, ok := s.layers[l][n]; ok && e.Hdr.Typeflag == tar.TypeReg {
				return n
			}
		}
	}
	return names[0]
}

func realChanges(marker string) []step {
	return []step{
		// Layer 3: delete about one regular file in 256 of those the lower
		// layers hold, the scattered rm of a real build step.
		{3, "whiteout", func(s *splitter, l int) error {
			for _, p := range s.st.paths() {
				x := s.st.get(p)
				h := sha256.Sum256([]byte("whiteout:" + p))
				if h[0] != 0 || !s.isFile(x) {
					continue
				}
				if _, inLayer := s.layers[l][p]; inLayer {
					continue
				}
				if err := s.whiteout(l, p, "scattered file"); err != nil {
					return err
				}
			}
			return nil
		}},
		{4, "whiteout", func(s *splitter, l int) error {
			if x := s.st.get("usr/share/doc"); x != nil && x.rec.Type == fstree.TypeDir {
				return s.whiteout(l, "usr/share/doc", fmt.Sprintf("a directory of %d entries over all lower layers", s.subtree("usr/share/doc")))
			}
			return nil
		}},
		{4, "opaque", func(s *splitter, l int) error {
			p := s.pick([]string{"etc/systemd/system", "etc/apt/apt.conf.d"}, "etc", func(x *xrec) bool {
				return x.rec.Type == fstree.TypeDir && s.subtree(x.rec.Path) >= 2
			})
			if p == "" {
				return nil
			}
			if err := s.opaque(l, p, fmt.Sprintf("hiding %d entries", s.subtree(p))); err != nil {
				return err
			}
			return s.put(l, fileRec(p+"/ocidisk.conf", 0o644, "# the only entry left\n"), "add", "in the opaque directory")
		}},
		{4, "replace", func(s *splitter, l int) error {
			p := s.pick([]string{"etc/hostname", "etc/debian_version", "etc/issue"}, "etc", s.isFile)
			if p == "" {
				return nil
			}
			return s.put(l, fileRec(p, 0o644, "ocidisk-debian\n"), "replace", "new content")
		}},
		{4, "retype", func(s *splitter, l int) error {
			p := s.pick([]string{"etc/motd", "etc/issue.net", "etc/networks", "etc/shells"}, "etc", func(x *xrec) bool {
				_, changed := s.layers[l][x.rec.Path]
				return s.isFile(x) && !changed
			})
			if p == "" {
				return nil
			}
			if err := s.put(l, dirRec(p, 0o755), "retype", "file to directory"); err != nil {
				return err
			}
			return s.put(l, fileRec(p+"/ocidisk", 0o644, "was a file\n"), "add", "")
		}},
		{4, "retype", func(s *splitter, l int) error {
			p := s.pick([]string{"usr/share/lintian", "usr/share/bug"}, "usr/share", func(x *xrec) bool {
				n := s.subtree(x.rec.Path)
				return x.rec.Type == fstree.TypeDir && n >= 2 && n <= 200
			})
			if p == "" {
				return nil
			}
			note := fmt.Sprintf("directory of %d entries to symlink", s.subtree(p))
			return s.put(l, symlinkRec(p, "/run/ocidisk-moved"), "retype", note)
		}},
		{4, "retype", func(s *splitter, l int) error {
			p := s.pick(nil, "etc", func(x *xrec) bool { return x.rec.Type == fstree.TypeSymlink })
			if p == "" {
				return nil
			}
			return s.put(l, fileRec(p, 0o644, "was a symlink\n"), "retype", "symlink to file")
		}},
		{4, "chmod", func(s *splitter, l int) error {
			p := s.pick([]string{"var/log", "var/cache", "var"}, "", func(x *xrec) bool { return x.rec.Type == fstree.TypeDir })
			x := s.st.get(p)
			if x == nil {
				return nil
			}
			r := x.rec
			r.Mode, r.GID = 0o2750, 4
			return s.put(l, &xrec{rec: r}, "chmod", "directory metadata changed, entries kept")
		}},
		{4, "hardlink", func(s *splitter, l int) error {
			// The first name of a real hardlink group deleted, the second
			// one's first name overwritten: the others keep the content.
			gs := s.groups()
			if len(gs) > 0 {
				if err := s.whiteout(l, s.primaryOf(gs[0]), "hardlink target; the other names keep the content"); err != nil {
					return err
				}
			}
			if len(gs) > 1 {
				p := s.primaryOf(gs[1])
				if err := s.put(l, fileRec(p, 0o755, "#!/bin/sh\necho replaced\n"), "replace", "hardlink target; the other names keep the old content"); err != nil {
					return err
				}
			}
			// A new name in the top layer for a file of a lower one.
			t := s.pick([]string{"bin/busybox", "usr/bin/busybox"}, "usr/bin", s.isFile)
			if t == "" {
				return nil
			}
			return s.link(l, path.Join(parentOf(t), "ocidisk-hardlink"), t, " in a lower layer")
		}},
		{4, "xattr", func(s *splitter, l int) error {
			p := s.pick([]string{"bin/ping", "usr/bin/ping"}, "usr/bin", func(x *xrec) bool {
				return s.isFile(x) && x.rec.Mode&0o111 != 0 && x.rec.Size > 0
			})
			x := s.st.get(p)
			if x == nil {
				return nil
			}
			r := x.rec
			r.Xattrs = map[string]string{"security.capability": capNetRaw}
			return s.put(l, &xrec{rec: r, body: x.body}, "xattr", "security.capability cap_net_raw+ep, same content")
		}},
		{4, "add", func(s *splitter, l int) error {
			// Mount points the extract variant does not make, and the init.
			for _, m := range []struct {
				p    string
				mode uint32
			}{{"proc", 0o555}, {"sys", 0o555}, {"run", 0o755}, {"tmp", 0o1777}, {"dev", 0o755}} {
				if s.st.get(m.p) == nil {
					if err := s.put(l, dirRec(m.p, m.mode), "add", "mount point"); err != nil {
						return err
					}
				}
			}
			script, err := InitScript(marker)
			if err != nil {
				return err
			}
			dir, err := s.resolveDir("sbin")
			if err != nil {
				return err
			}
			init := path.Join(dir, "init")
			note := "busybox init script printing " + marker
			if old := s.st.get(init); old != nil {
				note += ", replacing a " + old.rec.Type.String()
			}
			return s.put(l, fileRec(init, 0o755, string(script)), "add", note)
		}},
	}
}

// resolveDir follows symlinks on p (merged /usr makes /sbin one) to a
// directory of the model.
func (s *splitter) resolveDir(p string) (string, error) {
	for range 8 {
		x := s.st.get(p)
		switch {
		case x == nil:
			return "", fmt.Errorf("%s: not in the tree", p)
		case x.rec.Type == fstree.TypeDir:
			return p, nil
		case x.rec.Type != fstree.TypeSymlink:
			return "", fmt.Errorf("%s: a %s, not a directory", p, x.rec.Type)
		}
		t := x.rec.Target
		if !strings.HasPrefix(t, "/") {
			t = path.Join(parentOf(p), t)
		}
		var err error
		if p, err = fstree.Clean(t); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: too many symlinks", p)
}

// allSteps is the whole recipe in layer order.
func allSteps(marker string) []step {
	steps := append(synthetic(), realChanges(marker)...)
	slices.SortStableFunc(steps, func(a, b step) int { return a.layer - b.layer })
	return steps
}
