package source

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocidisk/ocidisk/testimages"
)

// V1 of each image spelling is the image as stored: every blob matches
// its digest when read, the layers are the stored blobs unchanged, and for
// the spellings that store a manifest, it is that manifest.
func TestV1(t *testing.T) {
	img, _ := sampleImage(t)
	wantDigest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	var wantLayers, wantDiffIDs []v1.Hash
	ls, _ := img.Layers()
	for _, l := range ls {
		d, _ := l.Digest()
		id, _ := l.DiffID()
		wantLayers, wantDiffIDs = append(wantLayers, d), append(wantDiffIDs, id)
	}
	dir := t.TempDir()
	layoutDir, archive, docker := filepath.Join(dir, "layout"), filepath.Join(dir, "image.oci.tar"), filepath.Join(dir, "image.docker.tar")
	if err := testimages.WriteLayout(layoutDir, "v1", img); err != nil {
		t.Fatal(err)
	}
	if err := testimages.WriteOCIArchive(archive, "v1", img); err != nil {
		t.Fatal(err)
	}
	if err := testimages.WriteDockerArchive(docker, "example.com/v1:latest", img); err != nil {
		t.Fatal(err)
	}
	host := testimages.Registry(t)
	if _, err := testimages.Push(host+"/v1/image:v1", img); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, spec   string
		sameManifest bool
	}{
		{"layout", "oci:" + layoutDir + ":v1", true},
		{"oci-archive", "oci-archive:" + archive, true},
		{"docker-archive", "docker-archive:" + docker, false},
		{"registry", host + "/v1/image:v1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, _ := openAll(t, tc.spec, Options{CacheDir: t.TempDir()})
			got, err := im.V1()
			if err != nil {
				t.Fatal(err)
			}
			if err := testimages.CheckBlobs(got); err != nil {
				t.Fatalf("invalid: %v", err)
			}
			if d, _ := got.Digest(); tc.sameManifest && d != wantDigest {
				t.Errorf("manifest %s, want the stored %s", d, wantDigest)
			}
			var layers, diffIDs []v1.Hash
			gls, _ := got.Layers()
			for _, l := range gls {
				d, _ := l.Digest()
				id, _ := l.DiffID()
				layers, diffIDs = append(layers, d), append(diffIDs, id)
			}
			if !slices.Equal(layers, wantLayers) || !slices.Equal(diffIDs, wantDiffIDs) {
				t.Errorf("layers %v %v, want %v %v", layers, diffIDs, wantLayers, wantDiffIDs)
			}
		})
	}

	// A damaged blob is caught when V1's layer is read.
	im, _ := openAll(t, "oci:"+layoutDir+":v1", Options{CacheDir: t.TempDir()})
	blob := filepath.Join(layoutDir, "blobs", wantLayers[0].Algorithm, wantLayers[0].Hex)
	b, _ := os.ReadFile(blob)
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ := im.V1()
	if err := testimages.CheckBlobs(got); err == nil {
		t.Error("a damaged blob validated")
	}

	// Sources that are not images have no V1.
	tarFile := filepath.Join(dir, "layer.tar")
	tb, _ := testimages.TarOf([]testimages.Entry{testimages.File("f", "x", 0o644)})
	os.WriteFile(tarFile, tb, 0o644)
	ti, _ := openAll(t, "tar:"+tarFile, Options{CacheDir: t.TempDir()})
	if v, err := ti.V1(); v != nil || err != nil {
		t.Errorf("tar: V1 %v, %v", v, err)
	}
}
