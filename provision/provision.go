// Package provision prepares a root tree for the devices that will run
// it. A root made by a build system carries what must differ from one
// device to the next (sshd's host keys, systemd's random seed and
// credential secret, the machine ID): ResetIdentity takes them out, and
// each device makes its own on first boot. SetHostname, the users with
// their password hashes and SSH keys, and /etc/fstab are edits of the
// tree, and CheckArch checks that the root's programs are for the board's
// processor.
//
// Every edit is made in the fstree.Tree, deterministically (the same
// inputs give the same tree: new entries go last, times are the build's),
// and keeps what the root had: lines of /etc/passwd it does not touch,
// the modes and owners of files it rewrites.
package provision

import (
	"fmt"
	"os"
	"path"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// Spec is everything a build asks of the root.
type Spec struct {
	// KeepIdentity leaves the root's host keys, seeds and machine ID as
	// they are (every device flashed from the image shares them).
	KeepIdentity bool
	// Hostname, when set, goes to /etc/hostname and /etc/hosts.
	Hostname string
	// Users are added, in order, as Debian's adduser adds them.
	Users []string
	// Passwords are given to users the root has (or Users adds); root
	// may have one.
	Passwords []Password
	// AuthorizedKeys go to the users' ~/.ssh/authorized_keys.
	AuthorizedKeys []AuthorizedKeys
	// Fstab is written to /etc/fstab when the root has none of its own;
	// nil leaves /etc/fstab alone.
	Fstab *Fstab
	// Time is the mtime of every file written, and the shadow file's
	// "last changed" day.
	Time time.Time
}

// Report says what Apply did.
type Report struct {
	// Removed are the identity files removed or emptied.
	Removed []string
	// Users are the users of Spec.Users as the root has them now.
	Users []User
	// Sudoers are the files written so that users without a password
	// may use sudo.
	Sudoers []string
	Fstab   FstabResult
	// Systemd is set when the root runs systemd.
	Systemd bool
}

// Apply makes every edit spec asks of t. Errors about the spec itself
// (a user the root lacks, a malformed key) match ErrUsage.
func Apply(t *fstree.Tree, spec Spec) (*Report, error) {
	r := &Report{Systemd: HasSystemd(t)}
	when := spec.Time
	var err error
	if !spec.KeepIdentity {
		if r.Removed, err = ResetIdentity(t, when); err != nil {
			return nil, fmt.Errorf("reset the root's identity: %w", err)
		}
	}
	if spec.Hostname != "" {
		if err := SetHostname(t, spec.Hostname, when); err != nil {
			return nil, specErr("Hostname", fmt.Errorf("host name: %w", err))
		}
	}
	if len(spec.Users)+len(spec.Passwords)+len(spec.AuthorizedKeys) > 0 {
		if err := r.accounts(t, spec); err != nil {
			return nil, err
		}
	}
	if spec.Fstab != nil {
		if r.Fstab, err = WriteFstab(t, *spec.Fstab, when); err != nil {
			return nil, fmt.Errorf("/etc/fstab: %w", err)
		}
	}
	return r, nil
}

// accounts adds the users, sets the passwords, authorizes the keys and
// lets users without a password use sudo. Errors are *SpecError naming
// the field of spec that failed.
func (r *Report) accounts(t *fstree.Tree, spec Spec) error {
	when := spec.Time
	first := "Users"
	switch {
	case len(spec.Users) > 0:
	case len(spec.Passwords) > 0:
		first = "Passwords"
	default:
		first = "AuthorizedKeys"
	}
	a, err := readAccounts(t)
	if err != nil {
		return specErr(first, err)
	}
	conf, err := readAdduserConf(t)
	if err != nil {
		return specErr(first, err)
	}
	for _, name := range spec.Users {
		if err := CheckUserName(name); err != nil {
			return specErr("Users", err)
		}
		u, err := a.addUser(t, name, conf, when)
		if err != nil {
			return specErr("Users", err)
		}
		r.Users = append(r.Users, u)
	}
	hashed := map[string]bool{}
	for _, p := range spec.Passwords {
		if err := CheckHash(p.Hash); err != nil {
			return specErr("Passwords", fmt.Errorf("user %s: %w", p.User, err))
		}
		if err := a.setHash(p.User, p.Hash, when); err != nil {
			return specErr("Passwords", err)
		}
		hashed[p.User] = true
	}
	for _, k := range spec.AuthorizedKeys {
		if err := a.authorize(t, k, when); err != nil {
			return specErr("AuthorizedKeys", err)
		}
	}
	if err := a.write(t, when); err != nil {
		return err
	}
	for _, u := range r.Users {
		if !u.Created || !u.Sudo || hashed[u.Name] {
			continue
		}
		p, err := nopasswdSudo(t, u.Name, when)
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
		if p != "" {
			r.Sudoers = append(r.Sudoers, p)
		}
	}
	return nil
}

// nopasswdSudo lets user, who has no password to type, use sudo without
// one (as Raspberry Pi OS does for its first user), through a file in
// /etc/sudoers.d when the root has sudo. It returns the file's path, ""
// when the root has no /etc/sudoers.d.
func nopasswdSudo(t *fstree.Tree, user string, when time.Time) (string, error) {
	d, _, err := lookup(t, "etc/sudoers.d")
	if err != nil || d == nil || !d.IsDir() {
		return "", err
	}
	// sudo skips files whose names have a '.' or end in '~'; user names
	// have neither.
	p := path.Join("etc/sudoers.d", "ocidisk-"+user)
	body := fmt.Sprintf("# Written by ocidisk: %s has no password (a --user without --password-hash),\n"+
		"# so sudo asks for none.\n%s ALL=(ALL:ALL) NOPASSWD: ALL\n", user, user)
	if err := writeFile(t, p, []byte(body), owner{mode: 0o440}, when); err != nil {
		return "", err
	}
	return "/" + p, nil
}

// ReadAuthorizedKeys reads an --ssh-authorized-key value, USER:FILE,
// with FILE on the host, and checks its keys.
func ReadAuthorizedKeys(spec string) (AuthorizedKeys, error) {
	user, file, err := ParseUserFile(spec)
	if err != nil {
		return AuthorizedKeys{}, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return AuthorizedKeys{}, fmt.Errorf("user %s: %w", user, err)
	}
	if _, err := ParseAuthorizedKeys(file, b); err != nil {
		return AuthorizedKeys{}, err
	}
	return AuthorizedKeys{User: user, Source: file, Keys: b}, nil
}
