package ext4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/inspect/internal/rofs"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	mkext4 "github.com/ocidisk/ocidisk/mkfs/ext4"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

func openImage(t *testing.T, image string) *FS {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	fsys, err := Open(f, 0, st.Size())
	if err != nil {
		t.Fatalf("%s: %v", image, err)
	}
	return fsys
}

// lsEntry is one line of debugfs's `ls -p`: /ino/mode/uid/gid/name/size/.
type lsEntry struct {
	ino, mode, uid, gid, size string
}

// debugfsLs lists directories with debugfs, in one run.
func debugfsLs(t *testing.T, image string, dirs []string) map[string]map[string]lsEntry {
	t.Helper()
	debugfs := hosttool.Require(t, "debugfs", "e2fsprogs")
	cmds := filepath.Join(t.TempDir(), "cmds")
	var b strings.Builder
	for _, d := range dirs {
		fmt.Fprintf(&b, "ls -p \"/%s\"\n", d)
	}
	if err := os.WriteFile(cmds, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(debugfs, "-f", cmds, image).Output()
	if err != nil {
		t.Fatalf("debugfs: %v", err)
	}
	got := map[string]map[string]lsEntry{}
	var cur map[string]lsEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "debugfs: ls -p \"/"); ok {
			cur = map[string]lsEntry{}
			got[strings.TrimSuffix(d, "\"")] = cur
			continue
		}
		f := strings.Split(line, "/")
		if cur == nil || len(f) != 8 || f[5] == "." || f[5] == ".." || f[1] == "0" {
			continue
		}
		cur[f[5]] = lsEntry{ino: f[1], mode: f[2], uid: unsigned(f[3]), gid: unsigned(f[4]), size: f[6]}
	}
	return got
}

// unsigned undoes debugfs's printing of owners as signed 32-bit numbers.
func unsigned(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	return fmt.Sprint(uint32(int32(n)))
}

// unixMode turns an io/fs mode back into st_mode bits.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	for _, b := range []struct {
		f fs.FileMode
		u uint32
	}{{fs.ModeSetuid, 0o4000}, {fs.ModeSetgid, 0o2000}, {fs.ModeSticky, 0o1000}} {
		if m&b.f != 0 {
			u |= b.u
		}
	}
	switch {
	case m.IsDir():
		u |= 0o040000
	case m&fs.ModeSymlink != 0:
		u |= 0o120000
	case m&fs.ModeCharDevice != 0:
		u |= 0o020000
	case m&fs.ModeDevice != 0:
		u |= 0o060000
	case m&fs.ModeNamedPipe != 0:
		u |= 0o010000
	case m&fs.ModeSocket != 0:
		u |= 0o140000
	default:
		u |= 0o100000
	}
	return u
}

// compareDebugfs lists every directory with the reader and with debugfs
// and fails on any difference in names, inodes, modes, owners or sizes.
// It returns the reader's view, path to info.
func compareDebugfs(t *testing.T, image string, fsys *FS) map[string]fs.FileInfo {
	t.Helper()
	seen := map[string]fs.FileInfo{}
	dirs := []string{""}
	ours := map[string]map[string]lsEntry{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		seen[p] = info
		dir := path.Dir(p)
		if dir == "." {
			dir = ""
		}
		if ours[dir] == nil {
			ours[dir] = map[string]lsEntry{}
		}
		st := info.Sys().(*rofs.Stat)
		e := lsEntry{ino: fmt.Sprint(st.Ino), mode: fmt.Sprintf("%06o", unixMode(info.Mode())),
			uid: fmt.Sprint(st.UID), gid: fmt.Sprint(st.GID)}
		if !info.IsDir() {
			e.size = fmt.Sprint(info.Size())
			if info.Mode()&fs.ModeDevice != 0 || info.Mode()&(fs.ModeNamedPipe|fs.ModeSocket) != 0 {
				e.size = "0"
			}
		}
		ours[dir][d.Name()] = e
		if d.IsDir() {
			dirs = append(dirs, p)
			ours[p] = map[string]lsEntry{}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ours[""] == nil {
		ours[""] = map[string]lsEntry{}
	}
	theirs := debugfsLs(t, image, dirs)
	bad := 0
	for _, d := range dirs {
		if !maps.Equal(ours[d], theirs[d]) {
			for name, e := range theirs[d] {
				if ours[d][name] != e && bad < 10 {
					t.Errorf("/%s: %q: reader %+v, debugfs %+v", d, name, ours[d][name], e)
					bad++
				}
			}
			for name := range ours[d] {
				if _, ok := theirs[d][name]; !ok && bad < 10 {
					t.Errorf("/%s: %q: only the reader sees it", d, name)
					bad++
				}
			}
		}
	}
	return seen
}

// Random trees with every kind of entry, written by mkfs/ext4: debugfs
// judges the listing; content, symlink targets, device numbers, times and
// xattrs must be those of the tree.
func TestRandomTreesAgainstDebugfs(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			tree := randtree.New(seed, randtree.Options{Entries: 300})
			image := filepath.Join(t.TempDir(), "root.ext4")
			f, err := os.Create(image)
			if err != nil {
				t.Fatal(err)
			}
			w := mkext4.New(tree, mkext4.Options{Label: "root", Seed: []byte{byte(seed)}})
			size, err := w.MinSize()
			if err == nil {
				err = w.WriteAt(f, 0, size)
			}
			if err == nil {
				err = f.Truncate(size)
			}
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			fsys := openImage(t, image)
			seen := compareDebugfs(t, image, fsys)
			checkAgainstTree(t, fsys, tree, seen)
			if fsys.Label() != "root" || fsys.Type() != "ext4" {
				t.Errorf("label %q type %s", fsys.Label(), fsys.Type())
			}
		})
	}
}

