package inspect

import (
	"cmp"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/inspect/internal/rofs"
)

// Entry is one line of a listing.
type Entry struct {
	Name string `json:"name"`
	// Type is file, dir, symlink, char, block, fifo or socket.
	Type string `json:"type"`
	// Mode is the permission bits in octal, with setuid, setgid and
	// sticky ("4755").
	Mode   string    `json:"mode"`
	Size   int64     `json:"size"`
	UID    uint32    `json:"uid"`
	GID    uint32    `json:"gid"`
	Links  uint32    `json:"links"`
	Mtime  time.Time `json:"mtime"`
	Target string    `json:"target,omitempty"`
	// Major and Minor are a device node's numbers.
	Major  uint32   `json:"major,omitempty"`
	Minor  uint32   `json:"minor,omitempty"`
	Xattrs []string `json:"xattrs,omitempty"`

	mode fs.FileMode
}

// Listing is a directory (or a single file) of a partition.
type Listing struct {
	Partition int     `json:"partition"`
	Path      string  `json:"path"`
	Entries   []Entry `json:"entries"`
}

// List lists spec, which names a partition and a path in it:
//
//	/etc          the root partition
//	root:/etc     the same
//	boot:/        the boot partition
//	2:/usr/lib    partition 2
//	BOOT:/        a partition by GPT name or filesystem label
//
// A directory lists its entries, anything else itself. A symlink is
// listed as the link unless the path ends in "/", as ls does.
func (im *Image) List(spec string) (*Listing, error) {
	p, dir, err := im.resolveSpec(spec)
	if err != nil {
		return nil, err
	}
	if p.FS == nil {
		why := "holds no filesystem ocidisk can read (" + p.Kind + ")"
		if p.FSErr != nil {
			why = p.FSErr.Error()
		}
		return nil, fmt.Errorf("%s: partition %d %s", im.Path, p.Number, why)
	}
	follow := strings.HasSuffix(dir, "/")
	name := strings.Trim(path.Clean("/"+dir), "/")
	if name == "" {
		name = "."
	}
	l := &Listing{Partition: p.Number, Path: "/" + strings.TrimPrefix(name, "."), Entries: []Entry{}}
	fail := func(err error) error {
		return fmt.Errorf("%s: partition %d: %s: %w", im.Path, p.Number, l.Path, unwrapPath(err))
	}
	var info fs.FileInfo
	if follow {
		info, err = fs.Stat(p.FS, name)
	} else {
		info, err = fs.Lstat(p.FS, name)
	}
	if err != nil {
		return nil, fail(err)
	}
	if !info.IsDir() {
		l.Entries = append(l.Entries, entry(info))
		return l, nil
	}
	ents, err := p.FS.ReadDir(name)
	if err != nil {
		return nil, fail(err)
	}
	for _, d := range ents {
		info, err := d.Info()
		if err != nil {
			return nil, fail(err)
		}
		l.Entries = append(l.Entries, entry(info))
	}
	return l, nil
}

