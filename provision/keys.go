package provision

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ocidisk/ocidisk/fstree"
)

// AuthorizedKeys are SSH public keys that may log in as User: the
// content of an authorized_keys or .pub file, named by Source in
// errors.
type AuthorizedKeys struct {
	User   string
	Source string
	Keys   []byte
}

// ParseAuthorizedKeys checks keys line by line as sshd reads
// authorized_keys (options, type, key, comment; # comments and blank
// lines skipped) and returns the key lines. A malformed line is an error
// naming source and the line.
func ParseAuthorizedKeys(source string, keys []byte) ([]string, error) {
	var out []string
	for i, l := range strings.Split(string(keys), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l)); err != nil {
			return nil, usagef("%s: line %d: not an SSH public key (%v)", source, i+1, err)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, usagef("%s: no SSH public key in it", source)
	}
	return out, nil
}

// authorize adds keys to the user's ~/.ssh/authorized_keys, making
// ~/.ssh (0700) and the file (0600) owned by the user when missing, as
// sshd's StrictModes wants them. Keys the file has already are not
// added twice.
func (a *accounts) authorize(t *fstree.Tree, k AuthorizedKeys, when time.Time) error {
	i := a.passwd.find(k.User)
	if i < 0 {
		return usagef("user %s: the root has no such user for the keys of %s (give --user %s to add one)", k.User, k.Source, k.User)
	}
	f := a.passwd.get(i)
	uid, err1 := strconv.Atoi(f[2])
	gid, err2 := strconv.Atoi(f[3])
	home := f[5]
	if err1 != nil || err2 != nil || !strings.HasPrefix(home, "/") {
		return fmt.Errorf("user %s: its /etc/passwd entry has no numeric IDs or absolute home", k.User)
	}
	lines, err := ParseAuthorizedKeys(k.Source, k.Keys)
	if err != nil {
		return err
	}
	o := owner{mode: 0o700, uid: uint32(uid), gid: uint32(gid)}
	if !exists(t, home) {
		if _, err := mkdir(t, home, o, when); err != nil {
			return fmt.Errorf("user %s: home: %w", k.User, err)
		}
	}
	sshDir := path.Join(home, ".ssh")
	if _, err := mkdir(t, sshDir, o, when); err != nil {
		return fmt.Errorf("user %s: %w", k.User, err)
	}
	file := path.Join(sshDir, "authorized_keys")
	old, err := readFile(t, file)
	if err != nil {
		return fmt.Errorf("user %s: %w", k.User, err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	b := bytes.NewBuffer(old)
	if b.Len() > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		b.WriteByte('\n')
	}
	added := false
	for _, l := range lines {
		if !have[l] {
			b.WriteString(l + "\n")
			have[l], added = true, true
		}
	}
	if !added {
		return nil
	}
	o.mode = 0o600
	return writeFile(t, file, b.Bytes(), o, when)
}
