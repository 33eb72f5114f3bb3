package debian

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// dpkgDir is where dpkg keeps its database, relative to the root.
const dpkgDir = "var/lib/dpkg"

// unpackedPkg is what dpkg --unpack records of one package: its status
// stanza and its files under var/lib/dpkg/info.
type unpackedPkg struct {
	name, arch string
	stanza     string            // ends in a newline, no blank line
	info       map[string][]byte // file name under info/ -> content
	scripts    map[string]bool   // info files that are executable
	conffiles  []string          // the .deb's conffiles, relative to the root
	interests  []string          // its triggers file's interest lines: "NAME" or "NAME/noawait"
	// multiArchSame packages can be installed for several architectures
	// at once, so dpkg names their info files pkg:arch.
	multiArchSame bool
}

// infoName is the name dpkg gives p in its info directory and trigger files.
func infoName(p *unpackedPkg) string {
	if p.multiArchSame {
		return p.name + ":" + p.arch
	}
	return p.name
}

// maintainer scripts and the other control members dpkg keeps in its info
// directory; the executable ones get mode 0755.
var controlMembers = map[string]bool{
	"preinst": true, "postinst": true, "prerm": true, "postrm": true, "config": true,
	"md5sums": false, "conffiles": false, "templates": false, "triggers": false,
	"shlibs": false, "symbols": false,
}

// readUnpacked reads a .deb as dpkg --unpack would record it, with
// dpkg-deb: the control file with Status "install ok unpacked" and its new
// conffiles marked "newconffile" (dpkg's mark for a conffile never
// configured), the list of every path of its data archive, and its control
// members.
func readUnpacked(ctx context.Context, deb string) (*unpackedPkg, error) {
	members, err := controlArchive(ctx, deb)
	if err != nil {
		return nil, err
	}
	control, ok := members["control"]
	if !ok {
		return nil, fmt.Errorf("%s: no control file", deb)
	}
	fields := controlFields(string(control))
	p := &unpackedPkg{name: fields["Package"], arch: fields["Architecture"], info: map[string][]byte{}, scripts: map[string]bool{}}
	if p.name == "" || p.arch == "" || fields["Version"] == "" {
		return nil, fmt.Errorf("%s: control file lacks Package, Version or Architecture", deb)
	}
	for _, l := range strings.Split(string(members["conffiles"]), "\n") {
		// "remove-on-upgrade /etc/x" lines name files the package no
		// longer ships; only plain paths are conffiles of this version.
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "/") {
			p.conffiles = append(p.conffiles, strings.TrimPrefix(path.Clean(l), "/"))
		}
	}
	p.stanza = statusStanza(string(control), p.conffiles)
	for _, l := range strings.Split(string(members["triggers"]), "\n") {
		switch f := strings.Fields(l); {
		case len(f) == 2 && (f[0] == "interest" || f[0] == "interest-await"):
			p.interests = append(p.interests, f[1])
		case len(f) == 2 && f[0] == "interest-noawait":
			p.interests = append(p.interests, f[1]+"/noawait")
		}
	}

	p.multiArchSame = fields["Multi-Arch"] == "same"
	base := infoName(p)
	for m, exec := range controlMembers {
		if b, ok := members[m]; ok {
			p.info[base+"."+m] = b
			p.scripts[base+"."+m] = exec
		}
	}
	if p.info[base+".list"], err = fileList(ctx, deb); err != nil {
		return nil, err
	}
	return p, nil
}

// controlArchive reads the control archive of a .deb: each regular member's
// content by name.
func controlArchive(ctx context.Context, deb string) (map[string][]byte, error) {
	m := map[string][]byte{}
	err := walkDeb(ctx, deb, "--ctrl-tarfile", func(h *tar.Header, r io.Reader) error {
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag != tar.TypeReg || strings.Contains(name, "/") {
			return nil
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", deb, name, err)
		}
		m[name] = b
		return nil
	})
	return m, err
}

// fileList returns the list dpkg keeps of a .deb's data archive: "/." for
// the root, then every path in archive order, without trailing slashes.
func fileList(ctx context.Context, deb string) ([]byte, error) {
	var list bytes.Buffer
	err := walkDeb(ctx, deb, "--fsys-tarfile", func(h *tar.Header, _ io.Reader) error {
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "" {
			name = "."
		}
		list.WriteString("/" + name + "\n")
		return nil
	})
	return list.Bytes(), err
}

// controlFields returns the first line of each field of a control file.
func controlFields(control string) map[string]string {
	f := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(control))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && !strings.HasPrefix(k, " ") && !strings.HasPrefix(k, "\t") {
			f[k] = strings.TrimSpace(v)
		}
	}
	return f
}

// statusStanza turns a control file into the stanza dpkg --unpack writes
// to its status file: Status after Package, and the conffiles, each
// marked newconffile, before Description (dpkg's own field order).
func statusStanza(control string, conffiles []string) string {
	var b strings.Builder
	lines := strings.Split(strings.TrimRight(control, "\n"), "\n")
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if strings.HasPrefix(l, "Description:") && len(conffiles) > 0 {
			b.WriteString("Conffiles:\n")
			for _, c := range conffiles {
				b.WriteString(" /" + c + " newconffile\n")
			}
			conffiles = nil
		}
		b.WriteString(l + "\n")
		if strings.HasPrefix(l, "Package:") {
			b.WriteString("Status: install ok unpacked\n")
		}
	}
	if len(conffiles) > 0 {
		b.WriteString("Conffiles:\n")
		for _, c := range conffiles {
			b.WriteString(" /" + c + " newconffile\n")
		}
	}
	return b.String()
}

