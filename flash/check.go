package flash

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// DefaultMaxSize is the largest disk written without Policy.Force: SD
// cards and USB sticks are smaller, the disks of a computer larger.
const DefaultMaxSize = 256 << 30

// Policy is what the user allowed.
type Policy struct {
	// MaxSize is the largest disk written without Force; 0 means
	// DefaultMaxSize.
	MaxSize int64
	// Force writes disks that are not removable or larger than MaxSize.
	// It never overrides the other rules.
	Force bool
	// AllowFile lets the target be a regular file.
	AllowFile bool
	// ImageSize is the size of the image: a smaller disk is refused.
	ImageSize int64
}

// Target is a checked target.
type Target struct {
	Path string
	// File is true for a regular file (Policy.AllowFile), Disk set for a
	// block device.
	File bool
	Disk *Disk
}

// RefusedError says why a target may not be written.
type RefusedError struct {
	Path    string
	Reasons []string
	// Forcible is true when Policy.Force would override every reason.
	Forcible bool
}

func (e *RefusedError) Error() string {
	s := fmt.Sprintf("refusing to write %s: %s", e.Path, strings.Join(e.Reasons, "; "))
	if e.Forcible {
		s += " (--force overrides this)"
	}
	return s
}

// Check applies the safety rules to the target at path, as sys sees the
// machine, and returns what the target is or a *RefusedError. The rules:
// a block device must be a whole disk with a medium, not hold the root
// filesystem (through partitions, RAID or device-mapper), have nothing
// mounted, used as swap or stacked on it, and be big enough for the
// image; without Force it must also be removable and at most MaxSize. A
// regular file needs AllowFile.
func Check(sys System, target string, p Policy) (*Target, error) {
	if p.MaxSize == 0 {
		p.MaxSize = DefaultMaxSize
	}
	refuse := func(forcible bool, reasons ...string) error {
		return &RefusedError{Path: target, Reasons: reasons, Forcible: forcible}
	}
	n, err := sys.Stat(target)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", target, err)
	}
	switch n.Kind {
	case KindRegular:
		if !p.AllowFile {
			return nil, refuse(false, "it is a regular file, not a block device (--allow-file writes to a file)")
		}
		return &Target{Path: target, File: true}, nil
	case KindBlock:
	default:
		return nil, refuse(false, "it is "+n.Kind.String())
	}

	v, err := readBlockView(sys)
	if err != nil {
		return nil, fmt.Errorf("reading the machine's block devices: %w", err)
	}
	name, ok := v.byDev[n.Dev]
	if !ok {
		return nil, refuse(false, fmt.Sprintf("block device %s is not listed in /sys/block", n.Dev))
	}
	if disk, ok := v.parent[name]; ok {
		return nil, refuse(false, fmt.Sprintf("it is partition %s of disk %s: give the whole disk, /dev/%s", name, disk, disk))
	}
	d := v.disks[name]
	t := &Target{Path: target, Disk: d}

	var hard, soft []string
	if d.Size == 0 {
		hard = append(hard, "it has no medium (size 0): is the card inserted?")
	}
	roots, err := rootDevices(v)
	if err != nil {
		return nil, err
	}
	if slices.Contains(roots, name) {
		hard = append(hard, fmt.Sprintf("%s holds the root filesystem /", name))
	}
	hard = append(hard, inUse(v, name)...)
	if p.ImageSize > d.Size && d.Size > 0 {
		hard = append(hard, fmt.Sprintf("the image (%s) is larger than the disk (%s)", Size(p.ImageSize), Size(d.Size)))
	}
	if len(hard) > 0 {
		return t, refuse(false, hard...)
	}
	if !d.Removable {
		soft = append(soft, fmt.Sprintf("%s is not a removable disk", describe(d)))
	}
	if d.Size > p.MaxSize {
		soft = append(soft, fmt.Sprintf("%s is larger than --max-size %s", describe(d), Size(p.MaxSize)))
	}
	if len(soft) > 0 && !p.Force {
		return t, refuse(true, soft...)
	}
	return t, nil
}

func describe(d *Disk) string {
	if d.Model == "" {
		return fmt.Sprintf("%s (%s)", d.Name, Size(d.Size))
	}
	return fmt.Sprintf("%s (%s, %s)", d.Name, d.Model, Size(d.Size))
}

