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
	// links counts the directory entries naming this node, up to
	// manyLinks; from there the count is in more. 16 bits fit beside
	// Type and bring the node to 112 bytes, a size class below 128.
	links uint16
	// Mode holds permission, setuid, setgid and sticky bits (ModeMask).
	Mode     uint32
	UID, GID uint32
	// Major and Minor are a device node's numbers.
	Major, Minor uint32

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
	more    *more            // nil: no access or change time, few links
}

// more is what few nodes have: access and change times, when the source
// recorded them, and a link count of manyLinks or more. It is replaced,
// never changed in place, so that copies (CopyMeta) may share it.
type more struct {
	atime, ctime time.Time
	links        int // when Node.links is manyLinks
}

// manyLinks in Node.links says that the count is in more.
const manyLinks = 1<<16 - 1

// Atime is the access time the source recorded, or the zero time.
func (n *Node) Atime() time.Time {
	if n.more == nil {
		return time.Time{}
	}
	return n.more.atime
}

// Ctime is the inode change time the source recorded, or the zero time.
func (n *Node) Ctime() time.Time {
	if n.more == nil {
		return time.Time{}
	}
	return n.more.ctime
}

// SetTimes records the access and change times; zero times record none.
func (n *Node) SetTimes(atime, ctime time.Time) {
	m := more{atime: atime, ctime: ctime}
	if n.more != nil {
		m.links = n.more.links
	}
	n.setMore(m)
}

// setMore replaces n.more with m, or with nil when m holds nothing.
func (n *Node) setMore(m more) {
	if m.atime.IsZero() && m.ctime.IsZero() && n.links != manyLinks {
		n.more = nil
		return
	}
	n.more = &m
}

// addLinks changes n's link count by d.
func (n *Node) addLinks(d int) {
	c := n.Links() + d
	var m more
	if n.more != nil {
		m = *n.more
	}
	if c >= manyLinks {
		n.links, m.links = manyLinks, c
	} else {
		n.links, m.links = uint16(c), 0
	}
	if n.more != nil || c >= manyLinks {
		n.setMore(m)
	}
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
func (n *Node) Links() int {
	if n.links == manyLinks {
		return n.more.links
	}
	return int(n.links)
}

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
	if n.more != nil {
		c.more = nil
		c.SetTimes(n.more.atime, n.more.ctime)
	}
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
