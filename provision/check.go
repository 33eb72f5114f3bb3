package provision

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrUsage marks an error in what the build was asked to do (a malformed
// hash, a user the root does not have): the command line's fault, not
// the inputs'.
var ErrUsage = errors.New("usage")

type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }
func (e *usageErr) Is(target error) bool {
	return target == ErrUsage
}

func usagef(format string, a ...any) error { return &usageErr{fmt.Sprintf(format, a...)} }

// SpecError is an error about one field of a Spec ("Passwords"), so that
// a caller can say which of its inputs is wrong.
type SpecError struct {
	Field string
	Err   error
}

func (e *SpecError) Error() string { return e.Err.Error() }
func (e *SpecError) Unwrap() error { return e.Err }

func specErr(field string, err error) error {
	if err == nil {
		return nil
	}
	return &SpecError{Field: field, Err: err}
}

// userNameRE is adduser's NAME_REGEX (adduser.conf(5)): what Debian
// accepts for a user without --allow-bad-names, and at most 32 bytes as
// useradd wants.
var userNameRE = regexp.MustCompile(`^[a-z][-a-z0-9_]{0,30}\$?$`)

// CheckUserName checks a name for a new user.
func CheckUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return usagef("user name %q: want a lower-case letter, then lower-case letters, digits, '-' or '_' (at most 32), as adduser does", name)
	}
	return nil
}

// The crypt(3) hashes a password may be given as: libxcrypt's yescrypt
// (Debian's default since bullseye), SHA-512 and SHA-256 crypt (with
// rounds= or not) and MD5 crypt. The hash itself is the base-64 alphabet
// crypt uses, of the length each method gives.
var hashForms = []struct {
	prefix string
	re     *regexp.Regexp
}{
	{"$y$", regexp.MustCompile(`^\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]+\$[./0-9A-Za-z]{43}$`)},
	{"$6$", regexp.MustCompile(`^\$6\$(rounds=[1-9][0-9]*\$)?[^$:\s]{1,16}\$[./0-9A-Za-z]{86}$`)},
	{"$5$", regexp.MustCompile(`^\$5\$(rounds=[1-9][0-9]*\$)?[^$:\s]{1,16}\$[./0-9A-Za-z]{43}$`)},
	{"$1$", regexp.MustCompile(`^\$1\$[^$:\s]{1,8}\$[./0-9A-Za-z]{22}$`)},
}

// hashHint is how an error says what a hash is; it never repeats the
// value given, which may be a password typed in the wrong place.
const hashHint = "want a crypt(3) hash ($y$, $6$, $5$ or $1$), such as `mkpasswd -m yescrypt` prints, never the password itself"

// CheckHash checks that h is a crypt(3) hash of a form Debian's libcrypt
// verifies. The error does not show h.
func CheckHash(h string) error {
	for _, f := range hashForms {
		if strings.HasPrefix(h, f.prefix) {
			if f.re.MatchString(h) {
				return nil
			}
			return usagef("not a well-formed %s hash: %s", f.prefix, hashHint)
		}
	}
	return usagef("not a crypt(3) hash: %s", hashHint)
}

// Password is a user's password, as a crypt(3) hash.
type Password struct {
	User, Hash string
}

// ParsePassword parses USER:HASH. The error does not show the value.
func ParsePassword(s string) (Password, error) {
	user, hash, ok := strings.Cut(s, ":")
	if !ok || user == "" {
		return Password{}, usagef("want USER:HASH: %s", hashHint)
	}
	if user != "root" {
		if err := CheckUserName(user); err != nil {
			return Password{}, err
		}
	}
	if err := CheckHash(hash); err != nil {
		return Password{}, fmt.Errorf("user %s: %w", user, err)
	}
	return Password{User: user, Hash: hash}, nil
}

// ParseUserFile parses USER:FILE (an --ssh-authorized-key value).
func ParseUserFile(s string) (user, file string, err error) {
	user, file, ok := strings.Cut(s, ":")
	if !ok || user == "" || file == "" {
		return "", "", usagef("want USER:FILE")
	}
	if user != "root" {
		if err := CheckUserName(user); err != nil {
			return "", "", err
		}
	}
	return user, file, nil
}

var hostLabelRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// CheckHostname checks a host name as RFC 1123 and systemd's hostnamectl
// have it: dot-separated labels of letters, digits and inner hyphens, up
// to 63 bytes each and 253 in all. A fully qualified name is kept whole
// in /etc/hostname; /etc/hosts names both it and its first label.
func CheckHostname(name string) error {
	if name == "" || len(name) > 253 {
		return usagef("host name %q: want 1 to 253 characters", name)
	}
	for _, l := range strings.Split(name, ".") {
		if !hostLabelRE.MatchString(l) {
			return usagef("host name %q: want labels of letters, digits and inner '-', separated by dots", name)
		}
	}
	return nil
}
