package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/testimages"
)

// flattenRun runs "ocidisk flatten ARGS" in-process and returns its exit
// status and what it printed on stderr.
func flattenRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), append([]string{"flatten"}, args...), nil, &stdout, &stderr, false)
	return code, stderr.String()
}

// flattenListing runs "ocidisk flatten -o OUT.tar SPEC" and lists the tar.
func flattenListing(t *testing.T, spec string) []fstree.Record {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.tar")
	if code, stderr := flattenRun(t, "-o", out, spec); code != 0 {
		t.Fatalf("flatten %s: exit %d: %s", spec, code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := testimages.TarListing(f)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// isolate gives the test its own cache and no SOURCE_DATE_EPOCH or Docker
// credentials from the machine.
func isolate(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("SOURCE_DATE_EPOCH", "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
}

// spelling is one way of handing an image to ocidisk.
type spelling struct {
	name  string
	write func(dir string, c testimages.Case) (spec string, err error)
}

// fileSpellings are the spellings that need no server.
func fileSpellings() []spelling {
	return []spelling{
		{"oci", func(dir string, c testimages.Case) (string, error) {
			img, err := c.Image()
			if err != nil {
				return "", err
			}
			p := filepath.Join(dir, "layout")
			return "oci:" + p + ":" + c.Name, testimages.WriteLayout(p, c.Name, img)
		}},
		{"oci-archive", func(dir string, c testimages.Case) (string, error) {
			img, err := c.Image()
			if err != nil {
				return "", err
			}
			p := filepath.Join(dir, "image.oci.tar")
			return "oci-archive:" + p, testimages.WriteOCIArchive(p, c.Name, img)
		}},
		{"docker-archive", func(dir string, c testimages.Case) (string, error) {
			img, err := c.Image()
			if err != nil {
				return "", err
			}
			p := filepath.Join(dir, "image.docker.tar")
			return "docker-archive:" + p + ":corpus/" + c.Name + ":latest", testimages.WriteDockerArchive(p, "corpus/"+c.Name+":latest", img)
		}},
		// The same files named by their paths alone: ocidisk tells what
		// each is.
		{"oci plain path", func(dir string, c testimages.Case) (string, error) {
			img, err := c.Image()
			if err != nil {
				return "", err
			}
			p := filepath.Join(dir, "layout")
			return p, testimages.WriteLayout(p, c.Name, img)
		}},
		{"oci-archive plain path", func(dir string, c testimages.Case) (string, error) {
			img, err := c.Image()
			if err != nil {
				return "", err
			}
			p := filepath.Join(dir, "image.oci.tar")
			return p, testimages.WriteOCIArchive(p, c.Name, img)
		}},
		{"docker-archive plain path", func(dir string, c testimages.Case) (string, error) {
			img, err := c.Image()
			if err != nil {
				return "", err
			}
			p := filepath.Join(dir, "image.docker.tar")
			return p, testimages.WriteDockerArchive(p, "corpus/"+c.Name+":latest", img)
		}},
	}
}

// checkCase flattens spec and judges the result against the case: the
// listing of the output tar must be the hand-written one, or the run must
// fail with the expected error and leave no output. It returns the output
// tar's digest ("" for error cases).
func checkCase(t *testing.T, c testimages.Case, spec string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.tar")
	code, stderr := flattenRun(t, "-o", out, spec)
	if c.WantErr != "" {
		checkFailed(t, code, stderr, out, 1, c.WantErr, "layer sha256:")
		return ""
	}
	if code != 0 {
		t.Fatalf("flatten %s: exit %d: %s", spec, code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := testimages.TarListing(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("reading the output tar: %v", err)
	}
	want, err := testimages.ParseListing(c.Want)
	if err != nil {
		t.Fatalf("the case's listing: %v", err)
	}
	if d := testimages.DiffListings(want, got); d != "" {
		t.Errorf("flatten %s (%s):\n%s", spec, c.About, d)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// checkFailed checks a failed run: its exit status, one line on stderr
// holding every part of want, and nothing at the output path.
func checkFailed(t *testing.T, code int, stderr, out string, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit %d, want %d; stderr: %s", code, wantCode, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "ocidisk: flatten: ") {
		t.Errorf("stderr does not end with one ocidisk: flatten: line: %q", stderr)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("error %q does not say %q", last, w)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s (stat: %v)", out, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) > 0 {
		t.Errorf("a failed run left files beside the output: %v", ents)
	}
}

// TestFlattenCorpus runs the whole conformance corpus through ocidisk
// flatten in each file spelling. Every spelling must give the listing of
// the case, and the very same bytes.
func TestFlattenCorpus(t *testing.T) {
	isolate(t)
	corpus := testimages.Corpus()
	if len(corpus) < 30 {
		t.Fatalf("the corpus has %d cases, want at least 30", len(corpus))
	}
	for _, c := range corpus {
		t.Run(c.Name, func(t *testing.T) {
			digests := map[string]string{}
			for _, sp := range fileSpellings() {
				spec, err := sp.write(t.TempDir(), c)
				if err != nil {
					t.Fatalf("%s: %v", sp.name, err)
				}
				t.Run(sp.name, func(t *testing.T) { digests[sp.name] = checkCase(t, c, spec) })
			}
			if digests["oci"] != digests["oci-archive"] || digests["oci"] != digests["docker-archive"] {
				t.Errorf("the spellings gave different tars: %v", digests)
			}
		})
	}
}

// caseNamed returns the corpus case called name.
func caseNamed(t *testing.T, name string) testimages.Case {
	t.Helper()
	for _, c := range testimages.Corpus() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no corpus case %q", name)
	return testimages.Case{}
}

// TestFlattenSourceDateEpoch checks that with SOURCE_DATE_EPOCH set no
// time in the output is later than it, and earlier times are kept.
func TestFlattenSourceDateEpoch(t *testing.T) {
	isolate(t)
	const limit = 1_650_000_000
	t.Setenv("SOURCE_DATE_EPOCH", fmt.Sprint(limit))
	c := caseNamed(t, "mtimes")
	spec, err := fileSpellings()[0].write(t.TempDir(), c)
	if err != nil {
		t.Fatal(err)
	}
	got := flattenListing(t, spec)
	want, err := testimages.ParseListing(`
/ dir 0755 0:0 mtime=0
/day dir 0755 0:0 mtime=86400
/early file 0644 0:0 "" mtime=1
/late file 0644 0:0 "" mtime=1650000000
/link symlink 0777 0:0 "early" mtime=123456789
/nanos file 0644 0:0 "" mtime=1600000000
`)
	if err != nil {
		t.Fatal(err)
	}
	if d := testimages.DiffListings(want, got); d != "" {
		t.Errorf("SOURCE_DATE_EPOCH=%d:\n%s", limit, d)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	code, stderr := flattenRun(t, "-o", filepath.Join(t.TempDir(), "x.tar"), spec)
	if code != 2 || !strings.Contains(stderr, "SOURCE_DATE_EPOCH") {
		t.Errorf("a malformed SOURCE_DATE_EPOCH: exit %d, %q; want exit 2 naming it", code, stderr)
	}
}

// TestFlattenCacheReuse flattens the same image with a cold and a warm
// cache, and after its blobs have been damaged: the layers come from the
// cache by diffID without reading the blobs, and the output is byte for byte
// the same. With an empty cache the damage is found.
func TestFlattenCacheReuse(t *testing.T) {
	isolate(t)
	c := caseNamed(t, "hardlink-target-overwritten-across")
	dir := t.TempDir()
	spec, err := fileSpellings()[0].write(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	cold := checkCase(t, c, spec)
	warm := checkCase(t, c, spec)
	img, err := c.Image()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		d, _ := l.Digest()
		corrupt(t, filepath.Join(dir, "layout", "blobs", d.Algorithm, d.Hex), 20)
	}
	cached := checkCase(t, c, spec)
	if cold != warm || cold != cached {
		t.Errorf("outputs differ: cold %s, warm %s, from the cache alone %s", cold, warm, cached)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := filepath.Join(t.TempDir(), "out.tar")
	code, stderr := flattenRun(t, "-o", out, spec)
	checkFailed(t, code, stderr, out, 1, "bytes do not match the digest")
}

// TestFlattenProgress checks the progress line drawn on a terminal: it
// reaches the total and is cleared at the end.
func TestFlattenProgress(t *testing.T) {
	isolate(t)
	spec, err := fileSpellings()[0].write(t.TempDir(), caseNamed(t, "many-layers"))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	out := filepath.Join(t.TempDir(), "out.tar")
	if code := run(t.Context(), []string{"flatten", "-o", out, spec}, nil, &stdout, &stderr, true); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	s := stderr.String()
	draws := strings.Split(s, "\r")
	if len(draws) < 3 || !strings.HasPrefix(draws[1], "reading layers: ") {
		t.Fatalf("no progress line in %q", s)
	}
	last := draws[len(draws)-2] // the final draw; the last piece clears it
	m := regexp.MustCompile(`^reading layers: 100% (\S+ \S+)/(\S+ \S+)\x1b\[K$`).FindStringSubmatch(last)
	if m == nil || m[1] != m[2] || m[2] == "0 bytes" {
		t.Errorf("progress ended at %q", last)
	}
	if !strings.HasPrefix(draws[len(draws)-1], "\x1b[K") {
		t.Errorf("progress line not cleared: %q", draws[len(draws)-1])
	}
}
