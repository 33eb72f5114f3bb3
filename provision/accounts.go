package provision

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// The account databases: colon-separated lines, one entry each, edited
// in place so that every line the root had stays as it was, in its
// order, and new entries come last (as useradd appends them).
const (
	passwdPath  = "etc/passwd"
	shadowPath  = "etc/shadow"
	groupPath   = "etc/group"
	gshadowPath = "etc/gshadow"
)

// table is one account database as read from the tree.
type table struct {
	path   string
	fields int // entries have this many fields
	lines  []string
	exists bool
	dirty  bool
}

func readTable(t *fstree.Tree, p string, fields int) (*table, error) {
	b, err := readFile(t, p)
	if err != nil {
		return nil, err
	}
	tb := &table{path: p, fields: fields, exists: b != nil}
	s := bufio.NewScanner(bytes.NewReader(b))
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		tb.lines = append(tb.lines, s.Text())
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("/%s: %w", p, err)
	}
	return tb, nil
}

// find returns the index of name's entry, or -1.
func (tb *table) find(name string) int {
	for i, l := range tb.lines {
		if n, _, ok := strings.Cut(l, ":"); ok && n == name {
			return i
		}
	}
	return -1
}

// get returns entry i's fields, padded to the table's width.
func (tb *table) get(i int) []string {
	f := strings.Split(tb.lines[i], ":")
	for len(f) < tb.fields {
		f = append(f, "")
	}
	return f
}

func (tb *table) set(i int, f []string) {
	tb.lines[i] = strings.Join(f, ":")
	tb.dirty = true
}

func (tb *table) add(f ...string) {
	tb.lines = append(tb.lines, strings.Join(f, ":"))
	tb.dirty = true
}

// ids returns the numbers in field k of every entry.
func (tb *table) ids(k int) map[int]bool {
	out := map[int]bool{}
	for i := range tb.lines {
		if n, err := strconv.Atoi(tb.get(i)[k]); err == nil {
			out[n] = true
		}
	}
	return out
}

// addMember adds user to the member list in field k of group entry i.
func (tb *table) addMember(i, k int, user string) {
	f := tb.get(i)
	var members []string
	if f[k] != "" {
		members = strings.Split(f[k], ",")
	}
	for _, m := range members {
		if m == user {
			return
		}
	}
	f[k] = strings.Join(append(members, user), ",")
	tb.set(i, f)
}

func (tb *table) bytes() []byte {
	var b bytes.Buffer
	for _, l := range tb.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// accounts are the four databases of a root.
type accounts struct {
	passwd, shadow, group, gshadow *table
	// shadowGroup is the gid of the shadow group, which may read
	// /etc/shadow; -1 when the root has none.
	shadowGroup int
}

func readAccounts(t *fstree.Tree) (*accounts, error) {
	a := &accounts{shadowGroup: -1}
	var err error
	if a.passwd, err = readTable(t, passwdPath, 7); err != nil {
		return nil, err
	}
	if !a.passwd.exists {
		return nil, fmt.Errorf("the root has no /%s to add users to", passwdPath)
	}
	if a.shadow, err = readTable(t, shadowPath, 9); err != nil {
		return nil, err
	}
	if a.group, err = readTable(t, groupPath, 4); err != nil {
		return nil, err
	}
	if a.gshadow, err = readTable(t, gshadowPath, 4); err != nil {
		return nil, err
	}
	if i := a.group.find("shadow"); i >= 0 {
		if n, err := strconv.Atoi(a.group.get(i)[2]); err == nil {
			a.shadowGroup = n
		}
	}
	return a, nil
}

// write puts back the databases that changed, with their own modes and
// owners, or Debian's for one made new: /etc/shadow and /etc/gshadow are
// root:shadow 0640 (or root 0600 without a shadow group).
func (a *accounts) write(t *fstree.Tree, when time.Time) error {
	secret := owner{mode: 0o600}
	if a.shadowGroup >= 0 {
		secret = owner{mode: 0o640, gid: uint32(a.shadowGroup)}
	}
	for _, x := range []struct {
		tb *table
		o  owner
	}{{a.passwd, rootFile}, {a.shadow, secret}, {a.group, rootFile}, {a.gshadow, secret}} {
		if !x.tb.dirty {
			continue
		}
		if err := writeFile(t, x.tb.path, x.tb.bytes(), x.o, when); err != nil {
			return err
		}
	}
	return nil
}

// days is a time as the shadow file counts it: days since 1970.
func days(when time.Time) string {
	if when.IsZero() || when.Unix() < 0 {
		return "0"
	}
	return strconv.FormatInt(when.Unix()/86400, 10)
}

// setHash gives user the password hash (or "*": no password, yet not
// locked, so that SSH keys work whatever UsePAM says) in /etc/shadow,
// making the entry (and the file) when missing.
func (a *accounts) setHash(user, hash string, when time.Time) error {
	pi := a.passwd.find(user)
	if pi < 0 {
		return usagef("user %s: the root has no such user (give --user %s to add one)", user, user)
	}
	if pf := a.passwd.get(pi); pf[1] != "x" {
		pf[1] = "x" // the hash lives in /etc/shadow
		a.passwd.set(pi, pf)
	}
	if si := a.shadow.find(user); si >= 0 {
		f := a.shadow.get(si)
		f[1], f[2] = hash, days(when)
		a.shadow.set(si, f)
		return nil
	}
	a.shadow.add(user, hash, days(when), "0", "99999", "7", "", "", "")
	return nil
}

// adduserConf is what adduser.conf says of new users; Debian's defaults
// where it is silent.
type adduserConf struct {
	firstUID, lastUID int
	dirMode           uint32
	shell             string
	skel              string
	skelIgnore        *regexp.Regexp
}

func readAdduserConf(t *fstree.Tree) (adduserConf, error) {
	c := adduserConf{firstUID: 1000, lastUID: 59999, dirMode: 0o700, skel: "/etc/skel",
		skelIgnore: regexp.MustCompile(`\.(dpkg|ucf)-(old|new|dist|save)$`)}
	b, err := readFile(t, "etc/adduser.conf")
	if err != nil || b == nil {
		return c, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch strings.TrimSpace(k) {
		case "FIRST_UID":
			c.firstUID, err = atoiField(k, v)
		case "LAST_UID":
			c.lastUID, err = atoiField(k, v)
		case "DIR_MODE":
			var m uint64
			if m, err = strconv.ParseUint(v, 8, 32); err == nil {
				c.dirMode = uint32(m) & fstree.ModeMask
			}
		case "DSHELL":
			c.shell = v
		case "SKEL":
			c.skel = v
		case "SKEL_IGNORE_REGEX":
			var re *regexp.Regexp
			if re, err = regexp.Compile(v); err == nil {
				c.skelIgnore = re
			}
		}
		if err != nil {
			return c, fmt.Errorf("/etc/adduser.conf: %s: %w", strings.TrimSpace(l), err)
		}
	}
	return c, nil
}

func atoiField(k, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s is not a number", k)
	}
	return n, nil
}

