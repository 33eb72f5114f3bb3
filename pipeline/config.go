package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/ocidisk/ocidisk/boards"
	"github.com/ocidisk/ocidisk/diskimage"
	"github.com/ocidisk/ocidisk/internal/compression"
	"github.com/ocidisk/ocidisk/internal/outfile"
	"github.com/ocidisk/ocidisk/provision"
	"github.com/ocidisk/ocidisk/source"
)

// ConfigError is a problem with one field of a Config, named as the Config
// names it ("DataOverlay", "Layout.Data"), so that a command line can say
// which of its options is wrong.
type ConfigError struct {
	Field string
	Err   error
	// Usage says the fields cannot go together whatever the inputs: a
	// command line's usage error.
	Usage bool
}

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Is makes a ConfigError with Usage match ErrUsage.
func (e *ConfigError) Is(target error) bool { return e.Usage && target == ErrUsage }

// ErrUsage matches (errors.Is) a ConfigError whose fields cannot go
// together whatever the inputs, such as a verified root on a writable
// filesystem.
var ErrUsage = errors.New("usage error")

func fieldErr(field, format string, a ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, a...)}
}

// Validate checks cfg before any work: what it names must make sense
// together. Errors are *ConfigError.
func (cfg Config) Validate() error {
	_, err := cfg.check()
	return err
}

// check validates cfg and lays out its disk.
func (cfg Config) check() (*boards.Layout, error) {
	if cfg.Board == nil {
		return nil, fieldErr("Board", "no board")
	}
	if cfg.Source == "" {
		return nil, fieldErr("Source", "no root image source")
	}
	if cfg.Output == "" && cfg.SlotImage == "" {
		return nil, fieldErr("Output", "no output: give an image path, a slot image path, or both")
	}
	for _, a := range cfg.CmdlineAppend {
		if err := CheckCmdlineArg(a); err != nil {
			return nil, &ConfigError{Field: "CmdlineAppend", Err: err}
		}
	}
	if err := cfg.checkAccess(); err != nil {
		return nil, err
	}
	if err := cfg.checkPlatform(); err != nil {
		return nil, err
	}
	l, err := cfg.Board.Layout(cfg.Layout)
	if err != nil {
		return nil, &ConfigError{Field: "Layout", Err: err}
	}
	if r := l.Root(); cfg.Verity && !r.FS.ReadOnly() {
		var ro []string
		for _, f := range boards.RootFilesystems() {
			if f.ReadOnly() {
				ro = append(ro, string(f))
			}
		}
		return nil, &ConfigError{Field: "Verity", Usage: true, Err: fmt.Errorf(
			"a verified root needs a read-only root filesystem (%s); the root is %s, which is mounted read-write", strings.Join(ro, " or "), r.FS)}
	}
	if cfg.DataOverlay != "" && l.Partition(boards.RoleData) == nil {
		return nil, fieldErr("DataOverlay", "%s: the layout has no data partition to copy it to", cfg.DataOverlay)
	}
	if err := cfg.checkFormat(); err != nil {
		return nil, err
	}
	if cfg.SlotImage != "" && cfg.SlotImage == cfg.Output {
		return nil, fieldErr("SlotImage", "%s is also the disk image's path", cfg.SlotImage)
	}
	if err := cfg.checkOutputs(); err != nil {
		return nil, err
	}
	return l, nil
}