func checkAgainstTree(t *testing.T, fsys *FS, tree *fstree.Tree, seen map[string]fs.FileInfo) {
	t.Helper()
	n := 0
	err := tree.Walk(func(p string, nd *fstree.Node) error {
		if p == "" || p == "lost+found" {
			return nil
		}
		info, ok := seen[p]
		if !ok {
			t.Errorf("%q: in the tree, not seen by the reader", p)
			return nil
		}
		n++
		st := info.Sys().(*rofs.Stat)
		if !info.ModTime().Equal(nd.Mtime) {
			t.Errorf("%q: mtime %v, want %v", p, info.ModTime(), nd.Mtime)
		}
		if len(nd.Xattrs) > 0 || len(st.Xattrs) > 0 {
			want := map[string][]byte{}
			for k, v := range nd.Xattrs {
				want[k] = []byte(v)
			}
			if !maps.EqualFunc(st.Xattrs, want, bytes.Equal) {
				t.Errorf("%q: xattrs %q, want %q", p, st.Xattrs, want)
			}
		}
		switch nd.Type {
		case fstree.TypeSymlink:
			if target, err := fsys.ReadLink(p); err != nil || target != nd.Target {
				t.Errorf("%q: target %q (%v), want %q", p, target, err, nd.Target)
			}
		case fstree.TypeCharDev, fstree.TypeBlockDev:
			if st.Major != nd.Major || st.Minor != nd.Minor {
				t.Errorf("%q: device %d:%d, want %d:%d", p, st.Major, st.Minor, nd.Major, nd.Minor)
			}
		case fstree.TypeRegular:
			want, err := fstree.ReadAll(nd)
			if err != nil {
				return err
			}
			got, err := fs.ReadFile(fsys, p)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%q: content differs (%d bytes, want %d): %v", p, len(got), len(want), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Errorf("only %d entries compared", n)
	}
}

// Filesystems made by mke2fs -d from a host directory, in several
// flavours (ext2 block maps, ext3, 1 KiB blocks, 128-byte inodes, inline
// data), then e2fsck -fyD to turn the big directory into an htree, read
// the same as debugfs and the host see them.
func TestMke2fs(t *testing.T) {
	mke2fs := hosttool.Require(t, "mke2fs", "e2fsprogs")
	e2fsck := hosttool.Require(t, "e2fsck", "e2fsprogs")
	src := t.TempDir()
	write := func(p string, b []byte) {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3000 {
		write(fmt.Sprintf("big/entry-with-a-longish-name-%05d", i), []byte(strconv.Itoa(i)))
	}
	write("etc/hostname", []byte("board\n"))
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // past the direct and single indirect blocks at 1 KiB
	write("usr/lib/big.bin", big)
	write("tiny", []byte("x"))
	write(strings.Repeat("long/", 30)+"target", []byte("at the end of a slow symlink"))
	if err := os.Symlink(strings.Repeat("long/", 30)+"target", filepath.Join(src, "slowlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("etc/hostname", filepath.Join(src, "fastlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib", filepath.Join(src, "lib")); err != nil {
		t.Fatal(err)
	}
	sparse, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	sparse.WriteAt([]byte("end"), 50<<20)
	sparse.Close()

	for _, tc := range []struct {
		name string
		args []string
		typ  string
	}{
		{"ext4", []string{"-t", "ext4"}, "ext4"},
		{"ext4-1k-128", []string{"-t", "ext4", "-b", "1024", "-I", "128"}, "ext4"},
		{"ext4-inline", []string{"-t", "ext4", "-O", "inline_data"}, "ext4"},
		{"ext3", []string{"-t", "ext3"}, "ext3"},
		{"ext2-1k", []string{"-t", "ext2", "-b", "1024"}, "ext2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			image := filepath.Join(t.TempDir(), "fs.img")
			args := append(append([]string{"-q", "-F", "-L", "mk-" + tc.name, "-U", "d2f4a1b0-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "-E", "root_owner=0:0"}, tc.args...), "-d", src, image, "96M")
			if out, err := exec.Command(mke2fs, args...).CombinedOutput(); err != nil {
				t.Fatalf("mke2fs: %v\n%s", err, out)
			}
			if out, err := exec.Command(e2fsck, "-fyD", image).CombinedOutput(); err != nil && !strings.Contains(err.Error(), "exit status 1") {
				t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
			}
			fsys := openImage(t, image)
			if fsys.Type() != tc.typ || fsys.Label() != "mk-"+tc.name || fsys.UUID() != "d2f4a1b0-1c2d-4e5f-8a9b-0c1d2e3f4a5b" {
				t.Errorf("type %s label %q uuid %s", fsys.Type(), fsys.Label(), fsys.UUID())
			}
			seen := compareDebugfs(t, image, fsys)
			for p, info := range seen {
				if !info.Mode().IsRegular() {
					continue
				}
				want, err := os.ReadFile(filepath.Join(src, p))
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				if got, err := fs.ReadFile(fsys, p); err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
					t.Errorf("%s: content differs from the host's (%d bytes, want %d): %v", p, len(got), len(want), err)
				}
			}
			if len(seen) < 3000 {
				t.Errorf("saw %d entries", len(seen))
			}
			for link, want := range map[string]string{"slowlink": strings.Repeat("long/", 30) + "target", "fastlink": "etc/hostname", "lib": "/usr/lib"} {
				if got, err := fsys.ReadLink(link); err != nil || got != want {
					t.Errorf("readlink %s: %q, %v", link, got, err)
				}
			}
			// Symlinks are followed inside the filesystem, absolute ones
			// from its root.
			if b, err := fs.ReadFile(fsys, "fastlink"); err != nil || string(b) != "board\n" {
				t.Errorf("fastlink: %q, %v", b, err)
			}
			if ents, err := fsys.ReadDir("lib"); err != nil || len(ents) != 1 || ents[0].Name() != "big.bin" {
				t.Errorf("ReadDir(lib) through the absolute link: %v, %v", ents, err)
			}
			// fstest reads every file byte by byte: spare it the big ones.
			for dir, want := range map[string]string{"etc": "hostname", "big": "entry-with-a-longish-name-02999"} {
				sub, err := fs.Sub(fsys, dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := fstest.TestFS(sub, want); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestCorrupt(t *testing.T) {
	tree := randtree.New(9, randtree.Options{Entries: 20})
	var buf writerAt
	w := mkext4.New(tree, mkext4.Options{})
	size, err := w.MinSize()
	if err != nil {
		t.Fatal(err)
	}
	buf.b = make([]byte, size)
	if err := w.WriteAt(&buf, 0, size); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		off  int
		b    []byte
		size int64
		want string
	}{
		{"no magic", 1024 + 56, []byte{0, 0}, size, "not an ext2/3/4 filesystem"},
		{"checksum", 1024 + 120, []byte("tampered"), size, "bad superblock: checksum"},
		{"truncated", 0, nil, size / 2, "truncated"},
	} {
		b := bytes.Clone(buf.b)
		copy(b[tc.off:], tc.b)
		if _, err := Open(bytes.NewReader(b), 0, tc.size); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

type writerAt struct{ b []byte }

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(w.b)) {
		return 0, io.ErrShortWrite
	}
	return copy(w.b[off:], p), nil
}
