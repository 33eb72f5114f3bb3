// Command benchrun is the harness behind bench/run: for each Debian test
// tree it times `ocidisk build` cold and warm, the pipeline a user would
// otherwise script (bench/pipeline.sh) and the decompress-only floor
// (bench/floor.sh), interleaved; for the scale input (a synthetic root of a
// million entries) `ocidisk build` against mke2fs -d; and prints the table
// of medians.
//
//	benchrun --ocidisk BIN --crane BIN --scripts DIR [--runs N] [--inputs small,large,million] [--kernels dir,deb] [--scale-entries N] [--work DIR] [--out FILE]
//
// Every timed command runs as a child of this process, which measures it
// with bench.Measure; everything else (registry, reference image, cleanup,
// sync) happens between the timed regions.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ocidisk/ocidisk/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	ocidisk, crane, scripts string
	time                    string // GNU time
	runs                    int
	inputs, kernels         []string
	scaleEntries            int
	work, out               string
	log                     *slog.Logger
	progress                io.Writer
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("benchrun", pflag.ContinueOnError)
	var c config
	fs.StringVar(&c.ocidisk, "ocidisk", "", "the ocidisk binary to measure")
	fs.StringVar(&c.crane, "crane", "", "the crane binary the pipeline uses")
	fs.StringVar(&c.scripts, "scripts", "bench", "the directory of pipeline.sh and floor.sh")
	fs.StringVar(&c.time, "time", "/usr/bin/time", "GNU time, which measures each command's peak RSS")
	fs.IntVar(&c.runs, "runs", 5, "rounds of interleaved runs per input")
	fs.StringSliceVar(&c.inputs, "inputs", []string{"small", "large", "million"}, "inputs: small (the Debian tree), large (the large Debian tree), million (a synthetic root of --scale-entries entries, against mke2fs -d)")
	fs.IntVar(&c.scaleEntries, "scale-entries", 1000000, "entries of the million input's root")
	fs.StringSliceVar(&c.kernels, "kernels", []string{"dir", "deb"}, "kernels: dir (extracted beforehand; the layers are the only compressed input), deb (Debian's package, data.tar.xz)")
	fs.StringVar(&c.work, "work", filepath.Join(os.TempDir(), "ocidisk-bench"), "scratch directory (emptied first)")
	fs.StringVar(&c.out, "out", "", "also write the report (Markdown) to this file")
	verbose := fs.BoolP("verbose", "v", false, "log each step")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.ocidisk == "" || c.crane == "" || c.runs < 1 {
		return errors.New("need --ocidisk, --crane and --runs >= 1")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	c.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c.progress = stderr
	for _, p := range []*string{&c.ocidisk, &c.crane, &c.scripts, &c.work} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if err := os.RemoveAll(c.work); err != nil {
		return err
	}
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}

	started := time.Now().UTC()
	reg, err := startRegistry(ctx, filepath.Join(c.work, "registry"))
	if err != nil {
		return err
	}
	defer reg.stop()

	var (
		results []bench.Result
		loads   []float64
	)
	for _, name := range c.inputs {
		if name == "million" {
			in, err := prepareScale(ctx, c, c.scaleEntries)
			if err != nil {
				return fmt.Errorf("input %s: %w", name, err)
			}
			rs, ls, err := measureScale(ctx, c, in)
			if err != nil {
				return fmt.Errorf("input %s: %w", name, err)
			}
			results = append(results, rs...)
			loads = append(loads, ls...)
			continue
		}
		for _, kind := range c.kernels {
			in, err := prepare(ctx, c, reg, name, kind)
			if err != nil {
				return fmt.Errorf("input %s, kernel %s: %w", name, kind, err)
			}
			rs, ls, err := measureInput(ctx, c, in)
			if err != nil {
				return fmt.Errorf("input %s, kernel %s: %w", name, kind, err)
			}
			results = append(results, rs...)
			loads = append(loads, ls...)
		}
	}

	var report strings.Builder
	writeHeader(&report, started, loads, c.runs)
	if err := bench.WriteTable(&report, results); err != nil {
		return err
	}
	report.WriteString("\n")
	if err := bench.WriteVerdicts(&report, results); err != nil {
		return err
	}
	if _, err := io.WriteString(stdout, report.String()); err != nil {
		return err
	}
	if c.out != "" {
		return os.WriteFile(c.out, []byte(report.String()), 0o644)
	}
	return nil
}
