package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// defaultBuildFile is the build file ocidisk build reads from the current
// directory when -f is not given.
const defaultBuildFile = "ocidisk.yaml"

// buildFile is ocidisk.yaml: the flags of ocidisk build, kept in a file
// under version control. Each key sets the flag of the same meaning;
// flags given on the command line win.
type buildFile struct {
	Board        string   `yaml:"board"`
	Platform     string   `yaml:"platform"`
	Source       string   `yaml:"source"`
	Kernel       string   `yaml:"kernel"`
	Firmware     string   `yaml:"firmware"`
	Overlays     []string `yaml:"overlays"`
	BootOverlays []string `yaml:"boot-overlays"`
	Cmdline      []string `yaml:"cmdline-append"`
	ConfigTxt    []string `yaml:"config-txt-append"`
	DTOverlays   []string `yaml:"dtoverlays"`
	Table        string   `yaml:"table"`
	Partitions   struct {
		Boot struct {
			Size string `yaml:"size"`
		} `yaml:"boot"`
		Root struct {
			Size string `yaml:"size"`
			FS   string `yaml:"fs"`
		} `yaml:"root"`
		AB   *bool `yaml:"ab"`
		Data struct {
			Size    string `yaml:"size"`
			Overlay string `yaml:"overlay"`
		} `yaml:"data"`
	} `yaml:"partitions"`
	Output struct {
		Path     string `yaml:"path"`
		Bmap     *bool  `yaml:"bmap"`
		Compress string `yaml:"compress"`
		KeepRaw  *bool  `yaml:"keep-raw"`
		// SlotImage is --slot-image, the root alone for an update.
		SlotImage string `yaml:"slot-image"`
	} `yaml:"output"`
}

// applyBuildFile reads the build file (name, or ./ocidisk.yaml when name
// is "" and it exists) and sets every flag the command line left unset
// from it. It returns the file's SOURCE, "" without a file.
func applyBuildFile(e *env, fs *pflag.FlagSet, name string) (string, error) {
	if name == "" {
		if _, err := os.Stat(defaultBuildFile); err != nil {
			return "", nil
		}
		name = defaultBuildFile
	} else if st, err := os.Stat(name); err == nil && st.IsDir() {
		name = filepath.Join(name, defaultBuildFile)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("build file: %w", err)
	}
	e.log.Info("using build file", "file", name)
	bf, err := parseBuildFile(name, data, os.LookupEnv)
	if err != nil {
		return "", err
	}
	bf.resolve(filepath.Dir(name))
	return bf.Source, bf.apply(name, fs)
}

var yamlUnknownKey = regexp.MustCompile(`field (\S+) not found in type \S+`)

// parseBuildFile decodes a build file strictly (unknown keys are errors
// with their line) and expands ${VAR} in its values with lookup.
func parseBuildFile(name string, data []byte, lookup func(string) (string, bool)) (*buildFile, error) {
	fail := func(err error) error {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		msg = yamlUnknownKey.ReplaceAllString(msg, "unknown key $1")
		return fmt.Errorf("build file %s: %s", name, strings.ReplaceAll(msg, "\n  ", "; "))
	}
	// Strict decoding checks the keys; values are expanded in the node
	// tree, which keeps their lines for errors, and decoded again.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var check buildFile
	if err := dec.Decode(&check); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("build file %s: empty", name)
		}
		return nil, fail(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fail(err)
	}
	if err := expandNode(&doc, lookup); err != nil {
		return nil, fmt.Errorf("build file %s: %w", name, err)
	}
	var bf buildFile
	if err := doc.Decode(&bf); err != nil {
		return nil, fail(err)
	}
	return &bf, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandNode replaces ${VAR} in every scalar; an unset variable is an