// Open opens the regular file spec names (as List takes it: PART:/PATH or
// /PATH), following symlinks, for reading its bytes.
func (im *Image) Open(spec string) (fs.File, error) {
	p, dir, err := im.resolveSpec(spec)
	if err != nil {
		return nil, err
	}
	name := strings.Trim(path.Clean("/"+dir), "/")
	if p.FS == nil {
		return nil, fmt.Errorf("%s: partition %d holds no filesystem ocidisk can read (%s)", im.Path, p.Number, p.Kind)
	}
	fail := func(err error) error {
		return fmt.Errorf("%s: partition %d: /%s: %w", im.Path, p.Number, name, unwrapPath(err))
	}
	info, err := fs.Stat(p.FS, cmp.Or(name, "."))
	if err != nil {
		return nil, fail(err)
	}
	if !info.Mode().IsRegular() {
		return nil, fail(fmt.Errorf("not a regular file (%s)", entry(info).Type))
	}
	f, err := p.FS.Open(name)
	if err != nil {
		return nil, fail(err)
	}
	return f, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

func entry(info fs.FileInfo) Entry {
	m := info.Mode()
	e := Entry{Name: info.Name(), Size: info.Size(), Mtime: info.ModTime(), mode: m, Links: 1}
	perm := uint32(m.Perm())
	for _, b := range []struct {
		f fs.FileMode
		u uint32
	}{{fs.ModeSetuid, 0o4000}, {fs.ModeSetgid, 0o2000}, {fs.ModeSticky, 0o1000}} {
		if m&b.f != 0 {
			perm |= b.u
		}
	}
	e.Mode = fmt.Sprintf("%04o", perm)
	switch {
	case m.IsDir():
		e.Type = "dir"
	case m&fs.ModeSymlink != 0:
		e.Type = "symlink"
	case m&fs.ModeCharDevice != 0:
		e.Type = "char"
	case m&fs.ModeDevice != 0:
		e.Type = "block"
	case m&fs.ModeNamedPipe != 0:
		e.Type = "fifo"
	case m&fs.ModeSocket != 0:
		e.Type = "socket"
	default:
		e.Type = "file"
	}
	if st, ok := info.Sys().(*rofs.Stat); ok && st != nil {
		e.UID, e.GID, e.Links, e.Target = st.UID, st.GID, st.Nlink, st.Target
		e.Major, e.Minor = st.Major, st.Minor
		for k := range st.Xattrs {
			e.Xattrs = append(e.Xattrs, k)
		}
		slices.Sort(e.Xattrs)
	}
	return e
}

// LsMode is the mode as ls -l shows it: "drwxr-xr-x", "-rwsr-xr-x".
func (e Entry) LsMode() string {
	m := e.mode
	b := []byte("-rwxrwxrwx")
	switch e.Type {
	case "dir":
		b[0] = 'd'
	case "symlink":
		b[0] = 'l'
	case "char":
		b[0] = 'c'
	case "block":
		b[0] = 'b'
	case "fifo":
		b[0] = 'p'
	case "socket":
		b[0] = 's'
	}
	for i := range 9 {
		if m&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(i int, set bool, on, off byte) {
		if set {
			if b[i] == '-' {
				b[i] = off
			} else {
				b[i] = on
			}
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}

// resolveSpec finds the partition and path a listing spec names.
func (im *Image) resolveSpec(spec string) (*Part, string, error) {
	sel, dir := "root", spec
	if !strings.HasPrefix(spec, "/") {
		var ok bool
		sel, dir, ok = strings.Cut(spec, ":")
		if !ok {
			return nil, "", fmt.Errorf("path %q: want /PATH (root partition) or PART:/PATH, PART being boot, root, a number, a GPT name or a label", spec)
		}
		if dir == "" {
			dir = "/"
		}
	}
	if len(im.Parts) == 1 && im.Table == nil {
		return im.Parts[0], dir, nil // a bare filesystem: every name means it
	}
	n, numErr := strconv.Atoi(sel)
	for _, test := range []func(p *Part) bool{
		func(p *Part) bool { return numErr == nil && p.Number == n },
		// A role names the active slot's partition first.
		func(p *Part) bool { return p.Role == sel && (p.Slot == "" || p.Slot == im.Layout.Active) },
		func(p *Part) bool { return p.Role == sel },
		func(p *Part) bool { return p.Name != "" && p.Name == sel },
		func(p *Part) bool { return p.FS != nil && p.FS.Label() != "" && strings.EqualFold(p.FS.Label(), sel) },
	} {
		for _, p := range im.Parts {
			if test(p) {
				return p, dir, nil
			}
		}
	}
	var have []string
	for _, p := range im.Parts {
		s := strconv.Itoa(p.Number)
		if p.Role != "" {
			s += " (" + p.Role + ")"
		}
		have = append(have, s)
	}
	return nil, "", fmt.Errorf("%s: no partition %q (partitions: %s)", im.Path, sel, strings.Join(have, ", "))
}
