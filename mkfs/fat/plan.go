package fat

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// Directory entry attributes.
const (
	attrReadOnly = 0x01
	attrVolumeID = 0x08
	attrDir      = 0x10
	attrArchive  = 0x20
	attrLongName = 0x0f
)

// maxFileSize is the largest file FAT can hold: the size field is 32 bits.
const maxFileSize = 1<<32 - 1

// maxDirSlots is the most 32-byte entries a directory may have (Linux and
// Windows stop at 2 MiB of directory).
const maxDirSlots = 65536

// dirent is one name in a directory of the plan.
type dirent struct {
	name  string
	path  string       // in the tree, for messages
	node  *fstree.Node // a file or directory (symlinks already followed)
	short shortName
	dir   *dir // when node is a directory
	first uint32
	attr  byte
	time  time.Time
}

// dir is one directory of the plan.
type dir struct {
	path    string
	parent  *dir // nil for the root
	entries []*dirent
	slots   int // 32-byte entries, "." and ".." or the label included
	first   uint32
	time    time.Time
}

// plan is everything about a tree that does not depend on the geometry:
// names, aliases and sizes, in the order the data will be laid out.
type plan struct {
	root  *dir
	dirs  []*dir    // in layout order, the root first
	order []*dirent // files and subdirectories in layout order
	files int
	bytes int64  // content bytes
	hash  []byte // of names, sizes and times: the serial's fallback seed
}

// planner walks the tree once, checking every entry against FAT's limits.
type planner struct {
	t     *fstree.Tree
	opts  *Options
	log   *slog.Logger
	p     *plan
	stack []*fstree.Node // directories being planned, to catch symlink loops
	links map[*fstree.Node]string
	h     hash.Hash
}

func newPlan(t *fstree.Tree, opts *Options, log *slog.Logger) (*plan, error) {
	pl := &planner{t: t, opts: opts, log: log, p: &plan{}, links: map[*fstree.Node]string{}, h: sha256.New()}
	if err := pl.checkMeta("", t.Root); err != nil {
		return nil, err
	}
	root, err := pl.dir("", nil, t.Root)
	if err != nil {
		return nil, err
	}
	pl.p.root = root
	pl.p.hash = pl.h.Sum(nil)
	return pl.p, nil
}

func (pl *planner) dir(p string, parent *dir, n *fstree.Node) (*dir, error) {
	d := &dir{path: p, parent: parent, time: entryTime(n.Mtime, pl.opts.Time)}
	pl.p.dirs = append(pl.p.dirs, d)
	pl.stack = append(pl.stack, n)
	defer func() { pl.stack = pl.stack[:len(pl.stack)-1] }()

	es := n.Entries()
	names := make([]string, 0, len(es))
	kept := make([]*dirent, 0, len(es))
	folded := make(map[string]string, len(es))
	for _, e := range es {
		cp := path.Join(p, e.Name)
		if err := checkLongName(e.Name); err != nil {
			return nil, fmt.Errorf("/%s: %w", cp, err)
		}
		// FAT names are unique without regard to case: Windows and Linux
		// look them up so, find only one of two such names, and fsck
		// calls the second a duplicate.
		if other, ok := folded[foldName(e.Name)]; ok {
			return nil, fmt.Errorf("/%s and /%s: %w: FAT names must differ in more than case", path.Join(p, other), cp, errInvalidName)
		}
		folded[foldName(e.Name)] = e.Name
		node, err := pl.resolve(cp, e.Node)
		if err != nil {
			return nil, err
		}
		if node == nil {
			continue // skipped by an explicit option, and logged
		}
		names = append(names, e.Name)
		kept = append(kept, &dirent{name: e.Name, path: cp, node: node, time: entryTime(node.Mtime, pl.opts.Time)})
	}
	if parent == nil {
		if pl.opts.Label != "" {
			d.slots++
		}
	} else {
		d.slots += 2 // "." and ".."
	}
	for i, sn := range aliases(names) {
		de := kept[i]
		de.short = sn
		d.slots++
		if sn.long {
			d.slots += longSlots(de.name)
		}
	}
	if d.slots > maxDirSlots {
		return nil, fmt.Errorf("/%s: %d directory entries, FAT allows %d", p, d.slots, maxDirSlots)
	}
	d.entries = kept
	for _, de := range kept {
		fmt.Fprintf(pl.h, "%s\x00%d\x00%d\x00", de.path, de.node.Size, de.time.Unix())
		pl.p.order = append(pl.p.order, de)
		if de.node.Type == fstree.TypeDir {
			de.attr = attrDir
			sub, err := pl.dir(de.path, d, de.node)
			if err != nil {
				return nil, err
			}
			de.dir = sub
			continue
		}
		de.attr = attrArchive
		if de.node.Mode&0o200 == 0 {
			de.attr |= attrReadOnly
		}
		pl.p.files++
		pl.p.bytes += de.node.Size
	}
	return d, nil
}

