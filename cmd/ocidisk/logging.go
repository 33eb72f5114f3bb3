package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// Log formats of --log-format. auto is human on a terminal, logfmt
// elsewhere (CI logs, files, pipes into other tools).
var logFormats = []string{"auto", "human", "logfmt", "json"}

// newLogger logs to stderr at the level -q and -v ask for, in the format
// --log-format asks for. Without a terminal, and without -v, only warnings
// and errors are logged. On a terminal it writes above the progress line.
func newLogger(e *env) *slog.Logger {
	level := slog.LevelInfo
	if e.quiet {
		level = slog.LevelError
	}
	if e.verbose {
		level = slog.LevelDebug
	}
	if !e.tty && !e.verbose {
		level = max(level, slog.LevelWarn)
	}
	var w io.Writer = e.stderr
	if e.status != nil {
		w = e.status
	}
	opts := &slog.HandlerOptions{Level: level}
	format := e.logFormat
	if format == "" || format == "auto" {
		format = "logfmt"
		if e.tty {
			format = "human"
		}
	}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts))
	case "human":
		return slog.New(&humanHandler{w: w, level: level, mu: &sync.Mutex{}})
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// humanHandler writes a log record as a person reads it on a terminal:
// "ocidisk: loading root image (source oci:./layout)", with "warning:" or
// "error:" in front of those levels, one line per record and no time.
type humanHandler struct {
	w      io.Writer
	level  slog.Leveler
	mu     *sync.Mutex
	attrs  []slog.Attr
	groups string
}

func (h *humanHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *humanHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString("ocidisk: ")
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("error: ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("warning: ")
	}
	b.WriteString(r.Message)
	var kv []string
	add := func(a slog.Attr) bool {
		kv = appendAttr(kv, h.groups, a)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if len(kv) > 0 {
		b.WriteString(" (" + strings.Join(kv, ", ") + ")")
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(b.Bytes())
	return err
}

// appendAttr renders an attribute as "key value", groups as prefixes.
func appendAttr(kv []string, prefix string, a slog.Attr) []string {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return kv
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			kv = appendAttr(kv, p, g)
		}
		return kv
	}
	v := a.Value.String()
	if v == "" || strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || r == ',' || r == ')' }) >= 0 {
		v = strconv.Quote(v)
	}
	return append(kv, fmt.Sprintf("%s%s %s", prefix, a.Key, v))
}

func (h *humanHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *humanHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.groups += name + "."
	return &n
}