// User is an account as the build leaves it.
type User struct {
	Name     string
	UID, GID int
	Home     string
	Shell    string
	// Sudo is set when the user is in the sudo group.
	Sudo bool
	// Created is false for a user the root already had.
	Created bool
}

// addUser adds name as Debian's adduser does with its defaults: the
// first number from FIRST_UID free both as a user and as a group ID, a
// group of the same name and number, a home of DIR_MODE with the
// skeleton's files, the login shell /bin/bash (or the root's DSHELL)
// when the root has it, else /bin/sh. It also joins the sudo group when
// the root has one. A user the root already has is only added to sudo.
func (a *accounts) addUser(t *fstree.Tree, name string, conf adduserConf, when time.Time) (User, error) {
	u := User{Name: name}
	if i := a.passwd.find(name); i >= 0 {
		f := a.passwd.get(i)
		u.UID, _ = strconv.Atoi(f[2])
		u.GID, _ = strconv.Atoi(f[3])
		u.Home, u.Shell = f[5], f[6]
	} else {
		uids, gids := a.passwd.ids(2), a.group.ids(2)
		u.UID = -1
		for id := conf.firstUID; id <= conf.lastUID; id++ {
			if !uids[id] && !gids[id] {
				u.UID = id
				break
			}
		}
		if u.UID < 0 {
			return u, fmt.Errorf("user %s: no number from %d to %d is free both as a user and as a group ID", name, conf.firstUID, conf.lastUID)
		}
		if a.group.find(name) >= 0 {
			return u, fmt.Errorf("user %s: the root has a group of that name already", name)
		}
		u.GID, u.Home, u.Shell, u.Created = u.UID, "/home/"+name, loginShell(t, conf), true
		id := strconv.Itoa(u.UID)
		a.passwd.add(name, "x", id, id, ",,,", u.Home, u.Shell)
		a.group.add(name, "x", id, "")
		if a.gshadow.exists {
			a.gshadow.add(name, "!", "", "")
		}
		if err := a.setHash(name, "*", when); err != nil {
			return u, err
		}
		if err := makeHome(t, u, conf, when); err != nil {
			return u, fmt.Errorf("user %s: %w", name, err)
		}
	}
	if i := a.group.find("sudo"); i >= 0 {
		a.group.addMember(i, 3, name)
		if j := a.gshadow.find("sudo"); j >= 0 {
			a.gshadow.addMember(j, 3, name)
		}
		u.Sudo = true
	}
	return u, nil
}

// loginShell is DSHELL (default /bin/bash) when the root has it, else
// /bin/sh.
func loginShell(t *fstree.Tree, conf adduserConf) string {
	for _, sh := range []string{conf.shell, "/bin/bash"} {
		if sh != "" && isExecutable(t, sh) {
			return sh
		}
	}
	return "/bin/sh"
}

// makeHome makes u's home with the skeleton's files, all owned by u.
func makeHome(t *fstree.Tree, u User, conf adduserConf, when time.Time) error {
	if _, err := mkdir(t, "home", owner{mode: 0o755}, when); err != nil {
		return err
	}
	if exists(t, u.Home) {
		return nil // adduser keeps a home that is there, and so do we
	}
	home, err := mkdir(t, u.Home, owner{mode: conf.dirMode, uid: uint32(u.UID), gid: uint32(u.GID)}, when)
	if err != nil {
		return err
	}
	skel, _, err := lookup(t, conf.skel)
	if err != nil || skel == nil || !skel.IsDir() {
		return err
	}
	copySkel(skel, home, u, conf.skelIgnore)
	return nil
}

// copySkel copies directory src's entries into dst, owned by u.
func copySkel(src, dst *fstree.Node, u User, ignore *regexp.Regexp) {
	for _, e := range src.Entries() {
		if ignore != nil && ignore.MatchString(e.Name) {
			continue
		}
		switch e.Node.Type {
		case fstree.TypeRegular, fstree.TypeSymlink, fstree.TypeDir:
		default:
			continue // adduser copies files, links and directories
		}
		c := e.Node.CopyMeta()
		c.UID, c.GID = uint32(u.UID), uint32(u.GID)
		dst.SetChild(e.Name, c)
		if c.IsDir() {
			copySkel(e.Node, c, u, ignore)
		}
	}
}
