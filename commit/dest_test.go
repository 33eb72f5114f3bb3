package commit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/rootfs"
	"github.com/ocidisk/ocidisk/source"
	"github.com/ocidisk/ocidisk/testimages"
)

func TestParseDest(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Dest
		err  string
	}{
		{in: "oci:out", want: Dest{Kind: "oci", Path: "out"}},
		{in: "oci:/srv/images:v1.2", want: Dest{Kind: "oci", Path: "/srv/images", Ref: "v1.2"}},
		{in: "oci:a:b/c", want: Dest{Kind: "oci", Path: "a:b/c"}},
		{in: "oci-archive:img.tar:latest", want: Dest{Kind: "oci-archive", Path: "img.tar", Ref: "latest"}},
		{in: "docker-archive:img.tar", want: Dest{Kind: "docker-archive", Path: "img.tar"}},
		{in: "docker-archive:img.tar:example.com/app:1", want: Dest{Kind: "docker-archive", Path: "img.tar", Ref: "example.com/app:1"}},
		{in: "registry.example:5000/app:1", want: Dest{Kind: "registry", Ref: "registry.example:5000/app:1"}},
		{in: "docker://app", want: Dest{Kind: "registry", Ref: "app"}},
		{in: "oci:", err: "no path"},
		{in: "dir:/x", err: "an image goes to"},
		{in: "tar:/x", err: "an image goes to"},
		{in: "docker-archive:x.tar:Not A Name", err: "image name"},
		{in: "Not A Reference", err: "neither"},
	} {
		got, err := ParseDest(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDest(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDest(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if got.String() != strings.TrimPrefix(tc.in, "docker://") {
			t.Errorf("%+v spells %q", got, got.String())
		}
	}
}

func TestParseCopy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Copy
		ok   bool
	}{
		{"conf:/etc/app", Copy{"conf", "/etc/app"}, true},
		{"a:b.txt:/opt/", Copy{"a:b.txt", "/opt/"}, true},
		{"/abs/dir:/", Copy{"/abs/dir", "/"}, true},
		{"conf:etc/app", Copy{}, false},
		{":/etc", Copy{}, false},
		{"conf", Copy{}, false},
	} {
		got, err := ParseCopy(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseCopy(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

// sampleImage is a two-layer OCI image.
func sampleImage(t *testing.T) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for i, comp := range []string{testimages.Gzip, testimages.Zstd} {
		l, err := testimages.LayerOf([]testimages.Entry{testimages.File("f"+string(rune('0'+i)), strings.Repeat("x", 100*i), 0o644)}, comp)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	img, err := testimages.ImageOf(ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layerDigests lists the layers' (digest, diffID) of an image.
func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, _ := l.Digest()
		id, _ := l.DiffID()
		out = append(out, d.String()+"/"+id.String())
	}
	return out
}

// Each destination holds the image when read back as a source: the same
// manifest (layouts, archives, registries) or the same layers (a docker
// archive, which stores no manifest).
func TestWrite(t *testing.T) {
	img := sampleImage(t)
	want, _ := img.Digest()
	host := testimages.Registry(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := testimages.WriteLayout(existing, "other", sampleImage(t)); err != nil {
		t.Fatal(err)
	}
	if err := testimages.WriteLayout(existing, "v1", mustAppend(t, sampleImage(t))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dest, source string
		sameManifest bool
	}{
		{"oci:" + dir + "/new:v1", "oci:" + dir + "/new:v1", true},
		{"oci:" + dir + "/untagged", "oci:" + dir + "/untagged", true},
		{"oci:" + existing + ":v1", "oci:" + existing + ":v1", true}, // replaces the image tagged v1
		{"oci-archive:" + dir + "/image.oci.tar:v1", "oci-archive:" + dir + "/image.oci.tar:v1", true},
		{"docker-archive:" + dir + "/image.docker.tar:example.com/app:v1", "docker-archive:" + dir + "/image.docker.tar", false},
		{"docker-archive:" + dir + "/untagged.docker.tar", "docker-archive:" + dir + "/untagged.docker.tar", false},
		{host + "/commit/app:v1", host + "/commit/app:v1", true},
	} {
		t.Run(tc.dest, func(t *testing.T) {
			d, err := ParseDest(tc.dest)
			if err != nil {
				t.Fatal(err)
			}
			if err := Write(t.Context(), img, d, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			im, err := source.Open(t.Context(), tc.source, sourceOpts(t))
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			got, err := im.V1()
			if err != nil {
				t.Fatal(err)
			}
			if gd, _ := got.Digest(); tc.sameManifest && gd != want {
				t.Errorf("read back %s, want %s", gd, want)
			}
			if g, w := layerDigests(t, got), layerDigests(t, img); !slices.Equal(g, w) {
				t.Errorf("layers %q, want %q", g, w)
			}
		})
	}
	// The existing layout still names its other image, and v1 once.
	b, _ := os.ReadFile(filepath.Join(existing, "index.json"))
	if strings.Count(string(b), `"v1"`) != 1 || strings.Count(string(b), `"other"`) != 1 {
		t.Errorf("index.json: %s", b)
	}
	// Archives are the same bytes each time.
	again := filepath.Join(dir, "again.oci.tar")
	if err := Write(t.Context(), img, Dest{Kind: "oci-archive", Path: again, Ref: "v1"}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	a1, _ := os.ReadFile(filepath.Join(dir, "image.oci.tar"))
	a2, _ := os.ReadFile(again)
	if !bytes.Equal(a1, a2) {
		t.Error("two oci-archives of one image differ")
	}
}

func mustAppend(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	l, err := testimages.LayerOf([]testimages.Entry{testimages.File("older", "x", 0o644)}, testimages.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(img, l)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// brokenLayer fails when its bytes are read.
type brokenLayer struct{ v1.Layer }

func (brokenLayer) Compressed() (io.ReadCloser, error)   { return nil, errors.New("disk on fire") }
func (brokenLayer) Uncompressed() (io.ReadCloser, error) { return nil, errors.New("disk on fire") }
func (brokenLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }

// A write that fails leaves nothing at the destination: no new layout or
// archive, and an existing layout's index as it was.
func TestWriteFails(t *testing.T) {
	good := sampleImage(t)
	ls, _ := good.Layers()
	img, err := mutate.AppendLayers(good, brokenLayer{ls[0]})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := testimages.WriteLayout(existing, "v1", good); err != nil {
		t.Fatal(err)
	}
	index, _ := os.ReadFile(filepath.Join(existing, "index.json"))
	for _, dest := range []string{"oci:" + dir + "/new", "oci-archive:" + dir + "/x.tar", "docker-archive:" + dir + "/y.tar", "oci:" + existing + ":v2"} {
		d, _ := ParseDest(dest)
		err := Write(t.Context(), img, d, WriteOptions{})
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("%s: error %v", dest, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("failed writes left %v", ents)
	}
	if b, _ := os.ReadFile(filepath.Join(existing, "index.json")); !bytes.Equal(b, index) {
		t.Errorf("a failed write changed the index:\n%s", b)
	}
}

// A source that is not an image becomes one: its flattened tree is the
// first layer, with a config for the platform; the commit's layer goes on
// top in the compression asked for.
func TestBaseOfATree(t *testing.T) {
	dir := t.TempDir()
	tb, err := testimages.TarOf([]testimages.Entry{testimages.Dir("etc", 0o755), testimages.File("etc/hostname", "board\n", 0o644),
		testimages.Symlink("lib", "usr/lib")})
	if err != nil {
		t.Fatal(err)
	}
	tarFile := filepath.Join(dir, "root.tar")
	if err := os.WriteFile(tarFile, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Source: "tar:" + tarFile, Compression: Zstd, Steps: []Step{{Run: "true"}},
		Sources: source.Options{Platform: "linux/arm/v7", CacheDir: t.TempDir()}}
	img, err := rootfs.Load(t.Context(), opts.Source, opts.Sources)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	b, err := baseImage(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	up := upperTree(t, func(put func(string, *fstree.Node)) { put("etc/new", fstree.NewFile(0o644, 3, fstree.Bytes("new"))) })
	info, err := writeLayer(filepath.Join(dir, "layer"), up, Zstd, LayerInfo{})
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(1_700_000_000, 0)
	out, err := b.append(&builtLayer{file: filepath.Join(dir, "layer"), mediaType: b.layerType, info: info}, opts, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.CheckBlobs(out); err != nil {
		t.Fatal(err)
	}
	cfg, _ := out.ConfigFile()
	if cfg.OS != "linux" || cfg.Architecture != "arm" || cfg.Variant != "v7" || len(cfg.History) != 2 || !cfg.Created.Equal(epoch) {
		t.Errorf("config %+v", cfg)
	}
	ls, _ := out.Layers()
	for _, l := range ls {
		if mt, _ := l.MediaType(); mt != types.OCILayerZStd {
			t.Errorf("layer of type %s", mt)
		}
	}
	rc, _ := ls[0].Uncompressed()
	defer rc.Close()
	got, err := testimages.TarListing(rc)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := testimages.TarListing(bytes.NewReader(tb))
	if d := testimages.DiffListings(want, got[1:]); d != "" {
		t.Errorf("the base layer is not the source:\n%s", d)
	}

	// A Docker image keeps Docker layers: gzip, not zstd.
	docker := mutate.MediaType(sampleImage(t), types.DockerManifestSchema2)
	if err := testimages.WriteLayout(filepath.Join(dir, "docker"), "", docker); err != nil {
		t.Fatal(err)
	}
	dimg, err := rootfs.Load(t.Context(), "oci:"+filepath.Join(dir, "docker"), sourceOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	defer dimg.Close()
	if _, err := baseImage(dimg, Options{Source: "docker", Compression: Zstd}); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("zstd on a Docker image: %v", err)
	}
	if db, err := baseImage(dimg, Options{Source: "docker", Compression: Gzip}); err != nil || db.layerType != types.DockerLayer {
		t.Errorf("gzip on a Docker image: %v, %v", db, err)
	}
}
