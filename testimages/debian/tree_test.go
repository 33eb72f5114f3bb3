package debian

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
)

// touched reports whether p is, or is under, the path of a change with one
// of ops (any op when ops is empty).
func touched(changes []Change, p string, ops ...string) bool {
	for _, c := range changes {
		if len(ops) > 0 && !slices.Contains(ops, c.Op) {
			continue
		}
		if p == c.Path || c.Path != "" && under(p, c.Path) {
			return true
		}
	}
	return false
}

// gnuTarEntry is one line of GNU tar's verbose listing.
type gnuTarEntry struct {
	typ        byte
	mode       uint32
	uid, gid   uint32
	size       string // size, or "major,minor" for devices
	mtime      string // "2006-01-02 15:04" in UTC
	name, link string
}

var tarLine = regexp.MustCompile(`^(\S)(\S{9}) (\d+)/(\d+) +(\S+) (\S+ \S+) (.*)$`)

// listTar lists a tar with GNU tar, a reader independent of Go's.
func listTar(t *testing.T, file string) map[string]gnuTarEntry {
	t.Helper()
	gtar := hosttool.Require(t, "tar", "tar")
	cmd := exec.Command(gtar, "--numeric-owner", "--quoting-style=literal", "-tvf", file)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tar -tvf %s: %v", file, err)
	}
	m := map[string]gnuTarEntry{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		g := tarLine.FindStringSubmatch(sc.Text())
		if g == nil {
			t.Fatalf("tar -tv line not understood: %q", sc.Text())
		}
		e := gnuTarEntry{typ: g[1][0], mode: parsePerms(g[2]), size: g[5], mtime: g[6]}
		uid, _ := strconv.Atoi(g[3])
		gid, _ := strconv.Atoi(g[4])
		e.uid, e.gid = uint32(uid), uint32(gid)
		e.name = g[7]
		switch e.typ {
		case 'l':
			e.name, e.link, _ = strings.Cut(e.name, " -> ")
		case 'h':
			e.name, e.link, _ = strings.Cut(e.name, " link to ")
		}
		p, err := fstree.Clean(e.name)
		if err != nil {
			t.Fatal(err)
		}
		m[p] = e
	}
	return m
}

// parsePerms turns "rwsr-xr-x" into 04755.
func parsePerms(s string) uint32 {
	var m uint32
	for i, c := range s {
		bit := uint32(1) << (8 - i)
		switch c {
		case 'r', 'w', 'x':
			m |= bit
		case 's':
			m |= bit
			m |= map[int]uint32{2: fstree.ModeSetuid, 5: fstree.ModeSetgid}[i]
		case 'S':
			m |= map[int]uint32{2: fstree.ModeSetuid, 5: fstree.ModeSetgid}[i]
		case 't':
			m |= bit | fstree.ModeSticky
		case 'T':
			m |= fstree.ModeSticky
		}
	}
	return m
}

var typeOfTar = map[byte]fstree.Type{'-': fstree.TypeRegular, 'h': fstree.TypeRegular, 'd': fstree.TypeDir,
	'l': fstree.TypeSymlink, 'c': fstree.TypeCharDev, 'b': fstree.TypeBlockDev, 'p': fstree.TypeFIFO}

// The expected listing agrees with GNU tar's listing of mmdebstrap's
// original tar, except where a change says otherwise; every original entry
// it lacks was deleted by a change and every entry it adds was added by one.
func TestTreeAgainstOriginal(t *testing.T) {
	d := Tree(t)
	orig := listTar(t, d.RootfsTar)
	exp := map[string]fstree.Record{}
	for _, r := range d.Expected {
		exp[r.Path] = r
	}
	if len(orig) < 5000 {
		t.Errorf("original tree has only %d entries", len(orig))
	}
	kept := 0
	for p, o := range orig {
		r, ok := exp[p]
		if !ok {
			if !touched(d.Changes, p, "whiteout", "opaque", "retype", "replace") {
				t.Errorf("/%s: in the original, not expected, and no change deletes it", p)
			}
			continue
		}
		if touched(d.Changes, p) {
			continue
		}
		kept++
		var want string
		switch o.typ {
		case 'c', 'b':
			want = fmt.Sprintf("%d,%d", r.Major, r.Minor)
		case '-':
			want = strconv.FormatInt(r.Size, 10)
		default:
			want = o.size
		}
		if typeOfTar[o.typ] != r.Type || o.mode != r.Mode || o.uid != r.UID || o.gid != r.GID || o.size != want ||
			o.mtime != r.Mtime.UTC().Format("2006-01-02 15:04") || o.typ == 'l' && o.link != r.Target {
			t.Errorf("/%s: tar -tv says %+v, expected %s", p, o, r)
		}
	}
	for p := range exp {
		if _, ok := orig[p]; !ok && !touched(d.Changes, p, "add", "retype", "hardlink", "replace") {
			t.Errorf("/%s: expected but neither in the original nor added by a change", p)
		}
	}
	// The recipe must have found every kind of case in the real tree.
	for _, op := range []string{"whiteout", "opaque", "replace", "retype", "chmod", "hardlink", "xattr", "add"} {
		n := 0
		for _, c := range d.Changes {
			if c.Op == op && !under(c.Path, testDir) && c.Path != testDir {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no %s change in the Debian entries themselves", op)
		}
	}
	var setuid, devs, links int
	for _, r := range d.Expected {
		if r.Mode&fstree.ModeSetuid != 0 {
			setuid++
		}
		if r.Type == fstree.TypeCharDev || r.Type == fstree.TypeBlockDev {
			devs++
		}
		if r.HardlinkTo != "" {
			links++
		}
	}
	if setuid < 3 || devs < 5 || links < 2 {
		t.Errorf("expected tree has %d setuid files, %d devices, %d hardlinks; want at least 3, 5, 2", setuid, devs, links)
	}
	// The second boot test's root needs its init and the busybox it runs.
	script, err := InitScript(d.Marker)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(script)
	if r := exp["sbin/init"]; r.Type != fstree.TypeRegular || r.Mode != 0o755 || r.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("/sbin/init is %s, want the init script printing %s", r, d.Marker)
	}
	if r := exp["bin/busybox"]; r.Type != fstree.TypeRegular || r.Mode&0o111 == 0 || r.Size < 1<<20 {
		t.Errorf("/bin/busybox is %s, want busybox-static's binary", r)
	}
	t.Logf("%d original entries, %d kept unchanged, %d expected, %d changes", len(orig), kept, len(d.Expected), len(d.Changes))
}

