package pipeline

import (
	"strings"

	"github.com/ocidisk/ocidisk/fstree"
)

// rootInits are the programs ocidisk's initramfs hands the root to, the
// first that exists, when the command line has no init= (the list in
// bootfs/initramfs/init/switchroot.go; a test keeps the two equal).
var rootInits = []string{"/sbin/init", "/etc/init", "/bin/init", "/bin/sh"}

// missingInit returns what the initramfs would look for in root under
// cmdline and not find, or nil when the root has an init to run: a
// regular file, through any symlinks, with an execute bit. A root without
// one builds, but stops at boot after the initramfs.
func missingInit(root *fstree.Tree, cmdline string) []string {
	inits := rootInits
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "init="); ok {
			inits = []string{v}
		}
	}
	for _, p := range inits {
		rp, err := root.Realpath(p)
		if err != nil {
			continue
		}
		n, err := root.Lookup(rp)
		if err == nil && n.Type == fstree.TypeRegular && n.Mode&0o111 != 0 {
			return nil
		}
	}
	return inits
}