// resolve returns the node to store for the entry at cp: n itself for files
// and directories, a symlink's target when following them, nil for entries
// an option says to skip. Everything else is an error naming the path.
func (pl *planner) resolve(cp string, n *fstree.Node) (*fstree.Node, error) {
	if err := pl.checkMeta(cp, n); err != nil {
		return nil, err
	}
	switch n.Type {
	case fstree.TypeRegular:
		if n.Size > maxFileSize {
			return nil, fmt.Errorf("/%s: %d bytes, FAT files hold at most %d", cp, n.Size, int64(maxFileSize))
		}
		if n.Links() > 1 {
			if first, ok := pl.links[n]; ok {
				pl.log.Debug("fat: hardlink stored as a copy", "path", "/"+cp, "of", "/"+first)
			} else {
				pl.links[n] = cp
			}
		}
		return n, nil
	case fstree.TypeDir:
		// A directory that is its own ancestor (a tree may put one node
		// under two names) would be planned forever.
		if slices.Contains(pl.stack, n) {
			return nil, fmt.Errorf("/%s: directory inside itself (a loop in the tree)", cp)
		}
		return n, nil
	case fstree.TypeSymlink:
		switch pl.opts.Symlinks {
		case SymlinkFollow:
			return pl.follow(cp, n)
		case SymlinkSkip:
			pl.log.Warn("fat: symlink left out", "path", "/"+cp, "target", n.Target)
			return nil, nil
		}
		return nil, fmt.Errorf("/%s: symlink to %q: FAT has no symlinks (follow or skip them explicitly)", cp, n.Target)
	}
	if pl.opts.SkipSpecial {
		pl.log.Warn("fat: special file left out", "path", "/"+cp, "type", n.Type.String())
		return nil, nil
	}
	return nil, fmt.Errorf("/%s: %s: FAT has no %ss (skip them explicitly)", cp, n.Type, n.Type)
}

// checkMeta refuses what FAT cannot record about an entry unless an option
// says to let it go.
func (pl *planner) checkMeta(cp string, n *fstree.Node) error {
	if (n.UID != 0 || n.GID != 0) && !pl.opts.IgnoreOwner {
		return fmt.Errorf("/%s: owned by %d:%d: FAT has no owners (ignore ownership explicitly)", cp, n.UID, n.GID)
	}
	if len(n.Xattrs) > 0 && !pl.opts.IgnoreXattrs {
		return fmt.Errorf("/%s: has extended attributes: FAT has none (ignore them explicitly)", cp)
	}
	return nil
}

// follow resolves the symlink at cp inside the tree, as if the tree were
// the root of the filesystem: absolute targets start at its root and ".."
// stops there. The result must be a file or a directory that is not one of
// the link's own ancestors.
func (pl *planner) follow(cp string, link *fstree.Node) (*fstree.Node, error) {
	n := link
	cur := cp
	for hops := 0; n.Type == fstree.TypeSymlink; hops++ {
		if hops == 40 {
			return nil, fmt.Errorf("/%s: too many levels of symlinks", cp)
		}
		target := n.Target
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(cur), target)
		}
		// Clean treats "/.." as the root, the chroot rule.
		clean, err := fstree.Clean(path.Clean("/" + target))
		if err != nil {
			return nil, fmt.Errorf("/%s: symlink to %q: %w", cp, link.Target, err)
		}
		next, err := pl.lookup(clean)
		if err != nil {
			return nil, fmt.Errorf("/%s: symlink to %q: %w", cp, link.Target, err)
		}
		n, cur = next, clean
	}
	if err := pl.checkMeta(cp, n); err != nil {
		return nil, err
	}
	switch n.Type {
	case fstree.TypeRegular:
		if n.Size > maxFileSize {
			return nil, fmt.Errorf("/%s: symlink to %q: %d bytes, FAT files hold at most %d", cp, link.Target, n.Size, int64(maxFileSize))
		}
		return n, nil
	case fstree.TypeDir:
		for _, a := range pl.stack {
			if a == n {
				return nil, fmt.Errorf("/%s: symlink to %q: a loop (it points at its own ancestor)", cp, link.Target)
			}
		}
		return n, nil
	}
	return nil, fmt.Errorf("/%s: symlink to %q: a %s, which FAT cannot hold", cp, link.Target, n.Type)
}

// lookup finds a cleaned path, following symlinks in its directories.
func (pl *planner) lookup(clean string) (*fstree.Node, error) {
	n := pl.t.Root
	done := ""
	for _, part := range fstree.Split(clean) {
		for hops := 0; n.Type == fstree.TypeSymlink; hops++ {
			if hops == 40 {
				return nil, fmt.Errorf("/%s: too many levels of symlinks", done)
			}
			t := n.Target
			if !strings.HasPrefix(t, "/") {
				t = path.Join(path.Dir("/"+done), t)
			}
			c, err := fstree.Clean(path.Clean("/" + t))
			if err != nil {
				return nil, err
			}
			if n, err = pl.lookup(c); err != nil {
				return nil, err
			}
			done = c
		}
		if n.Type != fstree.TypeDir {
			return nil, fmt.Errorf("/%s: %w", done, fstree.ErrNotDir)
		}
		if n = n.Child(part); n == nil {
			return nil, fmt.Errorf("/%s: %w", path.Join(done, part), fstree.ErrNotExist)
		}
		done = path.Join(done, part)
	}
	return n, nil
}

// clustersFor is how many clusters of size cs the plan needs, the root
// directory included only for FAT32 (FAT16 has a fixed root region).
func (p *plan) clustersFor(cs int64, bits int) int64 {
	var n int64
	for i, d := range p.dirs {
		if i == 0 && bits != 32 {
			continue
		}
		n += max(1, (int64(d.slots)*32+cs-1)/cs)
	}
	for _, de := range p.order {
		if de.dir == nil {
			n += (de.node.Size + cs - 1) / cs
		}
	}
	return n
}

// serial is the volume serial: Options.Serial, or derived from the seed,
// or from the plan's names, sizes and times.
func (p *plan) serial(opts *Options) uint32 {
	if opts.Serial != 0 {
		return opts.Serial
	}
	seed := opts.Seed
	if seed == nil {
		seed = p.hash
	}
	sum := sha256.Sum256(append([]byte("ocidisk mkfs/fat serial\x00"), seed...))
	return binary.LittleEndian.Uint32(sum[:4])
}
