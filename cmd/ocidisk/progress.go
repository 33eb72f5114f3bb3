package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ocidisk/ocidisk/internal/bytesize"
)

// progress draws one status line on a terminal for a job of stages:
// "write root: 45% 120.0 MiB/266.3 MiB 21.3 MiB/s ETA 0:07". Stages that
// run at once (the root's layers and the kernel package, read side by
// side) share the line, each in short form. It redraws at most ten times
// a second. Everything else written to the terminal while it is shown
// goes through Write, which clears the line first and redraws it after,
// so that a log line never shares a line with the progress.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	line   string // what is drawn now; "" for nothing
	stages []*stage
	last   time.Time
}

// stage is one stage's last report.
type stage struct {
	name              string
	done, total       int64
	start, lastUpdate time.Time
}

// staleAfter is how long a stage that stopped reporting keeps its place
// on the line: a stage whose work has no known end never says it is done.
const staleAfter = 2 * time.Second

func newProgress(w io.Writer) *progress { return &progress{w: w} }

// update shows stage at done of total bytes (total 0 when unknown). A
// stage that reaches its total is drawn complete once, then leaves the
// line.
func (p *progress) update(name string, done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	i := slices.IndexFunc(p.stages, func(s *stage) bool { return s.name == name })
	if i < 0 {
		p.stages = append(p.stages, &stage{name: name, start: now})
		i = len(p.stages) - 1
	}
	s := p.stages[i]
	first := s.lastUpdate.IsZero()
	s.done, s.total, s.lastUpdate = done, total, now
	finished := total > 0 && done >= total
	if !first && !finished && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	// Stages that stopped reporting leave, the one just updated stays.
	p.stages = slices.DeleteFunc(p.stages, func(o *stage) bool { return o != s && now.Sub(o.lastUpdate) > staleAfter })
	p.draw(p.render(now))
	if finished {
		p.stages = slices.DeleteFunc(p.stages, func(o *stage) bool { return o == s })
	}
}

// render is the line for the stages: one in full, several in short form.
func (p *progress) render(now time.Time) string {
	if len(p.stages) == 1 {
		return p.stages[0].render(now, true)
	}
	parts := make([]string, len(p.stages))
	for i, s := range p.stages {
		parts[i] = s.render(now, false)
	}
	return strings.Join(parts, " | ")
}

// render is the stage's part of the line; full adds the rate and the
// time left.
func (s *stage) render(now time.Time, full bool) string {
	line := fmt.Sprintf("%s: %s", s.name, bytesize.Human(s.done))
	if s.total > 0 {
		line = fmt.Sprintf("%s: %3d%% %s/%s", s.name, s.done*100/s.total, bytesize.Human(s.done), bytesize.Human(s.total))
	}
	elapsed := now.Sub(s.start).Seconds()
	if !full || elapsed < 1 {
		return line
	}
	rate := float64(s.done) / elapsed
	line += fmt.Sprintf(" %s/s", bytesize.Human(int64(rate)))
	if s.total > 0 && s.done < s.total {
		eta := time.Duration(float64(s.total-s.done) / max(rate, 1) * float64(time.Second)).Round(time.Second)
		line += fmt.Sprintf(" ETA %d:%02d", int(eta.Minutes()), int(eta.Seconds())%60)
	}
	return line
}

// done clears the line, if one is drawn.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stages = nil
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
