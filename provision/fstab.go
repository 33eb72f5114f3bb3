package provision

import (
	"fmt"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

const fstabPath = "etc/fstab"

// Mount is one line of /etc/fstab (fstab(5)).
type Mount struct {
	// Spec names the filesystem ("PARTUUID=1a2b3c4d-02").
	Spec string
	// Dir is the mount point, "/" for the root.
	Dir string
	// Type is the filesystem type as mount(8) names it (ext4, vfat).
	Type string
	// Options are the mount options; "" is "defaults".
	Options string
	// Pass is fsck's order: 1 for the root, 2 for others to check, 0 for
	// none.
	Pass int
	// Comment, when set, is a line of explanation written above the entry.
	Comment string
}

// Fstab is the /etc/fstab a build writes.
type Fstab struct {
	// Header are comment lines (without "#") written first.
	Header []string
	Mounts []Mount
}

// FstabResult says what became of /etc/fstab.
type FstabResult struct {
	// Written is set when the build wrote it: the root had none, or only
	// a placeholder without entries (Debian's "UNCONFIGURED FSTAB").
	Written bool
	// Root is set when the fstab the root ends with has an entry for /,
	// which systemd-remount-fs needs to make a root mounted read-only
	// for its check writable again.
	Root bool
}

// WriteFstab writes f to /etc/fstab unless the root has one with
// entries of its own, which are the root's author's to keep. The mount
// points of f are made (0755) in the root when missing, so that a
// read-only root has them too.
func WriteFstab(t *fstree.Tree, f Fstab, when time.Time) (FstabResult, error) {
	old, err := readFile(t, fstabPath)
	if err != nil {
		return FstabResult{}, err
	}
	if entries := fstabEntries(old); len(entries) > 0 {
		for _, e := range entries {
			if len(e) > 1 && e[1] == "/" {
				return FstabResult{Root: true}, nil
			}
		}
		return FstabResult{}, nil
	}
	res := FstabResult{Written: true}
	for _, m := range f.Mounts {
		if m.Dir == "/" {
			res.Root = true
			continue
		}
		if _, err := mkdir(t, m.Dir, owner{mode: 0o755}, when); err != nil {
			return FstabResult{}, fmt.Errorf("mount point for %s: %w", m.Spec, err)
		}
	}
	if err := writeFile(t, fstabPath, f.Render(), rootFile, when); err != nil {
		return FstabResult{}, err
	}
	return res, nil
}

// Render writes f in fstab(5)'s format, its columns aligned.
func (f Fstab) Render() []byte {
	rows := [][]string{{"# <file system>", "<mount point>", "<type>", "<options>", "<dump>", "<pass>"}}
	for _, m := range f.Mounts {
		opts := m.Options
		if opts == "" {
			opts = "defaults"
		}
		rows = append(rows, []string{m.Spec, m.Dir, m.Type, opts, "0", fmt.Sprint(m.Pass)})
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for _, h := range f.Header {
		b.WriteString(strings.TrimRight("# "+h, " ") + "\n")
	}
	for i, r := range rows {
		if i > 0 && f.Mounts[i-1].Comment != "" {
			b.WriteString("# " + f.Mounts[i-1].Comment + "\n")
		}
		var line strings.Builder
		for j, c := range r {
			line.WriteString(c)
			if j < len(r)-1 {
				line.WriteString(strings.Repeat(" ", width[j]-len(c)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return []byte(b.String())
}

// fstabEntries returns the fields of each entry of an fstab: its lines
// that are neither blank nor comments.
func fstabEntries(b []byte) [][]string {
	var out [][]string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, strings.Fields(l))
	}
	return out
}
