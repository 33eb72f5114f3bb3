package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ocidisk/ocidisk/internal/bytesize"
)

// progress draws one status line on a terminal for a job of stages:
// "write root: 45% 120.0 MiB/266.3 MiB 21.3 MiB/s ETA 0:07". It redraws at
// most ten times a second. Everything else written to the terminal while
// it is shown goes through Write, which clears the line first and redraws
// it after, so that a log line never shares a line with the progress.
type progress struct {
	mu          sync.Mutex
	w           io.Writer
	line        string // what is drawn now; "" for nothing
	stage       string
	start, last time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

// update shows stage at done of total bytes (total 0 when unknown).
func (p *progress) update(stage string, done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if stage != p.stage {
		p.stage, p.start = stage, now
	} else if now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start).Seconds()
	line := fmt.Sprintf("%s: %s", stage, bytesize.Human(done))
	if total > 0 {
		line = fmt.Sprintf("%s: %3d%% %s/%s", stage, done*100/total, bytesize.Human(done), bytesize.Human(total))
	}
	if elapsed >= 1 {
		rate := float64(done) / elapsed
		line += fmt.Sprintf(" %s/s", bytesize.Human(int64(rate)))
		if total > 0 && done < total {
			eta := time.Duration(float64(total-done) / max(rate, 1) * float64(time.Second)).Round(time.Second)
			line += fmt.Sprintf(" ETA %d:%02d", int(eta.Minutes()), int(eta.Seconds())%60)
		}
	}
	p.draw(line)
}

// done clears the line, if one is drawn.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw("")
}

// Write writes b above the progress line.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := p.line
	p.draw("")
	n, err := p.w.Write(b)
	p.draw(line)
	return n, err
}

func (p *progress) draw(line string) {
	switch {
	case line == p.line:
		return
	case line == "":
		fmt.Fprint(p.w, "\r\x1b[K")
	default:
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	}
	p.line = line
}
