package debian

import (
	"bufio"
	"cmp"
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
	Marker   string   // RecipeTest: what the tree's /sbin/init prints; Marker when empty
	// Variant is mmdebstrap's --variant. "" is "extract": the packages are
	// unpacked and no maintainer script runs, so no arm64 emulation is
	// needed. Others ("minbase") install and configure, running the
	// maintainer scripts through qemu-user and binfmt_misc (scripts/setup).
	Variant string
	// Recipe says what the layers above the packages do.
	Recipe Recipe
}

// Recipe names what the upper layers of a Debian tree do.
type Recipe string

const (
	// RecipeTest makes every case a flattener must get right (whiteouts,
	// opaque directories, type changes, hardlinks, xattrs) and replaces the
	// init with the marker script: a tree to judge flatteners and
	// filesystem writers, booted only as far as the marker.
	RecipeTest Recipe = ""
	// RecipeSystemd keeps a configured root bootable: it removes the
	// documentation and manual pages in one layer and configures the
	// network in the next.
	RecipeSystemd Recipe = "systemd"
	// RecipeUnpacked adds, above an extracted root, the dpkg database that
	// `dpkg --unpack` of its packages would have left, so that a second
	// stage can configure it (see ExtractRoot).
	RecipeUnpacked Recipe = "unpacked"
)

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

// SystemdRootSpec is the spec of the systemd root (Cache.SystemdRoot):
// minbase plus bootPackages, configured, with RecipeSystemd's layers.
func SystemdRootSpec() TreeSpec {
	return TreeSpec{Name: "systemd-root", Suite: "bookworm", Variant: "minbase", Recipe: RecipeSystemd,
		Packages: bootPackages()}
}

// ExtractRootSpec is the spec of the unpacked root (Cache.ExtractRoot):
// the same packages as SystemdRootSpec, extracted, with RecipeUnpacked's
// dpkg database.
func ExtractRootSpec() TreeSpec {
	return TreeSpec{Name: "extract-root", Suite: "bookworm", Variant: "extract", Recipe: RecipeUnpacked,
		// minbase's set, which the extract variant does not add by itself:
		// Essential: yes, Priority: required and apt. usr-is-merged takes
		// the place of the placeholder the merged-/usr hook registers.
		Packages: append([]string{"?essential", "?priority(required)", "apt", "usr-is-merged"}, bootPackages()...)}
}

// bootPackages are what a minimal Debian system needs, on top of minbase
// (the essential packages, those of priority required, and apt), to boot
// to a login prompt on QEMU virt and on a board and be reached over ssh:
// systemd as init, udev to load the NIC's and disks' modules, e2fsprogs for
// the root's fsck, dbus for systemctl and logind, sudo, sshd, and
// systemd-resolved for DNS from the DHCP lease that systemd-networkd (part
// of the systemd package) gets.
func bootPackages() []string {
	return []string{"systemd-sysv", "udev", "dbus", "e2fsprogs", "openssh-server", "sudo", "systemd-resolved"}
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

// mmdebstrap writes the root of spec as a plain tar at out, with extra
// arguments (hooks) before the suite. SOURCE_DATE_EPOCH makes its output
// reproducible.
func mmdebstrap(ctx context.Context, spec TreeSpec, out string, extra ...string) error {
	uri, err := ArchiveURI(spec.Suite)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("mmdebstrap not found (apt-get install mmdebstrap): %w", ErrUnavailable)
	}
	variant := cmp.Or(spec.Variant, "extract")
	if variant != "extract" {
		if err := canRun(ctx, Arch); err != nil {
			return err
		}
	}
	args := append([]string{"--variant=" + variant, "--arch=" + Arch, "--quiet"}, includeArgs(spec.Packages)...)
	args = append(append(args, extra...), spec.Suite, out, uri)
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

// canRun checks that this machine runs programs of Debian architecture
// arch, natively or through qemu-user and binfmt_misc, with arch-test (what
// mmdebstrap itself asks).
func canRun(ctx context.Context, arch string) error {
	const how = "configuring a foreign root needs qemu-user-static, binfmt-support and arch-test, " +
		"and binfmt_misc mounted with the interpreters enabled: run scripts/setup"
	if _, err := exec.LookPath("arch-test"); err != nil {
		return fmt.Errorf("arch-test not found (%s): %w", how, ErrUnavailable)
	}
	if out, err := exec.CommandContext(ctx, "arch-test", arch).CombinedOutput(); err != nil {
		return fmt.Errorf("this machine cannot run %s programs (arch-test: %s; %s): %w",
			arch, strings.TrimSpace(string(out)), how, ErrUnavailable)
	}
	return nil
}

// includeArgs returns mmdebstrap's --include options for pkgs. An --include
// that starts with "?" is taken as one apt pattern, not split at commas,
// so each pattern gets an option of its own and the names share one.
func includeArgs(pkgs []string) []string {
	var args, names []string
	for _, p := range pkgs {
		if strings.HasPrefix(p, "?") {
			args = append(args, "--include="+p)
		} else {
			names = append(names, p)
		}
	}
	if len(names) > 0 {
		args = append(args, "--include="+strings.Join(names, ","))
	}
	return args
}
