// Package fstree is the in-memory model of a filesystem tree that every
// ocidisk input becomes and every filesystem writer consumes.
//
// A Tree holds metadata only: names, types, modes, owners, times, xattrs,
// link targets and device numbers. File bytes stay where they are (in a
// layer blob, a host file, a package) and are reached through a Content
// reference, so memory grows with the number of entries, not their size.
//
// Hardlinks are modelled the way the kernel models them: one *Node (an
// inode) reachable from several directory entries. A writer that meets the
// same *Node twice writes one inode with a link count of Links().
package fstree

import (
	"fmt"
	"io/fs"
	"time"
)

// Type is the kind of a node.
type Type uint8

// The node types a Tree can hold. Their order is not meaningful.
const (
	TypeRegular Type = iota + 1
	TypeDir
	TypeSymlink
	TypeCharDev
	TypeBlockDev
	TypeFIFO
	TypeSocket
)

func (t Type) String() string {
	switch t {
	case TypeRegular:
		return "file"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	case TypeCharDev:
		return "char device"
	case TypeBlockDev:
		return "block device"
	case TypeFIFO:
		return "fifo"
	case TypeSocket:
		return "socket"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ModeMask selects the bits of Node.Mode: permissions plus setuid, setgid
// and sticky, in their Unix (not io/fs) positions.
const ModeMask = 0o7777

// Unix mode bits above the permission bits.
const (
	ModeSetuid = 0o4000
	ModeSetgid = 0o2000
	ModeSticky = 0o1000
)

// Node is one inode of the tree.
//
// A root filesystem has a million of them at the large end, so its size
// counts: the fields are ordered to leave no padding, and what few nodes
// have (access and change times) is kept apart.
type Node struct {
	Type Type
	// Mode holds permission, setuid, setgid and sticky bits (ModeMask).
	Mode     uint32
	UID, GID uint32
	// Major and Minor are a device node's numbers.
	Major, Minor uint32
	links        int32 // directory entries naming this node

	// Mtime is the modification time. Writers use it for the access and
	// change times too unless the source recorded those (Atime, Ctime).
	Mtime time.Time
	// Xattrs maps extended attribute names (e.g. "security.capability") to
	// their raw values.
	Xattrs map[string]string

	// Target is a symlink's target, kept exactly as written.
	Target string

	// Size is a regular file's length in bytes; Content yields exactly that
	// many bytes. Content may be nil when Size is 0.
	Size    int64
	Content Content

	entries map[string]*Node // directories only
	times   *times           // nil: no access or change time recorded
}

// times are a node's access and change times, when its source recorded
// them. A node's times are replaced, never changed in place, so that
// copies (CopyMeta) may share them.
type times struct{ atime, ctime time.Time }

// Atime is the access time the source recorded, or the zero time.
func (n *Node) Atime() time.Time {
	if n.times == nil {
		return time.Time{}
	}
	return n.times.atime
}

// Ctime is the inode change time the source recorded, or the zero time.
func (n *Node) Ctime() time.Time {
	if n.times == nil {
		return time.Time{}
	}
	return n.times.ctime
}

// SetTimes records the access and change times; zero times record none.
func (n *Node) SetTimes(atime, ctime time.Time) {
	if atime.IsZero() && ctime.IsZero() {
		n.times = nil
		return
	}
	n.times = &times{atime, ctime}
}

// NewDir returns an empty directory node.
func NewDir(mode uint32) *Node {
	return &Node{Type: TypeDir, Mode: mode & ModeMask, entries: map[string]*Node{}}
}

// NewFile returns a regular file node of the given size and content.
func NewFile(mode uint32, size int64, c Content) *Node {
	return &Node{Type: TypeRegular, Mode: mode & ModeMask, Size: size, Content: c}
}

// NewSymlink returns a symlink node pointing at target.
func NewSymlink(target string) *Node {
	return &Node{Type: TypeSymlink, Mode: 0o777, Target: target}
}

// NewDevice returns a char or block device, FIFO or socket node.
func NewDevice(t Type, mode uint32, major, minor uint32) *Node {
	return &Node{Type: t, Mode: mode & ModeMask, Major: major, Minor: minor}
}

// IsDir reports whether n is a directory.
func (n *Node) IsDir() bool { return n.Type == TypeDir }

// Links is the number of directory entries that name n in the tree it
// belongs to (names inside a directory that is not itself in a tree do not
// count). For a directory it is 1, its entry in the parent; writers add
// "." and ".." themselves. A node belongs to one tree: to put the same file
// into another tree, put a CopyMeta of it there, which shares the content.
func (n *Node) Links() int { return int(n.links) }

// FileMode returns n's type and permission bits as an io/fs FileMode.
func (n *Node) FileMode() fs.FileMode {
	m := fs.FileMode(n.Mode & 0o777)
	if n.Mode&ModeSetuid != 0 {
		m |= fs.ModeSetuid
	}
	if n.Mode&ModeSetgid != 0 {
		m |= fs.ModeSetgid
	}
	if n.Mode&ModeSticky != 0 {
		m |= fs.ModeSticky
	}
	switch n.Type {
	case TypeDir:
		m |= fs.ModeDir
	case TypeSymlink:
		m |= fs.ModeSymlink
	case TypeCharDev:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlockDev:
		m |= fs.ModeDevice
	case TypeFIFO:
		m |= fs.ModeNamedPipe
	case TypeSocket:
		m |= fs.ModeSocket
	}
	return m
}

// ModeBits returns the Mode bits of an io/fs FileMode: its permissions
// and its setuid, setgid and sticky bits in their Unix positions.
func ModeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= ModeSetuid
	}
	if m&fs.ModeSetgid != 0 {
		b |= ModeSetgid
	}
	if m&fs.ModeSticky != 0 {
		b |= ModeSticky
	}
	return b
}

// UnixMode returns the st_mode value: S_IF* type bits plus Mode.
func (n *Node) UnixMode() uint32 {
	var t uint32
	switch n.Type {
	case TypeRegular:
		t = 0o100000
	case TypeDir:
		t = 0o040000
	case TypeSymlink:
		t = 0o120000
	case TypeCharDev:
		t = 0o020000
	case TypeBlockDev:
		t = 0o060000
	case TypeFIFO:
		t = 0o010000
	case TypeSocket:
		t = 0o140000
	}
	return t | n.Mode&ModeMask
}

// Len returns the number of entries of a directory.
func (n *Node) Len() int { return len(n.entries) }

// Child returns the entry called name in directory n, or nil.
func (n *Node) Child(name string) *Node { return n.entries[name] }

// CopyMeta returns a shallow copy of n's metadata (not its entries or link
// count): the starting point for a node that replaces n.
func (n *Node) CopyMeta() *Node {
	c := *n
	c.entries = nil
	c.links = 0
	if n.Xattrs != nil {
		c.Xattrs = make(map[string]string, len(n.Xattrs))
		for k, v := range n.Xattrs {
			c.Xattrs[k] = v
		}
	}
	if n.Type == TypeDir {
		c.entries = map[string]*Node{}
	}
	return &c
}
