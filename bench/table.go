package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// The runs of each input, in the order they are interleaved.
const (
	OcidiskCold = "ocidisk cold" // an empty cache directory
	OcidiskWarm = "ocidisk warm" // the cache of the cold run before it
	Pipeline    = "pipeline"     // crane export | tar -x, dpkg-deb, mke2fs -d, mkfs.vfat, mcopy, sfdisk, dd
	Floor       = "floor"        // decompressing every compressed input once, to /dev/null
)

// Runs lists the runs in their interleaved order.
var Runs = [...]string{OcidiskCold, OcidiskWarm, Pipeline, Floor}

// Targets are the limits for ocidisk's cold and warm runs (issue 7, made
// stricter by issue 20: a cold build, what a CI runner with an empty cache
// does, may cost little more than decompressing its inputs).
const (
	TargetSpeedup    = 6.0       // at least this many times faster than the pipeline
	TargetFloorRatio = 1.1       // at most this many times the floor's wall time
	TargetPeakRSS    = 200 << 20 // bytes
)

// The runs of the scale input, a synthetic root of a million entries
// (issue 20): ocidisk building the disk from it as one tar layer, and
// mke2fs -d writing an ext4 of the same tree extracted beforehand.
const (
	ScaleOcidisk = "ocidisk build"
	ScaleMke2fs  = "mke2fs -d"
)

// Targets for the scale input: at most half mke2fs -d's wall time, and
// a peak RSS that a million entries keep within (about 300 bytes each).
const (
	TargetScaleRatio   = 0.5
	TargetScalePeakRSS = 300 << 20
)

// Result is every sample of one run of one input.
type Result struct {
	Input   string
	Run     string
	Samples []Sample
}

// Median returns the median of each field on its own; with an even number
// of samples, the mean of the middle two.
func Median(ss []Sample) Sample {
	field := func(f func(Sample) int64) int64 {
		v := make([]int64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		switch n := len(v); {
		case n == 0:
			return 0
		case n%2 == 1:
			return v[n/2]
		default:
			return (v[n/2-1] + v[n/2]) / 2
		}
	}
	return Sample{
		Wall:    time.Duration(field(func(s Sample) int64 { return int64(s.Wall) })),
		CPU:     time.Duration(field(func(s Sample) int64 { return int64(s.CPU) })),
		PeakRSS: field(func(s Sample) int64 { return s.PeakRSS }),
		Written: field(func(s Sample) int64 { return s.Written }),
	}
}

// WriteTable writes the medians of rs as a Markdown table, one row per
// input and run, with the ratios of each run's wall time to the same
// input's pipeline and floor, and of its CPU time to the floor's.
func WriteTable(w io.Writer, rs []Result) error {
	var b strings.Builder
	b.WriteString("| input | run | wall s (min-max) | CPU s | peak RSS MiB | written MiB | wall / pipeline | wall / floor | CPU / floor |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rs {
		m := Median(r.Samples)
		lo := slices.MinFunc(r.Samples, func(a, b Sample) int { return cmp.Compare(a.Wall, b.Wall) })
		hi := slices.MaxFunc(r.Samples, func(a, b Sample) int { return cmp.Compare(a.Wall, b.Wall) })
		pipe, floor := find(rs, r.Input, Pipeline), find(rs, r.Input, Floor)
		fmt.Fprintf(&b, "| %s | %s | %.2f (%.2f-%.2f) | %.2f | %.0f | %.0f | %s | %s | %s |\n",
			r.Input, r.Run, m.Wall.Seconds(), lo.Wall.Seconds(), hi.Wall.Seconds(), m.CPU.Seconds(),
			mib(m.PeakRSS), mib(m.Written),
			ratio(m.Wall, pipe, func(s Sample) time.Duration { return s.Wall }),
			ratio(m.Wall, floor, func(s Sample) time.Duration { return s.Wall }),
			ratio(m.CPU, floor, func(s Sample) time.Duration { return s.CPU }))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteVerdicts says, for each input and ocidisk run, which targets hold.
func WriteVerdicts(w io.Writer, rs []Result) error {
	var b strings.Builder
	for _, r := range rs {
		if r.Run == ScaleOcidisk {
			base := find(rs, r.Input, ScaleMke2fs)
			if base == nil {
				continue
			}
			m, bm := Median(r.Samples), Median(base.Samples)
			toMke2fs := m.Wall.Seconds() / bm.Wall.Seconds()
			fmt.Fprintf(&b, "- %s, %s: %.2fx the wall time of mke2fs -d (target %gx: %s; CPU %.2fx); peak RSS %.0f MiB (target %d MiB: %s)\n",
				r.Input, r.Run, toMke2fs, TargetScaleRatio, met(toMke2fs <= TargetScaleRatio), m.CPU.Seconds()/bm.CPU.Seconds(),
				mib(m.PeakRSS), TargetScalePeakRSS>>20, met(m.PeakRSS <= TargetScalePeakRSS))
			continue
		}
		if r.Run != OcidiskCold && r.Run != OcidiskWarm {
			continue
		}
		m := Median(r.Samples)
		pipe, floor := find(rs, r.Input, Pipeline), find(rs, r.Input, Floor)
		if pipe == nil || floor == nil {
			continue
		}
		speedup := Median(pipe.Samples).Wall.Seconds() / m.Wall.Seconds()
		toFloor := m.Wall.Seconds() / Median(floor.Samples).Wall.Seconds()
		fmt.Fprintf(&b, "- %s, %s: %.1fx faster than the pipeline (target %gx: %s); %.2fx the floor (target %gx: %s); peak RSS %.0f MiB (target %d MiB: %s)\n",
			r.Input, r.Run, speedup, TargetSpeedup, met(speedup >= TargetSpeedup),
			toFloor, TargetFloorRatio, met(toFloor <= TargetFloorRatio),
			mib(m.PeakRSS), TargetPeakRSS>>20, met(m.PeakRSS < TargetPeakRSS))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func find(rs []Result, input, run string) *Result {
	for i := range rs {
		if rs[i].Input == input && rs[i].Run == run && len(rs[i].Samples) > 0 {
			return &rs[i]
		}
	}
	return nil
}

// ratio formats v over the median of field in base, or "-" without one.
func ratio(v time.Duration, base *Result, field func(Sample) time.Duration) string {
	if base == nil {
		return "-"
	}
	d := field(Median(base.Samples))
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(v)/float64(d))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}