// dpkgDatabase is the dpkg database of a root whose packages are unpacked
// and not configured: the files to write under var/lib/dpkg and the
// conffiles the packages ship.
type dpkgDatabase struct {
	files     map[string][]byte // path relative to the root -> content
	scripts   map[string]bool   // files that are executable
	conffiles []string          // cleaned paths of every package's conffiles
	packages  int
}

// unpackedDatabase reads every .deb and makes the database that
// `dpkg --unpack` of all of them would leave: the status file (existing
// stanzas of packages not among debs kept, such as mmdebstrap's dummy
// usr-is-merged), the info files and info/format.
func unpackedDatabase(ctx context.Context, debs []string, existing string) (*dpkgDatabase, error) {
	pkgs := make([]*unpackedPkg, len(debs))
	var g errgroup.Group
	g.SetLimit(4)
	var mu sync.Mutex
	for i, deb := range debs {
		g.Go(func() error {
			p, err := readUnpacked(ctx, deb)
			if err != nil {
				return err
			}
			mu.Lock()
			pkgs[i] = p
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	db := &dpkgDatabase{files: map[string][]byte{}, scripts: map[string]bool{}}
	stanzas := map[string]string{} // name:arch -> stanza
	// dpkg --unpack registers each package's trigger interests: file
	// triggers (an absolute path) in triggers/File as "PATH PKG[/noawait]",
	// named ones in triggers/NAME as "PKG[/noawait]". Without them, later
	// installs would not run ldconfig, update-shells or systemd's hwdb and
	// catalog updates. (Activations at unpack are left out: every
	// interested package is itself unconfigured, and its postinst does the
	// work when configured.)
	var fileTriggers []string
	named := map[string][]string{}
	for _, st := range strings.Split(existing, "\n\n") {
		if st = strings.Trim(st, "\n"); st != "" {
			f := controlFields(st)
			stanzas[f["Package"]+":"+f["Architecture"]] = st + "\n"
		}
	}
	for _, p := range pkgs {
		key := p.name + ":" + p.arch
		// An Architecture: all package replaces an older stanza of the
		// same name whatever its architecture field says.
		for k := range stanzas {
			if strings.HasPrefix(k, p.name+":") {
				delete(stanzas, k)
			}
		}
		stanzas[key] = p.stanza
		for name, b := range p.info {
			f := path.Join(dpkgDir, "info", name)
			db.files[f] = b
			db.scripts[f] = p.scripts[name]
		}
		db.conffiles = append(db.conffiles, p.conffiles...)
		who := infoName(p)
		for _, in := range p.interests {
			name, noawait := strings.CutSuffix(in, "/noawait")
			suffix := ""
			if noawait {
				suffix = "/noawait"
			}
			if strings.HasPrefix(name, "/") {
				fileTriggers = append(fileTriggers, name+" "+who+suffix)
			} else {
				named[name] = append(named[name], who+suffix)
			}
		}
	}
	if len(fileTriggers) > 0 {
		slices.Sort(fileTriggers)
		db.files[path.Join(dpkgDir, "triggers", "File")] = []byte(strings.Join(fileTriggers, "\n") + "\n")
	}
	for name, who := range named {
		slices.Sort(who)
		db.files[path.Join(dpkgDir, "triggers", name)] = []byte(strings.Join(who, "\n") + "\n")
	}
	keys := make([]string, 0, len(stanzas))
	for k := range stanzas {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	db.packages = len(keys)
	var status strings.Builder
	for _, k := range keys {
		status.WriteString(stanzas[k] + "\n")
	}
	db.files[path.Join(dpkgDir, "status")] = []byte(status.String())
	// Format 1 is the multiarch layout (pkg:arch names) used above; without
	// the file dpkg would take the database for the old layout.
	db.files[path.Join(dpkgDir, "info", "format")] = []byte("1\n")
	slices.Sort(db.conffiles)
	db.conffiles = slices.Compact(db.conffiles)
	return db, nil
}

// writeTar writes the database as a plain tar of its files (root-owned, at
// Epoch), the form the cache keeps it in.
func (db *dpkgDatabase) writeTar(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, p := range db.paths() {
		mode := int64(0o644)
		if db.scripts[p] {
			mode = 0o755
		}
		h := fileHdr(p, mode, int64(len(db.files[p])))
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("%s: %s: %w", file, p, err)
		}
		if _, err := tw.Write(db.files[p]); err != nil {
			return fmt.Errorf("%s: %s: %w", file, p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return f.Close()
}

// readDpkgTar reads a database written by writeTar; the conffiles come
// from the status file's Conffiles fields.
func readDpkgTar(file string) (*dpkgDatabase, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	db := &dpkgDatabase{files: map[string][]byte{}, scripts: map[string]bool{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, h.Name, err)
		}
		db.files[h.Name] = b
		db.scripts[h.Name] = h.Mode&0o111 != 0
	}
	status, ok := db.files[path.Join(dpkgDir, "status")]
	if !ok {
		return nil, fmt.Errorf("%s: no status file", file)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Package: ") {
			db.packages++
		}
		if c, ok := strings.CutSuffix(l, " newconffile"); ok && strings.HasPrefix(c, " /") {
			db.conffiles = append(db.conffiles, strings.TrimPrefix(c, " /"))
		}
	}
	slices.Sort(db.conffiles)
	db.conffiles = slices.Compact(db.conffiles)
	return db, nil
}
