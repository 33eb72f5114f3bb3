package qemu

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/ocidisk/ocidisk/boards"
)

// piBoot is what a Raspberry Pi's firmware loads, as the boot partition's
// config.txt tells it: paths on the boot partition.
type piBoot struct {
	Kernel    string
	Initramfs []string // concatenated, as the firmware does with a list
	DTB       string   // "" when the profile passes none
	Cmdline   string   // the command line file
	// Overlays are the dtoverlay= and dtparam= lines that apply: the
	// firmware would merge them into the device tree, QEMU cannot.
	Overlays []string
}

// modelFilterRE matches config.txt's model filters ([pi3], [pi0w], [cm4],
// [pi400] ...): all are one filter type, so each replaces the previous.
var modelFilterRE = regexp.MustCompile(`^(pi|cm)[0-9]`)

// configTxt reads config.txt from the boot partition as the Pi firmware of
// the profile's model would: conditional sections ([all], [none], model
// filters; other filters, which test hardware QEMU lacks, are false),
// include, and the keys that choose what to load (kernel, initramfs,
// ramfsfile, device_tree, cmdline, os_prefix, upstream_kernel).
func configTxt(boot fs.FS, pi *boards.PiFirmware) (*piBoot, error) {
	return readConfig(boot, pi, "config.txt", false)
}

// readConfig is configTxt reading name (config.txt, or tryboot.txt for a
// tryboot without tryboot_a_b), with the [tryboot] filter true when
// tryboot is.
func readConfig(boot fs.FS, pi *boards.PiFirmware, name string, tryboot bool) (*piBoot, error) {
	c := &configReader{boot: boot, filters: pi.Filters, set: map[string]string{}, tryboot: tryboot}
	if err := c.read(name, 0); err != nil {
		return nil, err
	}
	pb := &piBoot{Kernel: pi.Kernel, Cmdline: "cmdline.txt", Overlays: c.overlays}
	if k := c.set["kernel"]; k != "" {
		pb.Kernel = k
	}
	if v := c.set["cmdline"]; v != "" {
		pb.Cmdline = v
	}
	if c.initramfs != "" {
		pb.Initramfs = strings.Split(c.initramfs, ",")
	} else if v := c.set["ramfsfile"]; v != "" {
		pb.Initramfs = strings.Split(v, ",")
	}
	upstream := c.set["upstream_kernel"] == "1"
	dtbs := []string{pi.DTBDownstream}
	if upstream {
		// The upstream name first; without it, the firmware falls back to
		// the downstream one (and its "upstream" overlay).
		dtbs = []string{pi.DTB, pi.DTBDownstream}
	}
	if v, ok := c.set["device_tree"]; ok {
		dtbs = []string{v}
	}
	if pi.DTB == "" && pi.DTBDownstream == "" {
		dtbs = nil // a machine that describes itself (virt)
	}

	// os_prefix applies to the kernel, initramfs, command line and device
	// tree, and is dropped when the kernel is not there under it;
	// upstream_kernel=1 implies "upstream/".
	prefix, explicit := c.set["os_prefix"]
	if !explicit && upstream {
		prefix = "upstream/"
	}
	if prefix != "" && !exists(boot, prefix+pb.Kernel) {
		prefix = ""
	}
	pb.Kernel = prefix + pb.Kernel
	pb.Cmdline = prefix + pb.Cmdline
	for i, f := range pb.Initramfs {
		pb.Initramfs[i] = prefix + strings.TrimSpace(f)
	}
	for _, d := range dtbs {
		if d != "" && exists(boot, prefix+d) {
			pb.DTB = prefix + d
			break
		}
	}
	if len(dtbs) > 0 && pb.DTB == "" {
		return nil, fmt.Errorf("config.txt: the firmware would load device tree %s, which is not on the boot partition",
			strings.Join(slices.DeleteFunc(dtbs, func(s string) bool { return s == "" }), " or "))
	}
	return pb, nil
}

type configReader struct {
	boot      fs.FS
	filters   []string          // the model filters that apply
	state     map[string]bool   // filter type -> whether the last filter of that type applies
	set       map[string]string // the last value of each key
	initramfs string
	overlays  []string
	tryboot   bool // the tryboot flag is set: [tryboot] applies
}

func (c *configReader) read(name string, depth int) error {
	if depth > 8 {
		return fmt.Errorf("config.txt: include %s: includes nested too deep", name)
	}
	data, err := fs.ReadFile(c.boot, fsName(name))
	if err != nil {
		if depth == 0 && errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no %s on the boot partition", name)
		}
		return fmt.Errorf("config.txt: %s: %w", name, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			c.filter(strings.TrimSuffix(strings.TrimPrefix(line, "["), "]"))
			continue
		}
		if !c.applies() {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if f := strings.Fields(line); len(f) >= 2 && (f[0] == "initramfs" || f[0] == "include") {
			// "initramfs FILE followkernel" and "include FILE" take no '='.
			key, val, ok = f[0], f[1], true
		}
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "include":
			if err := c.read(val, depth+1); err != nil {
				return err
			}
		case "initramfs":
			c.initramfs = val
		case "dtoverlay", "dtparam":
			if val != "" {
				c.overlays = append(c.overlays, key+"="+val)
			}
		default:
			c.set[key] = val
		}
	}
	return sc.Err()
}

// filter applies a conditional section header.
func (c *configReader) filter(f string) {
	if c.state == nil {
		c.state = map[string]bool{}
	}
	switch {
	case f == "all":
		clear(c.state)
	case f == "none":
		c.state["none"] = false
	case modelFilterRE.MatchString(f):
		c.state["model"] = slices.Contains(c.filters, f)
	case strings.HasPrefix(f, "HDMI:"):
		// Scopes HDMI settings to one port; everything else still applies.
	case f == "tryboot":
		c.state["tryboot"] = c.tryboot
	default:
		// [EDID=...], [gpio4=1], [0x1234abcd], [board-type=...]:
		// conditions on hardware QEMU does not have.
		typ, _, _ := strings.Cut(f, "=")
		c.state[typ] = false
	}
}

func (c *configReader) applies() bool {
	for _, ok := range c.state {
		if !ok {
			return false
		}
	}
	return true
}

func exists(fsys fs.FS, name string) bool {
	st, err := fs.Stat(fsys, fsName(name))
	return err == nil && st.Mode().IsRegular()
}

// fsName turns a path on the boot partition as configs write it
// ("/Image", "overlays/x.dtbo") into an io/fs name.
func fsName(p string) string {
	return path.Clean("/" + p)[1:]
}
