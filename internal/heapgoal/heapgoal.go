// Package heapgoal bounds how far the Go heap grows past its live data
// once that is large.
//
// The Go collector lets the heap grow to twice its live data before it
// collects again (GOGC=100). For a small build (a few tens of MB live)
// that is the right trade, but a root of a million entries keeps some
// 230 MB of tree live while its layers stream through: the heap then
// peaks near twice that, for garbage that is dead within a layer. Past a
// size, the heap gets a fixed headroom instead, or a fraction of its live
// data when that is more: more frequent collections, only where the
// heap is large, for a peak close to what is live. A policy is applied
// after every collection, as the live heap grows.
package heapgoal

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// Policy is how far the heap may grow past its live data: as Go does by
// default up to Small bytes live, and past that by Headroom bytes or
// Percent of the live heap, whichever is more.
type Policy struct {
	Small    uint64
	Headroom uint64
	Percent  int
}

// Default is ocidisk's. Measured with `ocidisk build` of a synthetic root
// of a million entries from a tar (bench/run --inputs million), two runs
// each on 2 cores: 468 MiB peak RSS with Go's default, 288-293 MiB with
// this policy, for twice the CPU in the collector (20.7 s user instead of
// 10.7 s) and 17.3 s wall instead of 15.5 s; a headroom of 24 MiB peaked
// at 302-306 MiB. Builds with less than 64 MiB live (the Debian tree of
// the tests peaks at 44 MiB) are unchanged.
var Default = Policy{Small: 64 << 20, Headroom: 16 << 20, Percent: 5}

// defaultPercent is Go's GOGC default.
const defaultPercent = 100

// percent is the GOGC value that gives a heap of live bytes its growth.
func (p Policy) percent(live uint64) int {
	if live <= p.Small || live == 0 {
		return defaultPercent
	}
	return min(max(p.Percent, int(p.Headroom*100/live)), defaultPercent)
}

// Install applies p after every collection from now on, for the life of
// the process. It does nothing when the environment sets GOGC or
// GOMEMLIMIT: who sets them has chosen.
func Install(p Policy) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	t := &tuner{p: p, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, last: defaultPercent}
	t.arm()
}

type tuner struct {
	p      Policy
	sample []metrics.Sample
	last   int
}

// arm has the next collection call after: a sentinel that nothing
// references is reclaimed by it.
func (t *tuner) arm() {
	runtime.AddCleanup(new([32]byte), func(t *tuner) { t.after() }, t)
}

func (t *tuner) after() {
	metrics.Read(t.sample)
	if v := t.sample[0].Value; v.Kind() == metrics.KindUint64 {
		t.set(v.Uint64())
	}
	t.arm()
}

func (t *tuner) set(live uint64) {
	if pc := t.p.percent(live); pc != t.last {
		debug.SetGCPercent(pc)
		t.last = pc
	}
}
