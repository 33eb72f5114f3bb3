package provision

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

// owner is the mode and ownership a file or directory gets when it is
// created; an existing one keeps its own.
type owner struct {
	mode     uint32
	uid, gid uint32
}

var rootFile = owner{mode: 0o644}

// lookup resolves p in t as the kernel would inside the root and returns
// the node there (nil when nothing is) and its resolved path.
func lookup(t *fstree.Tree, p string) (*fstree.Node, string, error) {
	rp, err := t.Realpath(p)
	if err != nil {
		return nil, "", fmt.Errorf("/%s: %w", trimSlash(p), err)
	}
	n, err := t.Lookup(rp)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fstree.ErrNotDir) {
		return nil, rp, nil
	}
	if err != nil {
		return nil, rp, err
	}
	return n, rp, nil
}

// exists reports whether p names anything in t, through symlinks.
func exists(t *fstree.Tree, p string) bool {
	n, _, err := lookup(t, p)
	return err == nil && n != nil
}

// isExecutable reports whether p is a regular file with an execute bit,
// through symlinks.
func isExecutable(t *fstree.Tree, p string) bool {
	n, _, err := lookup(t, p)
	return err == nil && n != nil && n.Type == fstree.TypeRegular && n.Mode&0o111 != 0
}

// readFile returns the content of the small file at p; nil, without an
// error, when there is none. Anything but a regular file there is an
// error: the edit that wanted it cannot be made.
func readFile(t *fstree.Tree, p string) ([]byte, error) {
	n, _, err := lookup(t, p)
	if err != nil || n == nil {
		return nil, err
	}
	if n.Type != fstree.TypeRegular {
		return nil, fmt.Errorf("/%s is a %s, not a file", trimSlash(p), n.Type)
	}
	b, err := fstree.ReadAll(n)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", trimSlash(p), err)
	}
	return b, nil
}

// writeFile puts data at p (where its symlinks lead): an existing file
// keeps its mode, owner and xattrs, a new one gets o's. Missing parent
// directories are made 0755 root:root.
func writeFile(t *fstree.Tree, p string, data []byte, o owner, when time.Time) error {
	n, rp, err := lookup(t, p)
	if err != nil {
		return err
	}
	var nn *fstree.Node
	switch {
	case n == nil:
		nn = fstree.NewFile(o.mode, 0, nil)
		nn.UID, nn.GID = o.uid, o.gid
	case n.Type == fstree.TypeRegular:
		nn = n.CopyMeta()
	default:
		return fmt.Errorf("/%s is a %s, not a file", trimSlash(p), n.Type)
	}
	nn.Size, nn.Content = int64(len(data)), fstree.Bytes(data)
	nn.Mtime = when
	nn.SetTimes(time.Time{}, time.Time{})
	if err := t.Put(rp, nn, dirTemplate(when)); err != nil {
		return fmt.Errorf("/%s: %w", rp, err)
	}
	return nil
}

// mkdir makes sure p is a directory, making it (and missing parents,
// 0755 root:root) with o when missing. An existing directory is left as
// it is.
func mkdir(t *fstree.Tree, p string, o owner, when time.Time) (*fstree.Node, error) {
	n, rp, err := lookup(t, p)
	if err != nil {
		return nil, err
	}
	if n != nil {
		if !n.IsDir() {
			return nil, fmt.Errorf("/%s is a %s, not a directory", rp, n.Type)
		}
		return n, nil
	}
	d := fstree.NewDir(o.mode)
	d.UID, d.GID, d.Mtime = o.uid, o.gid, when
	if err := t.Put(rp, d, dirTemplate(when)); err != nil {
		return nil, fmt.Errorf("/%s: %w", rp, err)
	}
	return d, nil
}

func dirTemplate(when time.Time) *fstree.Node {
	d := fstree.NewDir(0o755)
	d.Mtime = when
	return d
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	return p
}
