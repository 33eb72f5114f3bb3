package main

import (
	"fmt"
	"io"
	"time"
)

// stageProgress draws one status line on a terminal for a multi-stage job:
// "write root: 45% 120.0/266.3 MiB". It redraws at most ten times a second.
type stageProgress struct {
	w     io.Writer
	last  time.Time
	shown bool
}

func (p *stageProgress) update(stage string, done, total int64) {
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last = now
	p.shown = true
	if total > 0 {
		fmt.Fprintf(p.w, "\r%s: %3d%% %s/%s\x1b[K", stage, done*100/total, mib(done), mib(total))
		return
	}
	fmt.Fprintf(p.w, "\r%s: %s\x1b[K", stage, mib(done))
}

func (p *stageProgress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
