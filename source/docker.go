package source

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// openDockerArchive opens docker-archive:FILE[:REF] ("docker save" output,
// or go-containerregistry's tarball), in place. REF is a name from
// RepoTags or "@N", the N-th image of the archive.
func openDockerArchive(_ context.Context, im *Image, spec string, platform v1.Platform) error {
	file, ref := splitPathRef(spec)
	name := "docker-archive:" + file
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	im.keep(f)
	t, err := indexTar(f)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	raw, err := readSmall(t, "manifest.json")
	if err != nil {
		return fmt.Errorf("%s: not a docker archive: %w", name, err)
	}
	var ms []dockerManifest
	if err := json.Unmarshal(raw, &ms); err != nil {
		return fmt.Errorf("%s: manifest.json: %w", name, err)
	}
	m, err := pickDockerImage(ms, ref)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	cfgName := path.Clean(m.Config)
	cfgRaw, err := readSmall(t, cfgName)
	if err != nil {
		return fmt.Errorf("%s: config: %w", name, err)
	}
	digest := sha256Of(cfgRaw)
	if want := digestInName(cfgName); want != "" && want != digest.Hex {
		return fmt.Errorf("%s: config %s has %s: %w", name, cfgName, digest, ErrDigestMismatch)
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(cfgRaw)))
	if err != nil {
		return fmt.Errorf("%s: config %s: %w", name, cfgName, err)
	}
	if err := checkConfigPlatform(cfg, platform); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("%s: manifest.json lists %d layers but the config %d diffIDs", name, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	im.ID, im.Config, im.dockerConfig = digest.String(), cfg, cfgRaw
	for i, lp := range m.Layers {
		sr, err := t.open(path.Clean(lp))
		if err != nil {
			return fmt.Errorf("%s: layer %s: %w", name, lp, err)
		}
		// Only the uncompressed content is named for sure (old archives
		// call layers by a v1 ID); newer ones keep blobs/sha256/HEX.
		diffID := cfg.RootFS.DiffIDs[i]
		l := newLayer(im, diffID.String(), v1.Hash{}, diffID, sr.Size())
		if strings.HasPrefix(path.Clean(lp), "blobs/sha256/") {
			if h, err := v1.NewHash("sha256:" + path.Base(lp)); err == nil {
				l.blob, l.name = h, h.String()
			}
		}
		l.local = sr
		im.Layers = append(im.Layers, l)
	}
	return nil
}

var hexName = regexp.MustCompile(`^(?:sha256:)?([0-9a-f]{64})(?:\.json)?$`)

// digestInName returns the hex digest a config file's name promises
// ("HEX.json", "sha256:HEX", "blobs/sha256/HEX"), or "".
func digestInName(p string) string {
	if m := hexName.FindStringSubmatch(path.Base(p)); m != nil {
		return m[1]
	}
	return ""
}

func pickDockerImage(ms []dockerManifest, ref string) (dockerManifest, error) {
	if len(ms) == 0 {
		return dockerManifest{}, fmt.Errorf("manifest.json lists no image")
	}
	var tags []string
	for _, m := range ms {
		tags = append(tags, m.RepoTags...)
	}
	list := "it has " + strings.Join(tags, ", ")
	if len(tags) == 0 {
		list = "it has no tags"
	}
	switch {
	case ref == "" && len(ms) == 1:
		return ms[0], nil
	case ref == "":
		return dockerManifest{}, fmt.Errorf("%d images; name one as :REF or :@N (%s)", len(ms), list)
	case strings.HasPrefix(ref, "@"):
		n, err := strconv.Atoi(ref[1:])
		if err != nil || n < 0 || n >= len(ms) {
			return dockerManifest{}, fmt.Errorf("no image %s: the archive holds %d", ref, len(ms))
		}
		return ms[n], nil
	}
	want, err := name.NewTag(ref)
	if err != nil {
		return dockerManifest{}, usagef("reference %q: %w", ref, err)
	}
	for _, m := range ms {
		for _, t := range m.RepoTags {
			if have, err := name.NewTag(t); err == nil && have.Name() == want.Name() {
				return m, nil
			}
		}
	}
	return dockerManifest{}, fmt.Errorf("no image tagged %q (%s)", ref, list)
}
