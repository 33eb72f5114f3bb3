// Package randtree generates seeded random fstree.Trees for property tests
// and fuzzing of the filesystem writers.
//
// The same seed and Options always give the same tree. Every entry kind a
// filesystem may have to store appears: empty, small, big and sparse files,
// deep and wide directories, short and long symlinks, hardlink groups,
// char and block devices with large numbers, FIFOs, sockets, xattrs in
// several namespaces (security.capability among them, some with big values),
// setuid/setgid/sticky modes, 32-bit owners, nanosecond times and names up
// to 255 bytes, non-ASCII ones included. Options take kinds and features
// away for formats that cannot store them (a FAT writer wants only files and
// directories, FAT-valid names, no owners).
//
// File bytes are never held in memory: each file's Content regenerates them
// from a seed.
package randtree

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// Options restrict the generated trees. The zero value allows everything.
type Options struct {
	// Entries is the number of names to create besides the root (default
	// 100). Hardlinks count as names.
	Entries int
	// MaxDepth bounds directory nesting (default 12).
	MaxDepth int
	// MaxFileSize bounds regular file sizes (default 1 MiB). A few files
	// are "big" (a good part of this), most are small or empty.
	MaxFileSize int64
	// Types lists the node types to create; nil means all of them.
	// Directories are always allowed.
	Types []fstree.Type
	// NoHardlinks, NoXattrs, NoOwners (everything 0:0) and NoSpecialModes
	// (no setuid, setgid or sticky bits) take those features away.
	NoHardlinks, NoXattrs, NoOwners, NoSpecialModes bool
	// NoSparse gives every file pseudo-random bytes without zero runs.
	NoSparse bool
	// MaxNameLen bounds name length in bytes (default 255).
	MaxNameLen int
	// ASCII restricts names to letters, digits and " -_.+~".
	ASCII bool
	// ValidName, when set, rejects generated names (the generator draws
	// again).
	ValidName func(name string) bool
	// NameKey, when set, maps a name to the key that must be unique within
	// a directory, e.g. strings.ToUpper for a case-insensitive format.
	NameKey func(name string) string
	// MaxXattrBytes bounds the sum of xattr name and value lengths per node
	// (default 2048, which fits one ext4 xattr block).
	MaxXattrBytes int
	// MinTime and MaxTime bound the times (default 1970 to 2105, which
	// every format here can store in seconds); TimeGranularity truncates
	// them (default 1ns).
	MinTime, MaxTime time.Time
	TimeGranularity  time.Duration
	// MtimeOnly leaves Atime and Ctime zero; otherwise some nodes get them.
	MtimeOnly bool
	// MaxSymlinkLen bounds symlink targets (default 1000 bytes).
	MaxSymlinkLen int
}

