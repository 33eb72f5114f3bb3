package debian

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ocidisk/ocidisk/fstree"
)

// treeFormat names the recipe of the Debian trees (split and changes);
// change it whenever the recipe changes so that caches built by older code
// are not reused.
const treeFormat = "debian-tree/v2"

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
	Marker  string // what /sbin/init prints
	Entries int    // len(Expected)
	Bytes   int64  // regular file bytes of Expected, each inode once
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
// mmdebstrap downloads and extracts every package). The cache key is the
// recipe, the package list, the marker and the machine's apt index for the
// suite, so new package versions make a new tree.
func (c *Cache) Tree(ctx context.Context, spec TreeSpec) (*DebianTree, error) {
	if spec.Marker == "" {
		spec.Marker = Marker
	}
	if spec.Suite == "" || len(spec.Packages) == 0 || spec.Name == "" {
		return nil, fmt.Errorf("debian tree: spec needs a name, a suite and packages: %+v", spec)
	}
	uri, err := ArchiveURI(spec.Suite)
	if err != nil {
		return nil, err
	}
	pkgs := slices.Clone(spec.Packages)
	slices.Sort(pkgs)
	key := sha256.Sum256([]byte(strings.Join([]string{treeFormat, spec.Suite, Arch, strings.Join(pkgs, ","),
		spec.Marker, uri, indexKey(spec.Suite)}, "\x00")))
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
	if d.Layers, err = layerBlobs(d.Layout); err != nil {
		return nil, err
	}
	return d, nil
}

func (c *Cache) buildTree(ctx context.Context, spec TreeSpec, dir string) error {
	rootfs := filepath.Join(dir, "rootfs.tar")
	c.Log.Info("running mmdebstrap", "packages", spec.Packages, "suite", spec.Suite)
	if err := mmdebstrap(ctx, spec, rootfs); err != nil {
		return err
	}
	c.Log.Info("splitting into layers", "tar", rootfs)
	f, err := os.Open(rootfs)
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := split(f, spec.Marker)
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

// split reads the original tar and runs the whole recipe on it.
func split(f *os.File, marker string) (*splitter, error) {
	orig, err := readOriginal(f)
	if err != nil {
		return nil, err
	}
	s := newSplitter()
	if err := s.addOriginals(f, orig); err != nil {
		return nil, err
	}
	for _, st := range allSteps(marker) {
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