// readRecords lists a tar stream as records, hashing content and resolving
// tar hardlinks to their target's content. links maps each hardlink to the
// name it points at; a link whose target is not in the stream is left out
// of the records and reported in dangling.
func readRecords(t *testing.T, r io.Reader) (recs map[string]fstree.Record, links map[string]string, dangling []string) {
	t.Helper()
	recs, links = map[string]fstree.Record{}, map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := fstree.Clean(h.Name)
		if err != nil {
			t.Fatal(err)
		}
		sum := ""
		switch h.Typeflag {
		case tar.TypeReg:
			hs := sha256.New()
			if _, err := io.Copy(hs, tr); err != nil {
				t.Fatal(err)
			}
			sum = hex.EncodeToString(hs.Sum(nil))
		case tar.TypeLink:
			if links[p], err = fstree.Clean(h.Linkname); err != nil {
				t.Fatal(err)
			}
			continue
		}
		recs[p] = recordOf(p, h, sum)
	}
	for p, target := range links {
		tr, ok := recs[target]
		if !ok {
			dangling = append(dangling, p)
			continue
		}
		tr.Path = p
		recs[p] = tr
	}
	slices.Sort(dangling)
	return recs, links, dangling
}

func expectedMap(d *DebianTree) map[string]fstree.Record {
	m := map[string]fstree.Record{}
	for _, r := range d.Expected {
		r.HardlinkTo = ""
		m[r.Path] = r
	}
	return m
}

// sameRecord compares everything but hardlink structure.
func sameRecord(a, b fstree.Record) bool {
	a.HardlinkTo, b.HardlinkTo = "", ""
	if len(a.Xattrs) == 0 && len(b.Xattrs) == 0 {
		a.Xattrs, b.Xattrs = nil, nil
	}
	return a.String() == b.String() && maps.Equal(a.Xattrs, b.Xattrs)
}

