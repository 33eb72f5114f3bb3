package debian

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ocidisk/ocidisk/fstree"
)

// treeFormat names the recipe of the Debian trees (split and changes);
// change it whenever the recipe changes so that caches built by older code
// are not reused. recipeFormat does the same for the bootable recipes.
const treeFormat = "debian-tree/v2"

func recipeFormat(r Recipe) string {
	switch r {
	case RecipeSystemd:
		return "boot-recipes/v1"
	case RecipeUnpacked:
		return "unpacked/v2"
	}
	return ""
}

// DebianTree is a Debian root made by mmdebstrap, as a layered OCI image
// and as the tree that image must flatten to.
type DebianTree struct {
	Spec   TreeSpec
	Dir    string // the cache entry holding the files below
	Layout string // OCI image layout: one linux/arm64 image of 5 gzip layers
	// RootfsTar is mmdebstrap's original, unlayered tree as a plain tar.
	RootfsTar string
	// FlatTar is the expected flattened tree as a plain tar: entries in
	// walk order, the root included, hardlinks as tar hardlinks to the
	// first name, xattrs as SCHILY.xattr PAX records.
	FlatTar string
	// Expected lists the flattened tree in walk order, as fstree.Manifest
	// would list a correct flattening (root included).
	Expected []fstree.Record
	// Layers are the gzip layer blobs in the layout, bottom first (for
	// measuring plain decompression).
	Layers []string
	// Changes lists what the upper layers do to the original tree.
	Changes []Change
	Marker  string // what /sbin/init prints (RecipeTest)
	// DpkgTar holds, for RecipeUnpacked, the dpkg database the upper
	// layers add, as a plain tar; "" for the other recipes.
	DpkgTar string
	Entries int   // len(Expected)
	Bytes   int64 // regular file bytes of Expected, each inode once
}

// ExpectedLines is Expected rendered with fstree.Record.String, for diffs.
func (d *DebianTree) ExpectedLines() []string {
	out := make([]string, len(d.Expected))
	for i, r := range d.Expected {
		out[i] = r.String()
	}
	return out
}

// Extract writes the expected flattened tree into the directory dir with
// GNU tar: owners, modes, device nodes and xattrs need root. This is the
// input `mke2fs -d` and the benchmarks' reference pipeline need.
func (d *DebianTree) Extract(ctx context.Context, dir string) error {
	return ExtractTar(ctx, d.FlatTar, dir)
}

// ExtractTar extracts a plain tar into dir (created if missing) keeping
// numeric owners, all mode bits, device nodes and xattrs; it needs root.
func ExtractTar(ctx context.Context, tarFile, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := exec.LookPath("tar"); err != nil {
		return fmt.Errorf("tar not found: %w", ErrUnavailable)
	}
	_, err := run(ctx, "", "tar", "--extract", "--file", tarFile, "--directory", dir, "--numeric-owner",
		"--same-permissions", "--same-owner", "--xattrs", "--xattrs-include=*")
	if err != nil {
		return fmt.Errorf("extract %s to %s: %w", tarFile, dir, err)
	}
	return nil
}

// treeInfo is what tree.gob keeps of a built tree. gob, not JSON: xattr
// values are arbitrary bytes.
type treeInfo struct {
	Spec     TreeSpec
	Expected []fstree.Record
	Changes  []Change
	Bytes    int64
}

// Tree returns the Debian tree of spec, making it on first use (minutes:
// mmdebstrap downloads and extracts every package, and a configured variant
// runs every maintainer script under emulation). The cache key is the
// recipe, the package list, the marker, the variant and the machine's apt
// index for the suite, so new package versions make a new tree.
func (c *Cache) Tree(ctx context.Context, spec TreeSpec) (*DebianTree, error) {
	if spec.Marker == "" && spec.Recipe == RecipeTest {
		spec.Marker = Marker
	}
	if spec.Suite == "" || len(spec.Packages) == 0 || spec.Name == "" {
		return nil, fmt.Errorf("debian tree: spec needs a name, a suite and packages: %+v", spec)
	}
	if _, err := recipeSteps(spec, &dpkgDatabase{}); err != nil {
		return nil, err
	}
	uri, err := ArchiveURI(spec.Suite)
	if err != nil {
		return nil, err
	}
	pkgs := slices.Clone(spec.Packages)
	slices.Sort(pkgs)
	parts := []string{treeFormat, spec.Suite, Arch, strings.Join(pkgs, ","), spec.Marker, uri, indexKey(spec.Suite)}
	if spec.Variant != "" || spec.Recipe != RecipeTest {
		// Only the trees added with variants and recipes say so, so the
		// test trees keep the keys they had.
		parts = append(parts, "variant="+spec.Variant, "recipe="+string(spec.Recipe), recipeFormat(spec.Recipe))
	}
	key := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	dir, err := c.entry(filepath.Join(spec.Name, hex.EncodeToString(key[:8])), func(tmp string) error {
		return c.buildTree(ctx, spec, tmp)
	})
	if err != nil {
		return nil, err
	}
	return loadTree(dir)
}

