package pipeline

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/verity"
)

// TestPrehash: the worker hashes the contents a layer gives (behind a
// pointer) of files of a block or more, each once, as verity.Hasher does;
// a file whose content the build replaced after they were listed, a host
// file, content in memory and a small file get none; contents lists only
// what is under its directory; and the first lookup stops the worker.
func TestPrehash(t *testing.T) {
	layer := func(seed byte, n int) *fstree.Section {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i/7)
		}
		return &fstree.Section{R: bytes.NewReader(b), N: int64(n)}
	}
	host := filepath.Join(t.TempDir(), "host")
	if err := os.WriteFile(host, make([]byte, 3*verity.BlockSize), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := fstree.New()
	put := func(p string, n *fstree.Node) *fstree.Node {
		t.Helper()
		if err := tree.Put(p, n, fstree.NewDir(0o755)); err != nil {
			t.Fatal(err)
		}
		return n
	}
	big := put("usr/lib/big", fstree.NewFile(0o644, 3*verity.BlockSize+5, layer(1, 3*verity.BlockSize+5)))
	same := put("usr/lib/same", fstree.NewFile(0o644, big.Size, big.Content)) // a copy of the node, as merges make
	exact := put("usr/share/exact", fstree.NewFile(0o644, verity.BlockSize, layer(2, verity.BlockSize)))
	replaced := put("etc/replaced", fstree.NewFile(0o644, 2*verity.BlockSize, layer(3, 2*verity.BlockSize)))
	small := put("etc/small", fstree.NewFile(0o644, verity.BlockSize-1, layer(4, verity.BlockSize-1)))
	inMemory := put("etc/memory", fstree.NewFile(0o644, 2*verity.BlockSize, fstree.Bytes(make([]byte, 2*verity.BlockSize))))
	hostFile := put("etc/host", fstree.NewFile(0o644, 3*verity.BlockSize, fstree.HostFile(host)))

	if got := contents(tree, "usr/share"); len(got) != 1 || got[0] != exact.Content {
		t.Errorf("contents under usr/share: %v, want exact's alone", got)
	}
	listed := contents(tree, "")
	if len(listed) != 3 {
		t.Errorf("%d contents listed, want big (once), exact and replaced", len(listed))
	}
	salt := []byte("prehash test")
	p := startPrehash(salt, slog.New(slog.DiscardHandler))
	p.add(listed)
	replaced.Content = layer(5, 2*verity.BlockSize) // as the build writes /etc/fstab
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if files, _ := p.hashed(); files == int64(len(listed)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not hash what it was given")
		}
	}
	for _, tc := range []struct {
		name string
		n    *fstree.Node
		want bool
	}{
		{"big", big, true}, {"same", same, true}, {"exact", exact, true},
		{"replaced", replaced, false}, {"small", small, false}, {"in memory", inMemory, false}, {"host file", hostFile, false},
	} {
		got := p.digests(tc.n)
		if !tc.want {
			if got != nil {
				t.Errorf("%s: %d bytes of digests, want none", tc.name, len(got))
			}
			continue
		}
		r, err := tc.n.Content.Open()
		if err != nil {
			t.Fatal(err)
		}
		want, err := verity.NewHasher(salt).Blocks(nil, r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || len(want) != int(tc.n.Size+verity.BlockSize-1)/verity.BlockSize*verity.DigestSize {
			t.Errorf("%s: digests %x, want %x", tc.name, got, want)
		}
	}
	select {
	case <-p.done:
	default:
		t.Error("the worker runs on after the first lookup")
	}
	p.add(contents(tree, "")) // after the stop: neither hashed nor blocking
	if files, _ := p.hashed(); files != int64(len(listed)) {
		t.Errorf("%d files hashed after the stop, want %d", files, len(listed))
	}
}
