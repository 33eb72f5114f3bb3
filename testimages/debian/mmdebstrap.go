package debian

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// TreeSpec says which Debian root to make.
type TreeSpec struct {
	Name     string   // cache directory name, e.g. "debian-tree"
	Suite    string   // e.g. "bookworm"
	Packages []string // --include list; mmdebstrap adds their dependencies
	Marker   string   // what the tree's /sbin/init prints; Marker when empty
}

// DefaultTree is the Debian root of issues 2, 3 and 5: about 6,700 entries
// and 190 MB once flattened.
func DefaultTree() TreeSpec {
	return TreeSpec{Name: "debian-tree", Suite: "bookworm",
		Packages: []string{"systemd", "python3", "perl", "apt", "openssh-server", "busybox-static"}}
}

// LargeTree is DefaultTree plus compilers, Go, Boost and an office suite:
// over 1 GiB and 40,000 entries, for the benchmarks.
func LargeTree() TreeSpec {
	s := DefaultTree()
	s.Name = "debian-tree-large"
	// golang-go and libboost-dev bring tens of thousands of small files,
	// libreoffice-core and the compilers the bulk of the bytes.
	s.Packages = append(s.Packages, "gcc", "g++", "gdb", "golang-go", "libreoffice-core", "libboost-dev")
	return s
}

// ArchiveURI returns the Debian archive the machine's apt is configured
// with for suite's main component, from /etc/apt/sources.list.d/*.sources
// (deb822) or /etc/apt/sources.list (one-line form), as scripts/setup does.
// Addresses are never written into code.
func ArchiveURI(suite string) (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	slices.Sort(files)
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			if uri := uriFromSources(string(b), suite); uri != "" {
				return uri, nil
			}
		}
	}
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		if uri := uriFromList(string(b), suite); uri != "" {
			return uri, nil
		}
	}
	return "", fmt.Errorf("no Debian archive for %s main in /etc/apt/sources.list{,.d}: %w", suite, ErrUnavailable)
}

// uriFromSources finds suite's main archive in a deb822 .sources file.
func uriFromSources(content, suite string) string {
	for _, stanza := range strings.Split(content, "\n\n") {
		fields := map[string][]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[strings.ToLower(k)] = strings.Fields(v)
			}
		}
		if slices.Contains(fields["types"], "deb") && slices.Contains(fields["suites"], suite) &&
			slices.Contains(fields["components"], "main") && len(fields["uris"]) > 0 {
			return fields["uris"][0]
		}
	}
	return ""
}

// uriFromList finds suite's main archive in a one-line sources.list:
// "deb [options] URI SUITE COMPONENT...".
func uriFromList(content, suite string) string {
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) == 0 || w[0] != "deb" {
			continue
		}
		w = w[1:]
		if len(w) > 0 && strings.HasPrefix(w[0], "[") {
			for len(w) > 0 && !strings.HasSuffix(w[0], "]") {
				w = w[1:]
			}
			if len(w) > 0 {
				w = w[1:]
			}
		}
		if len(w) >= 3 && w[1] == suite && slices.Contains(w[2:], "main") {
			return w[0]
		}
	}
	return ""
}

// indexKey hashes the machine's apt index for suite (its InRelease files,
// which name the hash of every package list): when the archive publishes new
// package versions and apt-get update fetches them, the key changes and the
// tree is made again.
func indexKey(suite string) string {
	h := sha256.New()
	files, _ := filepath.Glob("/var/lib/apt/lists/*_dists_" + suite + "_InRelease")
	slices.Sort(files)
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mmdebstrap writes the extracted (not configured) root of spec as a plain
// tar at out. The extract variant runs no maintainer scripts, so it needs no
// arm64 emulation; SOURCE_DATE_EPOCH makes its output reproducible.
func mmdebstrap(ctx context.Context, spec TreeSpec, out string) error {
	uri, err := ArchiveURI(spec.Suite)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("mmdebstrap not found (apt-get install mmdebstrap): %w", ErrUnavailable)
	}
	args := []string{"--variant=extract", "--arch=" + Arch, "--include=" + strings.Join(spec.Packages, ","),
		"--quiet", spec.Suite, out, uri}
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.Itoa(SourceDateEpoch))
	if b, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(b))
		if len(msg) > 3000 {
			msg = "..." + msg[len(msg)-3000:]
		}
		// mmdebstrap fails the same way for a missing network and a
		// missing archive; both mean the input cannot be made here.
		return fmt.Errorf("mmdebstrap %s: %w: %s: %w", strings.Join(args, " "), err, msg, ErrUnavailable)
	}
	return nil
}