func loadTree(dir string) (*DebianTree, error) {
	f, err := os.Open(filepath.Join(dir, "tree.gob"))
	if err != nil {
		return nil, fmt.Errorf("debian tree %s: %w", dir, err)
	}
	defer f.Close()
	var info treeInfo
	if err := gob.NewDecoder(f).Decode(&info); err != nil {
		return nil, fmt.Errorf("debian tree %s: tree.gob: %w", dir, err)
	}
	d := &DebianTree{Spec: info.Spec, Dir: dir, Layout: filepath.Join(dir, "layout"),
		RootfsTar: filepath.Join(dir, "rootfs.tar"), FlatTar: filepath.Join(dir, "flat.tar"),
		Expected: info.Expected, Changes: info.Changes, Marker: info.Spec.Marker,
		Entries: len(info.Expected), Bytes: info.Bytes}
	if info.Spec.Recipe == RecipeUnpacked {
		d.DpkgTar = filepath.Join(dir, "dpkg.tar")
	}
	if d.Layers, err = layerBlobs(d.Layout); err != nil {
		return nil, err
	}
	return d, nil
}

func (c *Cache) buildTree(ctx context.Context, spec TreeSpec, dir string) error {
	rootfs := filepath.Join(dir, "rootfs.tar")
	var extra []string
	if spec.Recipe != RecipeTest {
		// Merged /usr from the start, as Debian 12 systems are, instead of
		// the usrmerge package converting the root in its postinst (and
		// pulling in perl).
		const hooks = "/usr/share/mmdebstrap/hooks/merged-usr"
		if _, err := os.Stat(hooks); err != nil {
			return fmt.Errorf("debian tree %s: mmdebstrap's merged-/usr hooks: %w (apt-get install mmdebstrap): %w", spec.Name, err, ErrUnavailable)
		}
		extra = append(extra, "--hook-dir="+hooks)
	}
	debs := filepath.Join(dir, "debs")
	if spec.Recipe == RecipeUnpacked {
		// The extract variant leaves no record of what it unpacked: keep
		// the packages to write the dpkg database from.
		if err := os.Mkdir(debs, 0o755); err != nil {
			return err
		}
		extra = append(extra, "--extract-hook=cp \"$1\"/var/cache/apt/archives/*.deb "+shellQuote(debs),
			// mmdebstrap copies in the build machine's host name and name
			// server; neither belongs in the root, and they would make
			// its bytes depend on the machine.
			`--extract-hook=rm -f "$1/etc/hostname" "$1/etc/resolv.conf"`)
	}
	c.Log.Info("running mmdebstrap", "packages", spec.Packages, "suite", spec.Suite, "variant", cmp.Or(spec.Variant, "extract"))
	if err := mmdebstrap(ctx, spec, rootfs, extra...); err != nil {
		return err
	}
	var db *dpkgDatabase
	if spec.Recipe == RecipeUnpacked {
		c.Log.Info("writing the dpkg database of the unpacked packages", "debs", debs)
		var err error
		if db, err = c.unpackedDB(ctx, rootfs, debs); err != nil {
			return err
		}
		if err := db.writeTar(filepath.Join(dir, "dpkg.tar")); err != nil {
			return err
		}
		if err := os.RemoveAll(debs); err != nil {
			return err
		}
	}
	steps, err := recipeSteps(spec, db)
	if err != nil {
		return err
	}
	c.Log.Info("splitting into layers", "tar", rootfs)
	f, err := os.Open(rootfs)
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := split(f, steps)
	if err != nil {
		return fmt.Errorf("debian tree %s: %w", rootfs, err)
	}
	if err := s.writeImage(filepath.Join(dir, "layout")); err != nil {
		return err
	}
	if err := s.writeFlat(filepath.Join(dir, "flat.tar")); err != nil {
		return err
	}
	info := treeInfo{Spec: spec, Expected: s.st.records(), Changes: s.changes, Bytes: s.bytes()}
	out, err := os.Create(filepath.Join(dir, "tree.gob"))
	if err != nil {
		return err
	}
	if err := gob.NewEncoder(out).Encode(&info); err != nil {
		out.Close()
		return err
	}
	c.Log.Info("debian tree ready", "entries", len(info.Expected), "bytes", info.Bytes, "changes", len(info.Changes))
	return out.Close()
}

