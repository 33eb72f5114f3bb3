package fstree

import (
	"errors"
	"testing"
)

func TestRealpath(t *testing.T) {
	tr := New()
	mk := func(p string, n *Node) {
		if err := tr.Put(p, n, NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
	}
	mk("usr/lib/modules/6.1/kernel", NewDir(0o755))
	mk("lib", NewSymlink("usr/lib"))
	mk("abs", NewSymlink("/usr/lib/modules"))
	mk("usr/lib/up", NewSymlink("../../.."))
	mk("etc/file", NewFile(0o644, 0, nil))
	mk("loop", NewSymlink("loop"))
	mk("sbin/init", NewSymlink("/lib/systemd/systemd")) // through lib -> usr/lib
	mk("usr/lib/systemd/systemd", NewFile(0o755, 0, nil))
	mk("top", NewSymlink("/"))
	mk("dot", NewSymlink("."))
	mk("absup", NewSymlink("/usr/../lib/modules"))
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"/lib/modules/6.1", "usr/lib/modules/6.1", nil},
		{"lib/modules/6.2/new", "usr/lib/modules/6.2/new", nil},
		{"abs/6.1/kernel", "usr/lib/modules/6.1/kernel", nil},
		{"usr/lib/up/lib", "usr/lib", nil},
		{"lib", "usr/lib", nil},
		{"etc/file", "etc/file", nil},
		{"etc/file/x", "", ErrNotDir},
		{"", "", nil},
		{"sbin/init", "usr/lib/systemd/systemd", nil},
		{"/sbin/init", "usr/lib/systemd/systemd", nil},
		{"top", "", nil},
		{"top/lib/modules", "usr/lib/modules", nil},
		{"dot/lib", "usr/lib", nil},
		{"absup/6.1", "usr/lib/modules/6.1", nil},
	} {
		got, err := tr.Realpath(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Realpath(%q) = %q, %v; want %v", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Realpath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := tr.Realpath("loop/x"); err == nil {
		t.Error("a symlink loop resolved")
	}
}
