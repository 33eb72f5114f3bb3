package pipeline

import (
	"testing"

	"github.com/ocidisk/ocidisk/fstree"
)

func TestMissingInit(t *testing.T) {
	exe := func() *fstree.Node { return fstree.NewFile(0o755, 0, fstree.Bytes(nil)) }
	for _, tc := range []struct {
		name    string
		put     map[string]*fstree.Node
		cmdline string
		missing bool
	}{
		{"sbin/init", map[string]*fstree.Node{"sbin/init": exe()}, "", false},
		{"systemd through a symlink", map[string]*fstree.Node{
			"sbin/init": fstree.NewSymlink("/lib/systemd/systemd"), "lib": fstree.NewSymlink("usr/lib"),
			"usr/lib/systemd/systemd": exe()}, "", false},
		{"busybox sh, last of the list", map[string]*fstree.Node{"bin/sh": fstree.NewSymlink("busybox"), "bin/busybox": exe()}, "", false},
		{"empty root", nil, "", true},
		{"dangling symlink", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("/lib/systemd/systemd")}, "", true},
		{"not executable", map[string]*fstree.Node{"sbin/init": fstree.NewFile(0o644, 0, fstree.Bytes(nil))}, "", true},
		{"a directory", map[string]*fstree.Node{"sbin/init": fstree.NewDir(0o755)}, "", true},
		{"init= names one", map[string]*fstree.Node{"app/run": exe()}, "console=ttyAMA0 init=/app/run rootwait", false},
		{"init= replaces the list", map[string]*fstree.Node{"sbin/init": exe()}, "init=/app/run", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fstree.New()
			for p, n := range tc.put {
				if err := root.Put(p, n, fstree.NewDir(0o755)); err != nil {
					t.Fatal(err)
				}
			}
			if got := missingInit(root, tc.cmdline); (got != nil) != tc.missing {
				t.Errorf("missingInit = %q, want missing %v", got, tc.missing)
			}
		})
	}
}