// unpackedDB makes the dpkg database of the .debs in dir, keeping the
// stanzas the root's status file already has (mmdebstrap's merged-/usr
// hook registers a placeholder usr-is-merged there) unless a .deb replaces
// them.
func (c *Cache) unpackedDB(ctx context.Context, rootfs, dir string) (*dpkgDatabase, error) {
	debs, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil || len(debs) == 0 {
		return nil, fmt.Errorf("debian tree: no packages kept in %s (%v)", dir, err)
	}
	slices.Sort(debs)
	status, err := tarFile(rootfs, path.Join(dpkgDir, "status"))
	if err != nil {
		return nil, err
	}
	return unpackedDatabase(ctx, debs, string(status))
}

// tarFile returns the content of the regular file name (a cleaned path) of
// a plain tar, or nothing when the tar has no such file.
func tarFile(file, name string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if p, err := fstree.Clean(h.Name); err == nil && p == name && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, name, err)
			}
			return b, nil
		}
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// split reads the original tar and runs steps, the recipe of the upper
// layers, on it.
func split(f *os.File, steps []step) (*splitter, error) {
	orig, err := readOriginal(f)
	if err != nil {
		return nil, err
	}
	s := newSplitter()
	if err := s.addOriginals(f, orig); err != nil {
		return nil, err
	}
	for _, st := range steps {
		if err := st.do(s, st.layer); err != nil {
			return nil, fmt.Errorf("layer %d: %s: %w", st.layer, st.op, err)
		}
	}
	return s, nil
}

// bytes sums the regular file sizes of the model, each inode once.
func (s *splitter) bytes() int64 {
	var n int64
	seen := map[string]bool{}
	for _, x := range s.st.m {
		if x.rec.Type != fstree.TypeRegular || x.group != "" && seen[x.group] {
			continue
		}
		if x.group != "" {
			seen[x.group] = true
		}
		n += x.rec.Size
	}
	return n
}

// writeImage writes the layers, each in walk order, as an OCI layout.
func (s *splitter) writeImage(dir string) error {
	scratch, err := os.MkdirTemp(filepath.Dir(dir), "layers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	spec := imageSpec{Cmd: []string{"/sbin/init"}}
	// Compressing is most of the work; layers are independent, and their
	// content is read with ReadAt, which is safe to share.
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, l := range s.layers {
		file := filepath.Join(scratch, fmt.Sprintf("layer%d.tar.gz", i))
		spec.Layers = append(spec.Layers, file)
		what := "Debian packages, part " + fmt.Sprint(i+1)
		if i >= firstUpper {
			what = "changes: " + strings.Join(s.opsIn(i), ", ")
		}
		spec.CreatedBy = append(spec.CreatedBy, what)
		g.Go(func() error {
			names := make([]string, 0, len(l))
			for p := range l {
				names = append(names, p)
			}
			slices.SortFunc(names, walkCompare)
			entries := make([]layerEntry, len(names))
			for j, p := range names {
				entries[j] = l[p]
			}
			return writeLayer(file, entries)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, err = writeLayout(dir, spec)
	return err
}

func (s *splitter) opsIn(layer int) []string {
	var ops []string
	for _, c := range s.changes {
		if c.Layer == layer && !slices.Contains(ops, c.Op) {
			ops = append(ops, c.Op)
		}
	}
	return ops
}

// writeFlat writes the model as one plain tar.
func (s *splitter) writeFlat(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, r := range s.st.records() {
		h := headerOf(r)
		x := s.st.get(r.Path)
		if r.HardlinkTo != "" {
			h = tar.Header{Typeflag: tar.TypeLink, Name: "./" + r.Path, Linkname: "./" + r.HardlinkTo,
				Mode: h.Mode, Uid: h.Uid, Gid: h.Gid, ModTime: h.ModTime}
		}
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("%s: %s: %w", file, r.Path, err)
		}
		if h.Typeflag != tar.TypeReg || h.Size == 0 {
			continue
		}
		rc, err := x.body.Open()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", file, r.Path, err)
		}
		_, err = io.Copy(tw, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", file, r.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
