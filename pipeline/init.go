package pipeline

import (
	"strings"

	"github.com/ocidisk/ocidisk/bootfs/initramfs/protocol"
	"github.com/ocidisk/ocidisk/fstree"
)

// missingInit returns what the initramfs would look for in root under
// cmdline and not find, or nil when the root has an init to run: a
// regular file, through any symlinks, with an execute bit. A root without
// one builds, but stops at boot after the initramfs.
func missingInit(root *fstree.Tree, cmdline string) []string {
	inits := protocol.RootInits
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