// checkOutputs refuses, before any work, outputs that could not be
// written (a missing directory, a device node or symlink there) or that
// are one of the build's inputs, even through a symlink, or inside an
// input directory.
func (cfg Config) checkOutputs() error {
	inputs := []string{source.LocalPath(cfg.Source), source.LocalPath(cfg.Kernel), source.LocalPath(cfg.Firmware), cfg.DataOverlay}
	inputs = append(append(inputs, cfg.Overlays...), cfg.BootOverlays...)
	type output struct{ field, path string }
	var outputs []output
	if cfg.Output != "" {
		outputs = append(outputs, output{"Output", cfg.Output})
		if cfg.Bmap {
			outputs = append(outputs, output{"Bmap", cfg.Output + ".bmap"})
		}
		if f, err := compression.Parse(cfg.Compress); err == nil && f != compression.None {
			outputs = append(outputs, output{"Compress", cfg.Output + f.Ext()})
		}
	}
	if cfg.SlotImage != "" {
		outputs = append(outputs, output{"SlotImage", cfg.SlotImage}, output{"SlotImage", cfg.SlotImage + ".sha256"})
	}
	for _, o := range outputs {
		if err := outfile.Check(o.path); err != nil {
			return &ConfigError{Field: o.field, Err: err}
		}
		if err := outfile.Distinct(o.path, inputs...); err != nil {
			return &ConfigError{Field: o.field, Err: err}
		}
	}
	return nil
}

// checkAccess checks the host name, users, password hashes and key
// specifications; whether the users exist is known once the root is.
func (cfg Config) checkAccess() error {
	if cfg.Hostname != "" {
		if err := provision.CheckHostname(cfg.Hostname); err != nil {
			return &ConfigError{Field: "Hostname", Err: err}
		}
	}
	for _, u := range cfg.Users {
		if err := provision.CheckUserName(u); err != nil {
			return &ConfigError{Field: "Users", Err: err}
		}
	}
	for _, p := range cfg.PasswordHashes {
		if _, err := provision.ParsePassword(p); err != nil {
			return &ConfigError{Field: "PasswordHashes", Err: err}
		}
	}
	for _, k := range cfg.AuthorizedKeys {
		if _, _, err := provision.ParseUserFile(k); err != nil {
			return &ConfigError{Field: "AuthorizedKeys", Err: err}
		}
	}
	return nil
}

// checkPlatform refuses a platform whose architecture is not the
// board's: the kernel, the init and the root's binaries must all run on
// the board's CPU. (The variant may differ: an arm board runs v6 and v7.)
func (cfg Config) checkPlatform() error {
	p := cfg.Sources.Platform
	if p == "" {
		return nil
	}
	parts := strings.Split(p, "/")
	if len(parts) < 2 {
		return nil // source says what is wrong with it
	}
	if arch, want := parts[1], cfg.Board.Arch; arch != want {
		return fieldErr("Sources.Platform", "platform %s does not run on board %s, whose kernel and init are %s (use %s)",
			p, cfg.Board.Name, want, Platform(cfg.Board))
	}
	return nil
}

// checkFormat checks the image format and what goes with it: a block map
// and a compressed copy describe a raw image.
func (cfg Config) checkFormat() error {
	switch cfg.Format {
	case "", diskimage.FormatRaw:
		return nil
	case diskimage.FormatQcow2:
		if cfg.Bmap {
			return fieldErr("Bmap", "a block map describes a raw image, and the image is %s", cfg.Format)
		}
		if cfg.Compress != "" && cfg.Compress != "none" {
			return fieldErr("Compress", "compression is for a raw image; a %s image holds no holes already", cfg.Format)
		}
		return nil
	}
	return fieldErr("Format", "image format %q: want %s", cfg.Format, strings.Join(diskimage.Formats(), " or "))
}

// CheckCmdlineArg refuses a kernel argument that would not stay on the
// command line: boot configs (extlinux.conf, cmdline.txt) are line based,
// and a newline would start a directive of its own.
func CheckCmdlineArg(a string) error {
	if i := slices.IndexFunc([]rune(a), unicode.IsControl); i >= 0 {
		return fmt.Errorf("kernel argument %q has a control character (%U): a command line is one line", a, []rune(a)[i])
	}
	return nil
}

// IsConfigError reports whether err is about a field of the Config, and
// which.
func IsConfigError(err error) (field string, ok bool) {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce.Field, true
	}
	return "", false
}
