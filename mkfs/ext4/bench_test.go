package ext4

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocidisk/ocidisk/bench"
	"github.com/ocidisk/ocidisk/fstree"
	"github.com/ocidisk/ocidisk/internal/hosttool"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// benchTree is the tree both writers get: every entry kind, files up to
// 64 KiB (a root filesystem's typical spread).
func benchTree(entries int) *fstree.Tree {
	// mke2fs -d packs xattrs less tightly than this package: keep them small
	// enough for both.
	return randtree.New(uint64(entries), randtree.Options{Entries: entries, MaxFileSize: 64 << 10, MaxXattrBytes: 1024})
}

// BenchmarkVsMke2fs writes the same trees with this package and with
// mke2fs -t ext4 -d (from a copy extracted beforehand, outside the timing),
// each in a child process, and reports the time ratio and both peak RSS.
// Run as root (ownership and device nodes must extract):
//
//	go test -run '^$' -bench VsMke2fs -benchtime 1x ./mkfs/ext4/
func BenchmarkVsMke2fs(b *testing.B) {
	mke2fs := hosttool.Require(b, "mke2fs", "e2fsprogs")
	if os.Getuid() != 0 {
		b.Skip("needs root to extract ownership and device nodes for mke2fs -d")
	}
	for _, n := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			tr := benchTree(n)
			src := filepath.Join(dir, "src")
			if err := extract(tr, src); err != nil {
				b.Fatal(err)
			}
			size, err := MinSize(tr, Options{})
			if err != nil {
				b.Fatal(err)
			}
			// mke2fs gets the same size and inode count.
			p, err := New(tr, Options{}).getPlan()
			if err != nil {
				b.Fatal(err)
			}
			g, err := newGeometry(size, p.inodes, p.inodes+p.inodes/5, true)
			if err != nil {
				b.Fatal(err)
			}
			inodes := strconv.FormatInt(g.groups*g.inodesPerGrp, 10)
			var ours, theirs time.Duration
			var oursRSS, theirsRSS, floorRSS int64
			for b.Loop() {
				img := filepath.Join(dir, "ours.ext4")
				os.Remove(img)
				out := bench.Child(b, "TestBenchChild", "EXT4_BENCH_CHILD="+strconv.Itoa(n), "EXT4_BENCH_OUT="+img)
				var ns, hwm int64
				if _, err := fmt.Sscanf(out, "wrote in %d ns, VmHWM %d kB", &ns, &hwm); err != nil {
					b.Fatalf("child said %q", out)
				}
				ours += time.Duration(ns)
				oursRSS = max(oursRSS, hwm)

				theirImg := filepath.Join(dir, "mke2fs.ext4")
				os.Remove(theirImg)
				args := []string{mke2fs, "-q", "-F", "-t", "ext4", "-d", src, "-N", inodes, "-E", "root_owner=0:0",
					theirImg, strconv.FormatInt(size/1024, 10) + "k"}
				out = bench.Child(b, "TestBenchChild", "EXT4_BENCH_RUN="+strings.Join(args, "\x1f"))
				var floor int64
				if _, err := fmt.Sscanf(out, "ran in %d ns, maxrss %d kB, launcher %d kB", &ns, &hwm, &floor); err != nil {
					b.Fatalf("launcher said %q", out)
				}
				theirs += time.Duration(ns)
				theirsRSS = max(theirsRSS, hwm)
				floorRSS = max(floorRSS, floor)
			}
			b.ReportMetric(float64(ours)/float64(theirs), "ours/mke2fs")
			b.ReportMetric(float64(ours.Milliseconds())/float64(b.N), "ours-ms")
			b.ReportMetric(float64(theirs.Milliseconds())/float64(b.N), "mke2fs-ms")
			b.ReportMetric(float64(oursRSS)/1024, "ours-MiB")
			b.ReportMetric(float64(theirsRSS)/1024, "mke2fs-MiB")
			b.Logf("ours %v, %.1f MiB; mke2fs %v, %.1f MiB (floor %.1f MiB: the launcher's own peak)",
				ours/time.Duration(b.N), float64(oursRSS)/1024, theirs/time.Duration(b.N), float64(theirsRSS)/1024, float64(floorRSS)/1024)
		})
	}
}

