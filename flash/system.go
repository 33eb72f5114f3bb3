package flash

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// System is everything the safety rules know about the machine: the
// kernel's view of its block devices in /sys/block, what is mounted
// (/proc/self/mountinfo) and used as swap (/proc/swaps), and what a path
// the user named is. Host reads the real machine; tests give recorded
// snapshots of other machines.
type System interface {
	// ReadFile returns the content of a file under /sys or /proc.
	ReadFile(name string) ([]byte, error)
	// ReadDir returns the names in a directory under /sys; a missing
	// directory is an error satisfying errors.Is(err, fs.ErrNotExist).
	ReadDir(name string) ([]string, error)
	// Stat describes the file at a path, following symlinks.
	Stat(name string) (Node, error)
}

// NodeKind is what a path is.
type NodeKind int

const (
	KindOther NodeKind = iota
	KindBlock
	KindRegular
)

func (k NodeKind) String() string {
	switch k {
	case KindBlock:
		return "block device"
	case KindRegular:
		return "regular file"
	}
	return "neither a block device nor a regular file"
}

// Node is a path as stat(2) sees it.
type Node struct {
	Kind NodeKind
	// Dev is a block device's own number (st_rdev), or for other files
	// the number of the device holding them (st_dev).
	Dev DevNum
	// Size is a regular file's size.
	Size int64
}

// DevNum is a device number, major:minor.
type DevNum struct{ Major, Minor uint32 }

func (d DevNum) String() string { return fmt.Sprintf("%d:%d", d.Major, d.Minor) }

// ParseDevNum parses "8:16", the way sysfs and mountinfo spell device
// numbers.
func ParseDevNum(s string) (DevNum, error) {
	var d DevNum
	if _, err := fmt.Sscanf(s, "%d:%d", &d.Major, &d.Minor); err != nil {
		return d, fmt.Errorf("device number %q: %w", s, err)
	}
	return d, nil
}

// Host is the System of the machine ocidisk runs on.
type Host struct{}

func (Host) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (Host) ReadDir(name string) ([]string, error) {
	ents, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

func (Host) Stat(name string) (Node, error) {
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		return Node{}, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		return Node{Kind: KindBlock, Dev: DevNum{unix.Major(st.Rdev), unix.Minor(st.Rdev)}}, nil
	case unix.S_IFREG:
		return Node{Kind: KindRegular, Dev: DevNum{unix.Major(st.Dev), unix.Minor(st.Dev)}, Size: st.Size}, nil
	}
	return Node{Kind: KindOther, Dev: DevNum{unix.Major(st.Dev), unix.Minor(st.Dev)}}, nil
}
