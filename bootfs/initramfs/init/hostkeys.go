package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"
)

// sshd's host keys: the build takes the image's out (every card would
// share them), and the init makes each card its own on its first boot,
// of the types the root's sshd_config asks for, as `ssh-keygen -A` would.

const sshdConfig = "/etc/ssh/sshd_config"

// defaultHostKeys are sshd's when its config names none (Debian's).
var defaultHostKeys = []string{"/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ed25519_key"}

// hostKeyFiles reads the HostKey lines of the root's sshd_config and the
// files it includes; nil when the root has no sshd_config.
func hostKeyFiles(r inRoot) ([]string, error) {
	if !r.exists(sshdConfig) {
		return nil, nil
	}
	var keys []string
	seen := map[string]bool{}
	var read func(p string, depth int) error
	read = func(p string, depth int) error {
		if depth > 8 || seen[p] {
			return nil
		}
		seen[p] = true
		b, err := r.read(p, 1<<20)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || strings.HasPrefix(f[0], "#") {
				continue
			}
			switch strings.ToLower(f[0]) {
			case "match":
				return nil // HostKey is not allowed in a Match block
			case "hostkey":
				keys = append(keys, strings.Trim(f[1], `"`))
			case "include":
				for _, pat := range f[1:] {
					pat = strings.Trim(pat, `"`)
					if !path.IsAbs(pat) {
						pat = path.Join("/etc/ssh", pat)
					}
					files, err := r.glob(pat)
					if err != nil {
						return err
					}
					for _, inc := range files {
						if err := read(inc, depth+1); err != nil {
							return err
						}
					}
				}
			}
		}
		return nil
	}
	if err := read(sshdConfig, 0); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return defaultHostKeys, nil
	}
	return keys, nil
}

// keyType is the type of key a HostKey file holds, from its name as
// OpenSSH names them; "" when the name does not say.
func keyType(p string) string {
	b := path.Base(p)
	switch {
	case strings.Contains(b, "ed25519"):
		return "ed25519"
	case strings.Contains(b, "ecdsa"):
		return "ecdsa"
	case strings.Contains(b, "dsa") && !strings.Contains(b, "rsa"):
		return "dsa"
	case strings.Contains(b, "rsa"):
		return "rsa"
	}
	return ""
}

// newHostKey makes a key of typ with ssh-keygen's default sizes: RSA of
// 3072 bits, ECDSA on P-256. crypto/rand reads getrandom(2), which waits
// until the kernel's random number generator is seeded.
func newHostKey(typ string) (crypto.Signer, error) {
	switch typ {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "ecdsa":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("cannot make %s keys", typ)
}

// encodeHostKey renders a key as ssh-keygen writes it: the private key
// in OpenSSH's format, and the public key's line, both with comment.
func encodeHostKey(k crypto.Signer, comment string) (private, public []byte, err error) {
	blk, err := ssh.MarshalPrivateKey(k, comment)
	if err != nil {
		return nil, nil, err
	}
	pub, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		return nil, nil, err
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n") + " " + comment + "\n"
	return pem.EncodeToMemory(blk), []byte(line), nil
}

// makeHostKey writes the key file p and p.pub (0600 and 0644, root's) to
// the root.
func makeHostKey(r inRoot, p, typ, comment string) error {
	k, err := newHostKey(typ)
	if err != nil {
		return err
	}
	priv, pub, err := encodeHostKey(k, comment)
	if err != nil {
		return err
	}
	// The public half first: sshd looks for the private key, so a key is
	// there only once both are.
	if err := r.writeNew(p+".pub", pub, 0o644); err != nil {
		return err
	}
	return r.writeNew(p, priv, 0o600)
}

// hostname is the root's /etc/hostname, for the keys' comment
// (ssh-keygen -A writes root@HOSTNAME).
func hostname(r inRoot) string {
	b, err := r.read("/etc/hostname", 4096)
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "localhost"
}
