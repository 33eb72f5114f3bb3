package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocidisk/ocidisk/bench"
)

// measureInput runs the rounds for one input: in each, ocidisk cold,
// ocidisk warm (on the cold run's cache), the pipeline and the floor. It
// returns the samples and the 1-minute load average at the start of each
// run.
func measureInput(ctx context.Context, c config, in *input) ([]bench.Result, []float64, error) {
	results := make([]bench.Result, len(bench.Runs))
	for i, r := range bench.Runs {
		results[i] = bench.Result{Input: in.label, Run: r}
	}
	var loads []float64
	cache := filepath.Join(in.dir, "cache")
	img := filepath.Join(in.dir, "out.img")
	pipeWork, pipeImg := filepath.Join(in.dir, "pipeline"), filepath.Join(in.dir, "pipeline.img")
	logs := filepath.Join(in.dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, nil, err
	}
	for round := 1; round <= c.runs; round++ {
		for i, run := range bench.Runs {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			var cmd *exec.Cmd
			// Set-up, outside the timed region: no output or scratch of a
			// previous run left to delete, and nothing dirty in the page
			// cache for the next run to pay for.
			for _, p := range []string{img, pipeImg, pipeWork} {
				if err := os.RemoveAll(p); err != nil {
					return nil, nil, err
				}
			}
			switch run {
			case bench.OcidiskCold, bench.OcidiskWarm:
				if run == bench.OcidiskCold {
					if err := os.RemoveAll(cache); err != nil {
						return nil, nil, err
					}
				}
				cmd = exec.CommandContext(ctx, c.ocidisk, ocidiskArgs(in, img)...)
				cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
				if run == bench.OcidiskWarm {
					// The cold run kept no layer, only the mark that it saw
					// them: the second build caches them (see package
					// source). Warm is the third.
					prime := exec.CommandContext(ctx, c.ocidisk, ocidiskArgs(in, img)...)
					prime.Env = cmd.Env
					if out, err := prime.CombinedOutput(); err != nil {
						return nil, nil, fmt.Errorf("second build, to fill the cache: %w\n%s", err, out)
					}
					if err := os.Remove(img); err != nil {
						return nil, nil, err
					}
				}
			case bench.Pipeline:
				if err := os.MkdirAll(pipeWork, 0o755); err != nil {
					return nil, nil, err
				}
				cmd = exec.CommandContext(ctx, "bash", filepath.Join(c.scripts, "pipeline.sh"),
					c.crane, in.ref, in.kernel, in.boot, in.table, pipeWork, pipeImg)
			case bench.Floor:
				cmd = exec.CommandContext(ctx, "bash", append([]string{filepath.Join(c.scripts, "floor.sh"), in.data}, in.layers...)...)
			}
			s, load, err := measureRun(c, cmd, logs, round, run)
			loads = append(loads, load)
			if err != nil {
				return nil, nil, err
			}
			if round == 1 && run == bench.Pipeline {
				if err := checkImage(ctx, in, pipeImg); err != nil {
					return nil, nil, fmt.Errorf("the pipeline's image: %w", err)
				}
			}
			results[i].Samples = append(results[i].Samples, s)
			fmt.Fprintf(c.progress, "%s round %d/%d: %-12s %6.2fs wall %6.2fs CPU %5.0f MiB RSS %6.0f MiB written (load %.1f)\n",
				in.label, round, c.runs, run, s.Wall.Seconds(), s.CPU.Seconds(),
				float64(s.PeakRSS)/(1<<20), float64(s.Written)/(1<<20), loads[len(loads)-1])
		}
	}
	for _, p := range []string{img, pipeImg, pipeWork, cache} {
		os.RemoveAll(p)
	}
	return results, loads, nil
}

// checkImage makes sure, once, that the pipeline built the disk it is
// compared with: the reference's partition table, a root that e2fsck
// passes and a boot partition mtools reads with the boot files on it.
func checkImage(ctx context.Context, in *input, img string) error {
	dump, err := output(ctx, "sfdisk", "-d", img)
	if err != nil {
		return err
	}
	want, err := os.ReadFile(in.table)
	if err != nil {
		return err
	}
	var got []string
	for _, line := range strings.Split(string(dump), "\n") {
		if strings.HasPrefix(line, "device:") {
			continue
		}
		if _, rest, ok := strings.Cut(line, " : start="); ok {
			line = "start=" + rest
		}
		got = append(got, line)
	}
	if strings.Join(got, "\n") != string(want) {
		return fmt.Errorf("partition table\n%s\ndiffers from the reference's\n%s", strings.Join(got, "\n"), want)
	}
	var starts []int64
	for _, line := range got {
		var start int64
		if _, err := fmt.Sscanf(line, "start=%d", &start); err == nil {
			starts = append(starts, start*512)
		}
	}
	if len(starts) != 2 {
		return fmt.Errorf("want 2 partitions, got %d", len(starts))
	}
	if _, err := output(ctx, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, starts[1])); err != nil {
		return err
	}
	list, err := output(ctx, "mdir", "-b", "-/", "-i", fmt.Sprintf("%s@@%d", img, starts[0]), "::/")
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(in.boot)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.Contains(string(list), "/"+e.Name()) {
			return fmt.Errorf("boot partition lacks %s:\n%s", e.Name(), list)
		}
	}
	return nil
}

// measureRun measures cmd, run name of a round, after a sync, with its
// output in a log of its own under logs; it returns the sample and the
// load average at its start.
func measureRun(c config, cmd *exec.Cmd, logs string, round int, name string) (bench.Sample, float64, error) {
	logPath := filepath.Join(logs, fmt.Sprintf("%d-%s.log", round, strings.ReplaceAll(name, " ", "-")))
	logf, err := os.Create(logPath)
	if err != nil {
		return bench.Sample{}, 0, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	syscall.Sync()
	load := loadAverage()
	s, err := bench.Measure(cmd, c.time)
	if err != nil {
		return bench.Sample{}, load, fmt.Errorf("%s, round %d: %w (log: %s)", name, round, err, logPath)
	}
	return s, load, nil
}

// loadAverage returns the 1-minute load average, or -1.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		return -1
	}
	return f
}

// writeHeader describes the machine and the conditions of the run.
func writeHeader(w io.Writer, started time.Time, loads []float64, runs int) {
	model, mem := "unknown CPU", "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	slices.Sort(loads)
	load := "unknown"
	if len(loads) > 0 {
		load = fmt.Sprintf("median %.1f, max %.1f", loads[len(loads)/2], loads[len(loads)-1])
	}
	fmt.Fprintf(w, "%s, %d cores (%s), %s memory; medians of %d interleaved runs; 1-minute load average at the start of each run: %s\n\n",
		started.Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), model, mem, runs, load)
}
