package provision

import (
	"strings"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
)

var when = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// ent is an entry of a synthetic root: a file (body), a directory (a
// path ending in "/") or a symlink (target).
type ent struct {
	path     string
	body     string
	target   string
	mode     uint32
	uid, gid uint32
}

func file(p, body string) ent      { return ent{path: p, body: body, mode: 0o644} }
func dir(p string) ent             { return ent{path: p + "/", mode: 0o755} }
func link(p, target string) ent    { return ent{path: p, target: target} }
func exe(p string) ent             { return ent{path: p, body: "#!/bin/sh\n", mode: 0o755} }
func (e ent) perm(mode uint32) ent { e.mode = mode; return e }
func (e ent) own(uid, gid int) ent { e.uid, e.gid = uint32(uid), uint32(gid); return e }
func data(p string, b []byte) ent  { return ent{path: p, body: string(b), mode: 0o755} }
func bodyOf(t *testing.T, tr *fstree.Tree, p string) string {
	t.Helper()
	b, err := tr.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newTree builds a root of es; parents are made 0755 root:root.
func newTree(t *testing.T, es ...ent) *fstree.Tree {
	t.Helper()
	tr := fstree.New()
	for _, e := range es {
		var n *fstree.Node
		switch {
		case strings.HasSuffix(e.path, "/"):
			n = fstree.NewDir(e.mode)
		case e.target != "":
			n = fstree.NewSymlink(e.target)
		default:
			n = fstree.NewFile(e.mode, int64(len(e.body)), fstree.Bytes(e.body))
		}
		n.UID, n.GID = e.uid, e.gid
		p := strings.TrimSuffix(e.path, "/")
		if n.IsDir() {
			if old, err := tr.Lookup(p); err == nil && old.IsDir() {
				old.Mode, old.UID, old.GID = n.Mode, n.UID, n.GID
				continue
			}
		}
		if err := tr.Put(p, n, fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// meta is a node's type, mode and owner as the tests compare them.
type meta struct {
	typ      fstree.Type
	mode     uint32
	uid, gid uint32
}

func metaOf(t *testing.T, tr *fstree.Tree, p string) meta {
	t.Helper()
	n, err := tr.Lookup(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return meta{n.Type, n.Mode, n.UID, n.GID}
}