func (o Options) withDefaults() Options {
	if o.Entries <= 0 {
		o.Entries = 100
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 12
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 1 << 20
	}
	if o.Types == nil {
		o.Types = []fstree.Type{fstree.TypeRegular, fstree.TypeDir, fstree.TypeSymlink,
			fstree.TypeCharDev, fstree.TypeBlockDev, fstree.TypeFIFO, fstree.TypeSocket}
	}
	if o.MaxNameLen <= 0 || o.MaxNameLen > 255 {
		o.MaxNameLen = 255
	}
	if o.MaxXattrBytes <= 0 {
		o.MaxXattrBytes = 2048
	}
	if o.MinTime.IsZero() {
		o.MinTime = time.Unix(0, 0)
	}
	if o.MaxTime.IsZero() {
		o.MaxTime = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	if o.TimeGranularity <= 0 {
		o.TimeGranularity = time.Nanosecond
	}
	if o.MaxSymlinkLen <= 0 {
		o.MaxSymlinkLen = 1000
	}
	return o
}

// New returns the tree for seed under opts.
func New(seed uint64, opts Options) *fstree.Tree {
	g := &gen{opts: opts.withDefaults(), r: rand.New(rand.NewPCG(seed, 0x7261_6e64_7472_6565)), seed: seed}
	return g.tree()
}

type dir struct {
	node  *fstree.Node
	path  string
	depth int
	keys  map[string]bool
}

type gen struct {
	opts  Options
	r     *rand.Rand
	seed  uint64
	dirs  []*dir
	files []string // paths of non-directories, for hardlinks
	n     uint64   // content seed counter
}

func (g *gen) tree() *fstree.Tree {
	t := fstree.New()
	g.meta(t.Root)
	root := &dir{node: t.Root, keys: map[string]bool{}}
	g.dirs = []*dir{root}
	// Shape: some trees are deep chains, some have one very wide
	// directory, most are bushy.
	shape := g.r.IntN(4)
	wide := root
	for i := 0; i < g.opts.Entries; i++ {
		var d *dir
		switch {
		case shape == 0 && g.r.IntN(3) > 0: // deep: prefer the newest dir
			d = g.dirs[len(g.dirs)-1]
		case shape == 1 && g.r.IntN(2) == 0: // wide: one directory takes half
			d = wide
		default:
			d = g.dirs[g.r.IntN(len(g.dirs))]
		}
		if err := g.entry(t, d); err != nil {
			panic(fmt.Sprintf("randtree: seed %d: %v", g.seed, err)) // a generator bug
		}
	}
	return t
}

func (g *gen) allowed(t fstree.Type) bool {
	for _, a := range g.opts.Types {
		if a == t {
			return true
		}
	}
	return false
}

// kind draws the type of the next entry.
func (g *gen) kind(d *dir) fstree.Type {
	for {
		var t fstree.Type
		switch x := g.r.IntN(100); {
		case x < 45:
			t = fstree.TypeRegular
		case x < 65:
			t = fstree.TypeDir
		case x < 80:
			t = fstree.TypeSymlink
		case x < 85:
			t = fstree.TypeCharDev
		case x < 90:
			t = fstree.TypeBlockDev
		case x < 94:
			t = fstree.TypeFIFO
		default:
			t = fstree.TypeSocket
		}
		if t == fstree.TypeDir && d.depth >= g.opts.MaxDepth {
			continue
		}
		if t == fstree.TypeDir || g.allowed(t) {
			return t
		}
	}
}

func (g *gen) entry(t *fstree.Tree, d *dir) error {
	name := g.name(d)
	p := name
	if d.path != "" {
		p = d.path + "/" + name
	}
	// A hardlink to an existing non-directory now and then.
	if !g.opts.NoHardlinks && len(g.files) > 0 && g.r.IntN(12) == 0 {
		target, err := t.Lookup(g.files[g.r.IntN(len(g.files))])
		if err != nil {
			return err
		}
		return t.Put(p, target, nil)
	}
	var n *fstree.Node
	switch k := g.kind(d); k {
	case fstree.TypeDir:
		n = fstree.NewDir(0)
	case fstree.TypeRegular:
		n = g.file()
	case fstree.TypeSymlink:
		n = fstree.NewSymlink(g.target())
	case fstree.TypeCharDev, fstree.TypeBlockDev:
		major, minor := uint32(g.r.IntN(256)), uint32(g.r.IntN(256))
		if g.r.IntN(2) == 0 { // needs the new (large) encoding
			major, minor = uint32(g.r.IntN(1<<12)), uint32(g.r.IntN(1<<20))
		}
		n = fstree.NewDevice(k, 0, major, minor)
	default:
		n = fstree.NewDevice(k, 0, 0, 0)
	}
	g.meta(n)
	if err := t.Put(p, n, nil); err != nil {
		return err
	}
	if n.Type == fstree.TypeDir {
		g.dirs = append(g.dirs, &dir{node: n, path: p, depth: d.depth + 1, keys: map[string]bool{}})
	} else {
		g.files = append(g.files, p)
	}
	return nil
}

func (g *gen) file() *fstree.Node {
	g.n++
	var size int64
	switch x := g.r.IntN(20); {
	case x < 3:
		size = 0
	case x < 14:
		size = g.r.Int64N(min(8192, g.opts.MaxFileSize) + 1)
	case x < 18:
		size = g.r.Int64N(min(256<<10, g.opts.MaxFileSize) + 1)
	default:
		size = g.opts.MaxFileSize/2 + g.r.Int64N(g.opts.MaxFileSize/2+1)
	}
	c := Content{Seed: mix(g.seed, g.n), Size: size}
	if !g.opts.NoSparse && g.r.IntN(3) == 0 {
		c.RunShift = uint(g.r.IntN(6))
		c.ZeroOdds = uint8(64 + g.r.IntN(160))
	}
	var content fstree.Content = c
	if size == 0 && g.r.IntN(2) == 0 {
		content = nil
	}
	return fstree.NewFile(0, size, content)
}

func (g *gen) target() string {
	n := 1 + g.r.IntN(59) // fast symlink
	if g.r.IntN(3) == 0 {
		n = 60 + g.r.IntN(g.opts.MaxSymlinkLen-59)
	}
	if n > g.opts.MaxSymlinkLen {
		n = g.opts.MaxSymlinkLen
	}
	var b strings.Builder
	if g.r.IntN(2) == 0 {
		b.WriteByte('/')
	}
	for b.Len() < n {
		switch g.r.IntN(8) {
		case 0:
			b.WriteByte('/')
		case 1:
			b.WriteString("../")
		default:
			b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789._-"[g.r.IntN(39)])
		}
	}
	return b.String()[:n]
}

// meta sets mode, owner, times and xattrs.
func (g *gen) meta(n *fstree.Node) {
	perm := uint32(g.r.IntN(0o1000))
	if g.r.IntN(3) > 0 { // mostly sensible permissions
		perm = []uint32{0o755, 0o644, 0o600, 0o700, 0o444, 0o750}[g.r.IntN(6)]
	}
	if n.Type == fstree.TypeSymlink {
		perm = 0o777
	} else if !g.opts.NoSpecialModes && g.r.IntN(8) == 0 {
		perm |= []uint32{fstree.ModeSetuid, fstree.ModeSetgid, fstree.ModeSticky,
			fstree.ModeSetuid | fstree.ModeSetgid | fstree.ModeSticky}[g.r.IntN(4)]
	}
	n.Mode = perm
	if !g.opts.NoOwners && g.r.IntN(2) == 0 {
		ids := []uint32{0, 1, 33, 1000, 65534, 65535, 65536, 1 << 31, 0xfffffffe}
		n.UID = ids[g.r.IntN(len(ids))]
		n.GID = ids[g.r.IntN(len(ids))]
		if g.r.IntN(2) == 0 {
			n.UID = g.r.Uint32N(0xffffffff) // 0xffffffff is "no change" to chown
		}
	}
	n.Mtime = g.time()
	if !g.opts.MtimeOnly && g.r.IntN(4) == 0 {
		n.SetTimes(g.time(), g.time())
	}
	if !g.opts.NoXattrs && g.r.IntN(4) == 0 {
		g.xattrs(n)
	}
}

func (g *gen) time() time.Time {
	lo, hi := g.opts.MinTime.UnixNano(), g.opts.MaxTime.UnixNano()
	ns := lo + g.r.Int64N(hi-lo)
	if g.r.IntN(4) == 0 { // whole seconds happen a lot in real trees
		ns -= ns % int64(time.Second)
	}
	ns -= ns % int64(g.opts.TimeGranularity)
	return time.Unix(0, ns).UTC()
}

func (g *gen) xattrs(n *fstree.Node) {
	n.Xattrs = map[string]string{}
	budget := g.opts.MaxXattrBytes
	add := func(k, v string) {
		if len(k)+len(v) <= budget && n.Xattrs[k] == "" {
			n.Xattrs[k] = v
			budget -= len(k) + len(v)
		}
	}
	for i, m := 0, 1+g.r.IntN(4); i < m; i++ {
		switch g.r.IntN(6) {
		case 0: // vfs_cap_data revision 2: magic, permitted, inheritable
			add("security.capability", "\x00\x00\x00\x02"+g.bytes(16, false))
		case 1:
			add("security.selinux", "system_u:object_r:bin_t:s0\x00")
		case 2:
			add("trusted."+g.ident(1+g.r.IntN(20)), g.bytes(g.r.IntN(64), true))
		default:
			size := g.r.IntN(40)
			if g.r.IntN(4) == 0 { // big: forces an xattr block
				size = g.r.IntN(budget/2 + 1)
			}
			ns := "user."
			if n.Type != fstree.TypeRegular && n.Type != fstree.TypeDir {
				ns = "trusted." // Linux allows user.* only on files and directories
			}
			add(ns+g.ident(1+g.r.IntN(30)), g.bytes(size, g.r.IntN(2) == 0))
		}
	}
}

func (g *gen) ident(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789_."[g.r.IntN(38)]
	}
	return string(b)
}

