package debian

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Arch is the architecture of the inputs this package makes unless another
// is asked for.
const Arch = "arm64"

// Pkg is one package version as apt-cache shows it.
type Pkg struct {
	Name, Version, Arch string
	Filename            string // path in the archive's pool; its base is the .deb's name
	SHA256              string
	Size                int64
	Depends             string
}

// DebName is the file name the package has in the archive (no epoch, so no
// colon: safe in "deb:FILE" source spellings).
func (p Pkg) DebName() string { return path.Base(p.Filename) }

// Show returns the candidate version of a package. spec is
// NAME[:ARCH][/SUITE]; a bare NAME means the arm64 package, or the
// architecture independent one when the package is Architecture: all.
// /SUITE picks the version apt has from that suite (bookworm-backports,
// whose packages are never candidates otherwise).
func Show(ctx context.Context, spec string) (Pkg, error) {
	rest, suite, hasSuite := strings.Cut(spec, "/")
	if hasSuite {
		suite = "/" + suite
	}
	name, arch, hasArch := strings.Cut(rest, ":")
	if !hasArch {
		arch = Arch
	}
	p, err := aptCacheShow(ctx, name+":"+arch+suite)
	if err != nil && !hasArch {
		// Architecture: all packages belong to the native architecture in
		// apt's eyes, so NAME:arm64 does not find them.
		if q, err2 := aptCacheShow(ctx, name+suite); err2 == nil && q.Arch == "all" {
			return q, nil
		}
	}
	return p, err
}

func aptCacheShow(ctx context.Context, spec string) (Pkg, error) {
	out, err := run(ctx, "", "apt-cache", "show", "--no-all-versions", spec)
	if err != nil {
		return Pkg{}, fmt.Errorf("package %s: %w (run apt-get update; arm64 and armhf need dpkg --add-architecture, backports a source: see scripts/setup): %w", spec, err, ErrUnavailable)
	}
	p := parseStanza(out)
	if p.Name == "" || p.Version == "" || p.Filename == "" {
		return Pkg{}, fmt.Errorf("package %s: apt-cache shows no candidate: %w", spec, ErrUnavailable)
	}
	return p, nil
}

// parseStanza reads the first stanza of apt-cache show output.
func parseStanza(b []byte) Pkg {
	var p Pkg
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Package":
			p.Name = v
		case "Version":
			p.Version = v
		case "Architecture":
			p.Arch = v
		case "Filename":
			p.Filename = v
		case "SHA256":
			p.SHA256 = v
		case "Size":
			p.Size, _ = strconv.ParseInt(v, 10, 64)
		case "Depends":
			p.Depends = v
		}
	}
	return p
}

// metaTarget returns the package a metapackage stands for: Debian's
// metapackages (linux-image-arm64) are tiny and depend on exactly one
// package at exactly their own version. Other packages return "".
func metaTarget(p Pkg) string {
	if p.Size > 10<<10 || p.Depends == "" || strings.ContainsAny(p.Depends, ",|") {
		return ""
	}
	name, ver, ok := strings.Cut(p.Depends, " (= ")
	if !ok || strings.TrimSuffix(ver, ")") != p.Version {
		return ""
	}
	return strings.TrimSpace(name)
}

// Resolve returns the package spec names, following a metapackage to the
// real package (linux-image-arm64 to linux-image-6.1.0-NN-arm64) in the
// same suite.
func Resolve(ctx context.Context, spec string) (Pkg, error) {
	p, err := Show(ctx, spec)
	if err != nil {
		return Pkg{}, err
	}
	if t := metaTarget(p); t != "" {
		if !strings.Contains(t, ":") && p.Arch != "all" {
			t += ":" + p.Arch
		}
		if _, suite, ok := strings.Cut(spec, "/"); ok {
			t += "/" + suite
		}
		return Show(ctx, t)
	}
	return p, nil
}

// Package returns the path of the .deb for spec (NAME or NAME:ARCH, see
// Show; metapackages resolved, see Resolve), downloading it with apt-get
// into the cache once and checking its SHA-256 against apt's index.
func (c *Cache) Package(ctx context.Context, spec string) (string, error) {
	p, err := c.resolve(ctx, spec)
	if err != nil {
		return "", err
	}
	return c.fetch(ctx, p)
}

// resolve is Resolve remembered in the cache until apt's index changes:
// apt-cache takes seconds per call here (it builds its package cache in
// memory each time), and tests ask for the same packages again and again.
func (c *Cache) resolve(ctx context.Context, spec string) (Pkg, error) {
	key := sha256.Sum256([]byte(spec + "\x00" + listsStamp()))
	file := filepath.Join(c.Dir, "resolved", hex.EncodeToString(key[:8])+".json")
	var p Pkg
	if b, err := os.ReadFile(file); err == nil && json.Unmarshal(b, &p) == nil && p.SHA256 != "" {
		return p, nil
	}
	p, err := Resolve(ctx, spec)
	if err != nil {
		return Pkg{}, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return Pkg{}, err
	}
	// Best effort: a failure to remember costs time, not correctness.
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err == nil {
		tmp := fmt.Sprintf("%s.tmp-%d", file, os.Getpid())
		if os.WriteFile(tmp, b, 0o644) == nil {
			_ = os.Rename(tmp, file)
		}
	}
	return p, nil
}

