package flash

import (
	"bufio"
	"bytes"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Disk is a whole disk as the kernel lists it in /sys/block.
type Disk struct {
	// Name is the kernel's name (sdb, mmcblk0, nvme0n1).
	Name string
	Dev  DevNum
	// Model is the model the device reports, "" if none.
	Model string
	// Size is in bytes.
	Size int64
	// Removable is true for media the kernel marks removable (USB sticks,
	// card readers) and for SD cards, which Linux's mmc driver does not
	// mark.
	Removable  bool
	Partitions []Part
	// Holders are the devices stacked on the disk itself (a RAID or
	// device-mapper device).
	Holders []string
	Slaves  []string
}

// Part is one partition of a Disk.
type Part struct {
	Name    string
	Dev     DevNum
	Size    int64
	Holders []string
}

// blockView is /sys/block read once.
type blockView struct {
	sys   System
	disks map[string]*Disk
	byDev map[DevNum]string // a disk's or a partition's name
	// parent maps a partition's name to its disk's.
	parent  map[string]string
	holders map[string][]string
	slaves  map[string][]string
}

func readBlockView(sys System) (*blockView, error) {
	names, err := sys.ReadDir("/sys/block")
	if err != nil {
		return nil, err
	}
	v := &blockView{sys: sys, disks: map[string]*Disk{}, byDev: map[DevNum]string{},
		parent: map[string]string{}, holders: map[string][]string{}, slaves: map[string][]string{}}
	for _, name := range names {
		dir := path.Join("/sys/block", name)
		d := &Disk{Name: name}
		if d.Dev, err = v.dev(dir); err != nil {
			continue // not a block device directory after all
		}
		d.Size = v.sectors(dir)
		d.Removable = v.read(dir+"/removable") == "1" || v.read(dir+"/device/type") == "SD"
		for _, f := range []string{"device/model", "device/name", "device/vendor"} {
			if d.Model = v.read(dir + "/" + f); d.Model != "" {
				break
			}
		}
		d.Holders = v.list(dir + "/holders")
		d.Slaves = v.list(dir + "/slaves")
		v.holders[name], v.slaves[name] = d.Holders, d.Slaves
		v.disks[name] = d
		v.byDev[d.Dev] = name
		ents, _ := sys.ReadDir(dir)
		slices.Sort(ents)
		for _, e := range ents {
			pdir := dir + "/" + e
			if !strings.HasPrefix(e, name) || v.read(pdir+"/partition") == "" {
				continue
			}
			p := Part{Name: e, Size: v.sectors(pdir), Holders: v.list(pdir + "/holders")}
			if p.Dev, err = v.dev(pdir); err != nil {
				continue
			}
			d.Partitions = append(d.Partitions, p)
			v.byDev[p.Dev] = e
			v.parent[e] = name
			v.holders[e] = p.Holders
		}
	}
	return v, nil
}

func (v *blockView) read(name string) string {
	b, err := v.sys.ReadFile(name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (v *blockView) list(dir string) []string {
	names, _ := v.sys.ReadDir(dir)
	slices.Sort(names)
	return names
}

func (v *blockView) dev(dir string) (DevNum, error) { return ParseDevNum(v.read(dir + "/dev")) }

// sectors reads a size file, which counts 512-byte sectors whatever the
// device's logical block size.
func (v *blockView) sectors(dir string) int64 {
	n, _ := strconv.ParseInt(v.read(dir+"/size"), 10, 64)
	return n * 512
}

// disksUnder returns the whole disks a device is made of: itself if it is
// a disk, its disk if it is a partition, and for RAID and device-mapper
// devices the disks under their slaves.
func (v *blockView) disksUnder(name string) []string {
	var out []string
	for _, n := range v.under(name) {
		if _, part := v.parent[n]; !part && len(v.slaves[n]) == 0 {
			out = append(out, n)
		}
	}
	return out
}

// under returns name and every device it is built on, down to the disks.
func (v *blockView) under(name string) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
		if p, ok := v.parent[n]; ok {
			walk(p)
		}
		for _, s := range v.slaves[n] {
			walk(s)
		}
	}
	walk(name)
	slices.Sort(out)
	return out
}

// stackedOn returns every device built on name: its partitions, and
// recursively their holders and the holders' holders.
func (v *blockView) stackedOn(name string) []string {
	out := []string{name}
	seen := map[string]bool{name: true}
	for i := 0; i < len(out); i++ {
		next := v.holders[out[i]]
		if d := v.disks[out[i]]; d != nil {
			for _, p := range d.Partitions {
				next = append(next, p.Name)
			}
		}
		for _, n := range next {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	dev       DevNum
	point     string
	fstype    string
	source    string
	superOpts string
}

func parseMountinfo(b []byte) []mount {
	var ms []mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if len(f) < 5 || sep < 0 || len(f) < sep+3 {
			continue
		}
		dev, err := ParseDevNum(f[2])
		if err != nil {
			continue
		}
		m := mount{dev: dev, point: unescape(f[4]), fstype: f[sep+1], source: unescape(f[sep+2])}
		if len(f) > sep+3 {
			m.superOpts = f[sep+3]
		}
		ms = append(ms, m)
	}
	return ms
}

// unescape undoes the octal escapes (\040 for a space) of mountinfo and
// /proc/swaps.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// swaps returns the paths in /proc/swaps.
func parseSwaps(b []byte) []string {
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 {
			out = append(out, unescape(f[0]))
		}
	}
	return out
}