// error naming it and its line.
func expandNode(n *yaml.Node, lookup func(string) (string, bool)) error {
	if n.Kind == yaml.ScalarNode {
		var err error
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			v, ok := lookup(ref[2 : len(ref)-1])
			if !ok && err == nil {
				err = fmt.Errorf("line %d: %s is not set in the environment", n.Line, ref)
			}
			return v
		})
		return err
	}
	for _, c := range n.Content {
		if err := expandNode(c, lookup); err != nil {
			return err
		}
	}
	return nil
}

// resolve makes the file's paths relative to its directory: board files,
// the paths of TRANSPORT:PATH sources, overlays, @FILE config additions
// and the output.
func (bf *buildFile) resolve(dir string) {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if strings.Contains(bf.Board, "/") || strings.HasSuffix(bf.Board, ".yaml") || strings.HasSuffix(bf.Board, ".yml") {
		bf.Board = rel(bf.Board)
	}
	spec := func(s string) string {
		for _, t := range []string{"oci:", "oci-archive:", "docker-archive:", "tar:", "deb:", "dir:"} {
			if p, ok := strings.CutPrefix(s, t); ok {
				return t + rel(p)
			}
		}
		return s // a registry reference
	}
	bf.Source, bf.Kernel, bf.Firmware = spec(bf.Source), spec(bf.Kernel), spec(bf.Firmware)
	for i := range bf.Overlays {
		bf.Overlays[i] = rel(bf.Overlays[i])
	}
	for i := range bf.BootOverlays {
		bf.BootOverlays[i] = rel(bf.BootOverlays[i])
	}
	for i, c := range bf.ConfigTxt {
		if p, ok := strings.CutPrefix(c, "@"); ok {
			bf.ConfigTxt[i] = "@" + rel(p)
		}
	}
	bf.Output.Path = rel(bf.Output.Path)
	bf.Partitions.Data.Overlay = rel(bf.Partitions.Data.Overlay)
	bf.Output.SlotImage = rel(bf.Output.SlotImage)
}

// apply sets the flags the command line did not set.
func (bf *buildFile) apply(name string, fs *pflag.FlagSet) error {
	set := func(flag string, vals ...string) error {
		f := fs.Lookup(flag)
		if f == nil {
			return fmt.Errorf("build file %s: ocidisk build has no --%s", name, flag)
		}
		if f.Changed || len(vals) == 0 || len(vals) == 1 && vals[0] == "" {
			return nil
		}
		for _, v := range vals {
			if err := fs.Set(flag, v); err != nil {
				return usagef("build file %s: --%s %q: %v", name, flag, v, err)
			}
		}
		return nil
	}
	boolVal := func(b *bool) string {
		if b == nil {
			return ""
		}
		return strconv.FormatBool(*b)
	}
	for _, s := range []struct {
		flag string
		vals []string
	}{
		{"board", []string{bf.Board}},
		{"platform", []string{bf.Platform}},
		{"kernel", []string{bf.Kernel}},
		{"firmware", []string{bf.Firmware}},
		{"overlay", bf.Overlays},
		{"boot-overlay", bf.BootOverlays},
		{"cmdline-append", bf.Cmdline},
		{"config-txt-append", bf.ConfigTxt},
		{"dtoverlay", bf.DTOverlays},
		{"table", []string{bf.Table}},
		{"boot-size", []string{bf.Partitions.Boot.Size}},
		{"root-size", []string{bf.Partitions.Root.Size}},
		{"root-fs", []string{bf.Partitions.Root.FS}},
		{"ab", []string{boolVal(bf.Partitions.AB)}},
		{"data", []string{bf.Partitions.Data.Size}},
		{"data-overlay", []string{bf.Partitions.Data.Overlay}},
		{"slot-image", []string{bf.Output.SlotImage}},
		{"output", []string{bf.Output.Path}},
		{"bmap", []string{boolVal(bf.Output.Bmap)}},
		{"compress", []string{bf.Output.Compress}},
		{"keep-raw", []string{boolVal(bf.Output.KeepRaw)}},
	} {
		if err := set(s.flag, s.vals...); err != nil {
			return err
		}
	}
	return nil
}