// TestBenchChild is the child process of BenchmarkVsMke2fs: it builds the
// tree and writes it (EXT4_BENCH_CHILD), or runs a command
// (EXT4_BENCH_RUN, fields separated by \\x1f), and prints the time and peak RSS.
func TestBenchChild(t *testing.T) {
	if run := os.Getenv("EXT4_BENCH_RUN"); run != "" {
		args := strings.Split(run, "\x1f")
		floor, err := bench.PeakRSS()
		if err != nil {
			t.Fatal(err)
		}
		d, maxrss, err := bench.Launch(args)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ran in %d ns, maxrss %d kB, launcher %d kB\n", d.Nanoseconds(), maxrss, floor>>10)
		return
	}
	n, _ := strconv.Atoi(os.Getenv("EXT4_BENCH_CHILD"))
	if n == 0 {
		t.Skip("run by BenchmarkVsMke2fs")
	}
	tr := benchTree(n)
	f, err := os.Create(os.Getenv("EXT4_BENCH_OUT"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := Write(f, 0, tr, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	d := time.Since(t0)
	peak, err := bench.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("wrote in %d ns, VmHWM %d kB\n", d.Nanoseconds(), peak>>10)
}

// extract materializes tr under dir on the host, as root: owners, modes,
// device nodes, hardlinks, xattrs and times.
func extract(tr *fstree.Tree, dir string) error {
	first := map[*fstree.Node]string{}
	var dirs []string
	var dirNodes []*fstree.Node
	err := tr.Walk(func(p string, n *fstree.Node) error {
		hp := filepath.Join(dir, p)
		if fp, ok := first[n]; ok && n.Type != fstree.TypeDir {
			return os.Link(fp, hp)
		}
		first[n] = hp
		var err error
		switch n.Type {
		case fstree.TypeDir:
			err = os.MkdirAll(hp, 0o700)
			dirs, dirNodes = append(dirs, hp), append(dirNodes, n)
		case fstree.TypeRegular:
			err = writeHostFile(hp, n)
		case fstree.TypeSymlink:
			err = os.Symlink(n.Target, hp)
		case fstree.TypeCharDev:
			err = unix.Mknod(hp, unix.S_IFCHR|0o600, int(unix.Mkdev(n.Major, n.Minor)))
		case fstree.TypeBlockDev:
			err = unix.Mknod(hp, unix.S_IFBLK|0o600, int(unix.Mkdev(n.Major, n.Minor)))
		case fstree.TypeFIFO:
			err = unix.Mkfifo(hp, 0o600)
		case fstree.TypeSocket:
			err = unix.Mknod(hp, unix.S_IFSOCK|0o600, 0)
		}
		if err != nil {
			return err
		}
		if n.Type != fstree.TypeDir {
			return setMeta(hp, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- { // children first: their creation touched the parent
		if err := setMeta(dirs[i], dirNodes[i]); err != nil {
			return err
		}
	}
	return nil
}

func writeHostFile(p string, n *fstree.Node) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if n.Size > 0 {
		r, err := n.Content.Open()
		if err != nil {
			return err
		}
		_, err = f.ReadFrom(r)
		r.Close()
		if err != nil {
			return err
		}
	}
	return f.Close()
}

func setMeta(p string, n *fstree.Node) error {
	for k, v := range n.Xattrs {
		if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
			return fmt.Errorf("%s: xattr %s: %w", p, k, err)
		}
	}
	if err := os.Lchown(p, int(n.UID), int(n.GID)); err != nil {
		return err
	}
	if n.Type != fstree.TypeSymlink {
		if err := unix.Fchmodat(unix.AT_FDCWD, p, n.UnixMode()&0o7777, 0); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.Mtime.UnixNano()), unix.NsecToTimespec(n.Mtime.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}