// listsStamp identifies the state of apt's index: the names, sizes and
// times of its Release files, which apt-get update rewrites.
func listsStamp() string {
	var b strings.Builder
	files, _ := filepath.Glob("/var/lib/apt/lists/*Release")
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

func (c *Cache) fetch(ctx context.Context, p Pkg) (string, error) {
	name := p.DebName()
	dir, err := c.entry(filepath.Join("debs", strings.TrimSuffix(name, ".deb")), func(tmp string) error {
		c.Log.Info("downloading package", "package", p.Name, "version", p.Version, "arch", p.Arch)
		spec := p.Name + ":" + p.Arch + "=" + p.Version
		if p.Arch == "all" {
			spec = p.Name + "=" + p.Version
		}
		// Downloading as root into a directory _apt cannot write makes apt
		// warn; it still works. The sandbox user is irrelevant here.
		if _, err := run(ctx, tmp, "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", spec); err != nil {
			return fmt.Errorf("download %s: %w: %w", spec, err, ErrUnavailable)
		}
		ents, err := os.ReadDir(tmp)
		if err != nil || len(ents) != 1 {
			return fmt.Errorf("download %s: expected one .deb in %s, got %d entries (%v)", spec, tmp, len(ents), err)
		}
		got := filepath.Join(tmp, ents[0].Name())
		if err := checkSHA256(got, p.SHA256); err != nil {
			return fmt.Errorf("download %s: %w", spec, err)
		}
		return os.Rename(got, filepath.Join(tmp, name))
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

func checkSHA256(file, want string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: sha256 %s, apt's index says %s", file, got, want)
	}
	return nil
}

// KernelPackage is the metapackage that names Debian's current arm64 kernel.
const KernelPackage = "linux-image-arm64"

// Kernel returns the path of the current Debian arm64 kernel package
// (linux-image-6.1.0-NN-arm64_..._arm64.deb).
func (c *Cache) Kernel(ctx context.Context) (string, error) {
	return c.Package(ctx, KernelPackage)
}

// KernelSpec names one of Debian's kernel packages by what it runs on.
type KernelSpec struct {
	// Arch is Debian's architecture: arm64 (the default) or armhf.
	Arch string
	// Flavour is the kernel flavour: arm64 (the only one for arm64), armmp
	// (armhf's default: Cortex-A7/A9/A15 boards, QEMU virt, the Pi 2, whose
	// bcm2836-rpi-2-b.dtb it ships) or armmp-lpae (the same with large
	// physical addresses, for Cortex-A7/A15 with more than 4 GiB).
	Flavour string
	// Suite is the suite to take it from, "" for apt's candidate (bookworm
	// or its security updates); bookworm-backports has 6.12, which ships
	// the Pi 5's bcm2712-rpi-5-b.dtb.
	Suite string
}

// Package returns the metapackage spec of k, NAME:ARCH[/SUITE].
func (k KernelSpec) Package() (string, error) {
	arch := cmp.Or(k.Arch, Arch)
	flavours := map[string][]string{"arm64": {"arm64"}, "armhf": {"armmp", "armmp-lpae"}}
	fl, ok := flavours[arch]
	if !ok {
		return "", fmt.Errorf("kernel: architecture %q: want arm64 or armhf", k.Arch)
	}
	flavour := cmp.Or(k.Flavour, fl[0])
	if !slices.Contains(fl, flavour) {
		return "", fmt.Errorf("kernel: flavour %q: %s has %s", k.Flavour, arch, strings.Join(fl, ", "))
	}
	spec := "linux-image-" + flavour + ":" + arch
	if k.Suite != "" {
		spec += "/" + k.Suite
	}
	return spec, nil
}

// KernelFor returns the path of the Debian kernel package k names
// (linux-image-6.1.0-NN-armmp_..._armhf.deb, ...).
func (c *Cache) KernelFor(ctx context.Context, k KernelSpec) (string, error) {
	spec, err := k.Package()
	if err != nil {
		return "", err
	}
	return c.Package(ctx, spec)
}

// run runs a host program and returns its standard output; a failure
// carries the tail of its standard error. A missing program wraps
// ErrUnavailable.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s not found (see scripts/setup): %w", name, ErrUnavailable)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return out, fmt.Errorf("%s: %w: %s", name, err, msg)
		}
		return out, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
