package provision

import (
	"strings"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// defaultHosts is Debian's /etc/hosts (netbase) for a root without one.
const defaultHosts = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"

// SetHostname writes name to /etc/hostname and gives it the 127.0.1.1
// line of /etc/hosts, as Debian's installer does (the full name, then
// its first label when they differ), so that the host resolves its own
// name without a network. Other lines of /etc/hosts are kept.
func SetHostname(t *fstree.Tree, name string, when time.Time) error {
	if err := CheckHostname(name); err != nil {
		return err
	}
	if err := writeFile(t, "etc/hostname", []byte(name+"\n"), rootFile, when); err != nil {
		return err
	}
	hosts, err := readFile(t, "etc/hosts")
	if err != nil {
		return err
	}
	if hosts == nil {
		hosts = []byte(defaultHosts)
	}
	entry := "127.0.1.1\t" + name
	if short, _, ok := strings.Cut(name, "."); ok {
		entry += " " + short
	}
	lines := strings.SplitAfter(string(hosts), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	out := make([]string, 0, len(lines)+1)
	placed := false
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "127.0.1.1":
			if !placed {
				out = append(out, entry+"\n")
				placed = true
			}
			continue
		case !strings.HasSuffix(l, "\n"):
			l += "\n"
		}
		out = append(out, l)
		if !placed && len(f) > 0 && f[0] == "127.0.0.1" {
			out = append(out, entry+"\n")
			placed = true
		}
	}
	if !placed {
		out = append([]string{entry + "\n"}, out...)
	}
	return writeFile(t, "etc/hosts", []byte(strings.Join(out, "")), rootFile, when)
}