// inUse lists what the kernel uses of disk: mounts, swap and devices
// stacked on it (RAID members, device-mapper, LUKS).
func inUse(v *blockView, disk string) []string {
	stack := v.stackedOn(disk)
	var out []string
	ms := v.mounts()
	for _, m := range ms {
		if dev, ok := v.mountDev(m, ms, 0); ok && slices.Contains(stack, dev) {
			out = append(out, fmt.Sprintf("%s is mounted at %s", v.label(dev), m.point))
		}
	}
	swaps, _ := v.sys.ReadFile("/proc/swaps")
	for _, s := range parseSwaps(swaps) {
		if n, err := v.sys.Stat(s); err == nil && n.Kind == KindBlock && slices.Contains(stack, v.byDev[n.Dev]) {
			out = append(out, fmt.Sprintf("%s is in use as swap", v.label(v.byDev[n.Dev])))
		}
	}
	for _, s := range stack {
		for _, h := range v.holders[s] {
			out = append(out, fmt.Sprintf("%s is in use by %s", s, v.label(h)))
		}
	}
	return dedup(out)
}

func dedup(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// label names a device with its device-mapper or RAID name when it has
// one: "dm-1 (vg0-root)".
func (v *blockView) label(name string) string {
	if dm := strings.TrimSpace(v.read("/sys/block/" + name + "/dm/name")); dm != "" {
		return fmt.Sprintf("%s (%s)", name, dm)
	}
	return name
}

func (v *blockView) mounts() []mount {
	b, _ := v.sys.ReadFile("/proc/self/mountinfo")
	return parseMountinfo(b)
}

// mountDev returns the block device a mount lives on. Filesystems with an
// anonymous device number (btrfs, overlay) are traced through their source
// device or, for overlayfs, through the mount holding the upper (or lower)
// directory.
func (v *blockView) mountDev(m mount, ms []mount, depth int) (string, bool) {
	if m.dev.Major != 0 {
		name, ok := v.byDev[m.dev]
		return name, ok
	}
	if strings.HasPrefix(m.source, "/dev/") {
		if n, err := v.sys.Stat(m.source); err == nil && n.Kind == KindBlock {
			name, ok := v.byDev[n.Dev]
			return name, ok
		}
	}
	if m.fstype != "overlay" || depth > 8 {
		return "", false
	}
	var dir string
	for _, o := range strings.Split(m.superOpts, ",") {
		if k, val, _ := strings.Cut(o, "="); k == "upperdir" || k == "lowerdir" && dir == "" {
			dir, _, _ = strings.Cut(val, ":")
		}
	}
	if dir == "" {
		return "", false
	}
	if under := mountOf(ms, dir); under != nil {
		return v.mountDev(*under, ms, depth+1)
	}
	return "", false
}

// mountOf returns the mount that holds path: the last one mounted at the
// longest prefix of it.
func mountOf(ms []mount, p string) *mount {
	var best *mount
	p = path.Clean(p)
	for i := range ms {
		mp := ms[i].point
		if p == mp || mp == "/" || strings.HasPrefix(p, mp+"/") {
			if best == nil || len(mp) >= len(best.point) {
				best = &ms[i]
			}
		}
	}
	return best
}

// RootDisks returns the names of the whole disks holding the root
// filesystem, through partitions, RAID and device-mapper. It is empty
// when / is not on a block device (a network or memory filesystem).
func RootDisks(sys System) ([]string, error) {
	v, err := readBlockView(sys)
	if err != nil {
		return nil, fmt.Errorf("reading the machine's block devices: %w", err)
	}
	return rootDisks(v)
}

func rootDisks(v *blockView) ([]string, error) {
	devs, err := rootDevices(v)
	if err != nil || len(devs) == 0 {
		return nil, err
	}
	return v.disksUnder(devs[0]), nil
}

// rootDevices returns the device holding / and every device under it.
func rootDevices(v *blockView) ([]string, error) {
	ms := v.mounts()
	if len(ms) == 0 {
		return nil, fmt.Errorf("no mounts in /proc/self/mountinfo: cannot tell which disk holds /")
	}
	root := mountOf(ms, "/")
	if root == nil {
		return nil, nil
	}
	name, ok := v.mountDev(*root, ms, 0)
	if !ok {
		return nil, nil
	}
	return v.under(name), nil
}

// Size formats a byte count in binary units.
type Size int64

func (s Size) String() string {
	f := float64(s)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 || u == "TiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", int64(s))
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}
