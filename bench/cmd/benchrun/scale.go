package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ocidisk/ocidisk/bench"
	"github.com/ocidisk/ocidisk/testimages/debian"
	"github.com/ocidisk/ocidisk/testimages/randtree"
)

// scaleVersion names the generator's output in the cache: change it when
// randtree.WriteRootTar changes what it writes.
const scaleVersion = 1

// scaleInput is the synthetic root of issue 20's scale target: one tar
// layer of a million entries (randtree.WriteRootTar), and the same tree
// extracted on the host with the kernel's modules in it and depmod run,
// which is what mke2fs -d is given. Both are kept between runs: extracting
// a million files takes minutes on an idle machine and can take an hour on
// a loaded one.
type scaleInput struct {
	label   string
	tar     string // the layer
	tree    string // the extracted root, modules included
	kernel  string // the kernel directory ocidisk merges
	entries int
}

// prepareScale makes (or finds) the scale input of n entries.
func prepareScale(ctx context.Context, c config, n int) (*scaleInput, error) {
	cacheDir, err := os.UserCacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir, "ocidisk-bench", fmt.Sprintf("root-%d-v%d", n, scaleVersion))
	in := &scaleInput{tar: filepath.Join(dir, "root.tar"), tree: filepath.Join(dir, "tree"), kernel: filepath.Join(dir, "kernel"), entries: n}
	done := filepath.Join(dir, "done")
	if _, err := os.Stat(done); err != nil {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(in.tree, 0o755); err != nil {
			return nil, err
		}
		fmt.Fprintf(c.progress, "scale: writing a root of %d entries and extracting it (once; kept in %s)\n", n, dir)
		f, err := os.Create(in.tar)
		if err != nil {
			return nil, err
		}
		_, err = randtree.WriteRootTar(f, 1, n)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		cache, err := debian.OpenCache(c.log)
		if err != nil {
			return nil, err
		}
		deb, err := cache.Kernel(ctx)
		if err != nil {
			return nil, err
		}
		steps := [][]string{
			{"tar", "-x", "-C", in.tree, "--numeric-owner", "-p", "--xattrs", "--xattrs-include=*", "-f", in.tar},
			{"dpkg-deb", "-x", deb, in.kernel},
			{"mkdir", "-p", filepath.Join(in.tree, "lib", "modules")},
		}
		for _, s := range steps {
			if _, err := output(ctx, s[0], s[1:]...); err != nil {
				return nil, err
			}
		}
		mods, err := filepath.Glob(filepath.Join(in.kernel, "lib", "modules", "*"))
		if err != nil || len(mods) == 0 {
			return nil, fmt.Errorf("%s: no lib/modules/VERSION", in.kernel)
		}
		for _, m := range mods {
			if _, err := output(ctx, "cp", "-a", m, filepath.Join(in.tree, "lib", "modules")); err != nil {
				return nil, err
			}
			if _, err := output(ctx, "depmod", "-b", in.tree, filepath.Base(m)); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			return nil, err
		}
	}
	st, err := os.Stat(in.tar)
	if err != nil {
		return nil, err
	}
	in.label = fmt.Sprintf("synthetic root (%d entries, %.0f MiB tar), kernel dir", n, float64(st.Size())/(1<<20))
	return in, nil
}

// measureScale times, in each round, ocidisk building the disk from the
// tar (no cache: an uncompressed tar is read in place) and mke2fs -d
// writing an ext4 of the extracted tree with the size and inode count of
// ocidisk's root filesystem. A first, untimed ocidisk build gives those
// and is checked with e2fsck -fn.
func measureScale(ctx context.Context, c config, in *scaleInput) ([]bench.Result, []float64, error) {
	work := filepath.Join(c.work, "scale")
	logs := filepath.Join(work, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, nil, err
	}
	img, ext4 := filepath.Join(work, "out.img"), filepath.Join(work, "mke2fs.ext4")
	args := []string{"build", "-q", "--board", "qemu-virt-arm64", "--kernel", "dir:" + in.kernel, "-o", img, "tar:" + in.tar}
	ocidisk := func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, c.ocidisk, args...)
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(work, "cache"))
		return cmd
	}
	fmt.Fprintf(c.progress, "%s: reference build\n", in.label)
	if out, err := ocidisk().CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("reference build: %w\n%s", err, out)
	}
	size, inodes, err := checkScaleImage(ctx, img)
	if err != nil {
		return nil, nil, fmt.Errorf("ocidisk's image: %w", err)
	}
	mke2fs := func() *exec.Cmd {
		return exec.CommandContext(ctx, "mke2fs", "-q", "-F", "-t", "ext4", "-L", "root", "-N", strconv.FormatInt(inodes, 10),
			"-d", in.tree, ext4, strconv.FormatInt(size>>10, 10)+"k")
	}
	runs := []struct {
		name string
		cmd  func() *exec.Cmd
	}{{bench.ScaleOcidisk, ocidisk}, {bench.ScaleMke2fs, mke2fs}}
	results := make([]bench.Result, len(runs))
	for i, r := range runs {
		results[i] = bench.Result{Input: in.label, Run: r.name}
	}
	var loads []float64
	for round := 1; round <= c.runs; round++ {
		for i, r := range runs {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			for _, p := range []string{img, ext4} {
				if err := os.RemoveAll(p); err != nil {
					return nil, nil, err
				}
			}
			cmd := r.cmd()
			s, load, err := measureRun(c, cmd, logs, round, r.name)
			loads = append(loads, load)
			if err != nil {
				return nil, nil, err
			}
			results[i].Samples = append(results[i].Samples, s)
			fmt.Fprintf(c.progress, "%s round %d/%d: %-13s %6.2fs wall %6.2fs CPU %5.0f MiB RSS %6.0f MiB written (load %.1f)\n",
				in.label, round, c.runs, r.name, s.Wall.Seconds(), s.CPU.Seconds(),
				float64(s.PeakRSS)/(1<<20), float64(s.Written)/(1<<20), loads[len(loads)-1])
		}
	}
	os.RemoveAll(work)
	return results, loads, nil
}

// checkScaleImage runs e2fsck -fn on the root filesystem of an ocidisk
// image (its second partition) and returns that filesystem's size in bytes
// and its inode count, for mke2fs.
func checkScaleImage(ctx context.Context, img string) (size, inodes int64, err error) {
	dump, err := output(ctx, "sfdisk", "-d", img)
	if err != nil {
		return 0, 0, err
	}
	var parts [][2]int64
	for _, line := range strings.Split(string(dump), "\n") {
		_, rest, ok := strings.Cut(line, " : start=")
		if !ok {
			continue
		}
		var start, n int64
		if _, err := fmt.Sscanf(strings.ReplaceAll(rest, " ", ""), "%d,size=%d", &start, &n); err != nil {
			return 0, 0, fmt.Errorf("partition line %q: %w", line, err)
		}
		parts = append(parts, [2]int64{start * 512, n * 512})
	}
	if len(parts) != 2 {
		return 0, 0, fmt.Errorf("want 2 partitions, got %d:\n%s", len(parts), dump)
	}
	fs := fmt.Sprintf("%s?offset=%d", img, parts[1][0])
	if _, err := output(ctx, "e2fsck", "-fn", fs); err != nil {
		return 0, 0, err
	}
	head, err := output(ctx, "dumpe2fs", "-h", fs)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(head), "\n") {
		if v, ok := strings.CutPrefix(line, "Inode count:"); ok {
			inodes, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return parts[1][1], inodes, err
		}
	}
	return 0, 0, fmt.Errorf("dumpe2fs -h: no inode count")
}