// The layered image, flattened by go-containerregistry (a flattener
// nobody here wrote), gives the expected tree, apart from two documented
// go-containerregistry limitations that the layers exercise on purpose.
func TestTreeAgainstGoContainerregistry(t *testing.T) {
	d := Tree(t)
	img := readLayout(t, d.Layout)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != numLayers {
		t.Errorf("%d layers, want %d", len(layers), numLayers)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	got, links, dangling := readRecords(t, rc)
	want := expectedMap(d)

	// 1. mutate.Extract does not hide what lower layers put under a path
	// that an upper layer turned from a directory into something else.
	var retyped []string
	for _, c := range d.Changes {
		if c.Op == "retype" && strings.HasPrefix(c.Note, "directory") {
			retyped = append(retyped, c.Path)
		}
	}
	// 2. It writes a hardlink whose target an upper layer deleted or
	// replaced as a link to that name (go-containerregistry #977, #2002);
	// the expected tree keeps the old content under the link's name.
	var brokenLinks []string
	for _, c := range d.Changes {
		if strings.HasPrefix(c.Note, "hardlink target") || strings.HasPrefix(c.Note, "first name of a hardlink") {
			brokenLinks = append(brokenLinks, c.Path)
		}
	}
	ignore := func(p string) bool {
		for _, r := range retyped {
			if under(p, r) {
				return true
			}
		}
		return false
	}
	for p, g := range got {
		if ignore(p) {
			continue
		}
		w, ok := want[p]
		if !ok {
			t.Errorf("/%s: go-containerregistry has %s, not expected", p, g)
			continue
		}
		if !sameRecord(g, w) {
			if slices.Contains(brokenLinks, links[p]) {
				continue
			}
			t.Errorf("/%s:\n got %s\nwant %s", p, g, w)
		}
	}
	for p := range want {
		if _, ok := got[p]; !ok && !slices.Contains(dangling, p) {
			t.Errorf("/%s: expected, missing from go-containerregistry's flattening", p)
		}
	}
	for _, p := range dangling {
		if !slices.Contains(brokenLinks, links[p]) {
			t.Errorf("/%s: go-containerregistry left a hardlink to /%s, which no change deletes", p, links[p])
		}
	}
	if len(got) < len(want)*9/10 {
		t.Errorf("only %d of %d expected entries compared", len(got), len(want))
	}
}

// The flat tar holds exactly the expected tree, hardlinks included, as Go
// and GNU tar read it.
func TestTreeFlatTar(t *testing.T) {
	d := Tree(t)
	f, err := os.Open(d.FlatTar)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, links, dangling := readRecords(t, f)
	if len(dangling) > 0 {
		t.Errorf("flat tar has dangling hardlinks: %v", dangling)
	}
	want := expectedMap(d)
	if len(got) != len(want) {
		t.Errorf("flat tar has %d entries, expected %d", len(got), len(want))
	}
	for p, w := range want {
		if g, ok := got[p]; !ok || !sameRecord(g, w) {
			t.Errorf("/%s: flat tar has %s, want %s", p, g, w)
		}
	}
	for _, r := range d.Expected {
		if links[r.Path] != r.HardlinkTo {
			t.Errorf("/%s: flat tar links to %q, expected %q", r.Path, links[r.Path], r.HardlinkTo)
		}
	}
	if n := len(listTar(t, d.FlatTar)); n != len(d.Expected) {
		t.Errorf("GNU tar lists %d entries in the flat tar, want %d", n, len(d.Expected))
	}
}

// Splitting the same original again gives the same layers and listing as
// the cached build. (A failure after a recipe change means treeFormat was
// not bumped.)
func TestTreeDeterministic(t *testing.T) {
	checkResplit(t, Tree(t))
}

// checkResplit splits a tree's original tar again with its recipe and
// compares the layout and the expected listing with the cached ones.
func checkResplit(t *testing.T, d *DebianTree) {
	t.Helper()
	f, err := os.Open(d.RootfsTar)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var db *dpkgDatabase
	if d.DpkgTar != "" {
		if db, err = readDpkgTar(d.DpkgTar); err != nil {
			t.Fatal(err)
		}
	}
	steps, err := recipeSteps(d.Spec, db)
	if err != nil {
		t.Fatal(err)
	}
	s, err := split(f, steps)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := s.writeImage(dir); err != nil {
		t.Fatal(err)
	}
	// The manifest digest covers the config and every layer digest;
	// TestTreeAgainstGoContainerregistry validates the cached layout's bytes.
	again, cached := manifestDigest(t, dir), manifestDigest(t, d.Layout)
	if again != cached {
		t.Errorf("layouts differ: %s now, %s cached", again, cached)
	}
	var lines []string
	for _, r := range s.st.records() {
		lines = append(lines, r.String())
	}
	if !slices.Equal(lines, d.ExpectedLines()) {
		t.Error("expected listings differ between two splits")
	}
}

// Extract makes the expected tree on disk (as root): what mke2fs -d reads.
func TestTreeExtract(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("extracting owners and device nodes needs root")
	}
	d := Tree(t)
	dir := t.TempDir()
	if err := d.Extract(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Expected {
		fi, err := os.Lstat(filepath.Join(dir, r.Path))
		if err != nil {
			t.Errorf("/%s: %v", r.Path, err)
			continue
		}
		st := fi.Sys().(*syscallStat)
		if st.Mode&0o7777 != r.Mode || st.Uid != r.UID || st.Gid != r.GID {
			t.Errorf("/%s: on disk mode %o %d:%d, want %s", r.Path, st.Mode&0o7777, st.Uid, st.Gid, r)
		}
		if r.Type == fstree.TypeRegular && fi.Size() != r.Size {
			t.Errorf("/%s: on disk %d bytes, want %d", r.Path, fi.Size(), r.Size)
		}
		if r.Type == fstree.TypeRegular && r.Path != "" && !fi.ModTime().Equal(r.Mtime) && r.Mtime.Before(time.Now()) {
			t.Errorf("/%s: on disk mtime %v, want %v", r.Path, fi.ModTime(), r.Mtime)
		}
	}
}

// manifestDigest returns the digest of the single image an index names.
func manifestDigest(t *testing.T, dir string) string {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("%s: want one manifest in the index (%v)", dir, err)
	}
	return m.Manifests[0].Digest.String()
}