// bytes returns n random bytes, printable text when text is set.
func (g *gen) bytes(n int, text bool) string {
	b := make([]byte, n)
	for i := range b {
		if text {
			b[i] = byte(' ' + g.r.IntN(95))
		} else {
			b[i] = byte(g.r.IntN(256))
		}
	}
	return string(b)
}

// nameRunes are the non-ASCII pieces names draw from (2, 3 and 4 bytes).
var nameRunes = []string{"é", "ü", "ß", "Ω", "ж", "日", "本", "語", "€", "🙂", "𝄞"}

const nameASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.+~"

// name draws a name that is new in d (by NameKey) and valid.
func (g *gen) name(d *dir) string {
	for {
		max := g.opts.MaxNameLen
		n := 1 + g.r.IntN(min(16, max))
		switch g.r.IntN(10) {
		case 0:
			n = 1 + g.r.IntN(max)
		case 1:
			n = max
		}
		var b strings.Builder
		for b.Len() < n {
			if !g.opts.ASCII && g.r.IntN(6) == 0 {
				r := nameRunes[g.r.IntN(len(nameRunes))]
				if b.Len()+len(r) <= n {
					b.WriteString(r)
					continue
				}
			}
			b.WriteByte(nameASCII[g.r.IntN(len(nameASCII))])
		}
		s := b.String()
		if s == "." || s == ".." || (d.path == "" && s == "lost+found") {
			continue
		}
		if g.opts.ValidName != nil && !g.opts.ValidName(s) {
			continue
		}
		key := s
		if g.opts.NameKey != nil {
			key = g.opts.NameKey(s)
		}
		if d.keys[key] {
			continue
		}
		d.keys[key] = true
		return s
	}
}

// Bench returns the random tree a writer's memory benchmark names, and
// whether spec names one: "rand:N" has N entries of at most 64 KiB,
// "randbig:N" N entries of up to 1 GiB without zero runs.
func Bench(spec string) (*fstree.Tree, bool) {
	kind, count, ok := strings.Cut(spec, ":")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n <= 0 {
		return nil, false
	}
	switch kind {
	case "randbig":
		return New(uint64(n), Options{Entries: n, MaxFileSize: 1 << 30, NoSparse: true}), true
	case "rand":
		return New(uint64(n), Options{Entries: n, MaxFileSize: 64 << 10, MaxXattrBytes: 1024}), true
	}
	return nil, false
}
