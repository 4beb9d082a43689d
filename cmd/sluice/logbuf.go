package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The gateway logs a line for every request. Writing each one on its own
// cost a write system call per request, about 1% of the gateway's CPU
// under load, so lines are gathered and written together, as nginx's
// access_log buffer=/flush= and Envoy's access log flush interval do.
const (
	logFlushInterval = 100 * time.Millisecond
	logBufferBytes   = 32 << 10
)

// logBuffer gathers log lines for w: they are written once logBufferBytes
// have gathered, logFlushInterval after the first of them, or on Flush.
// A write error is kept and reported by the next Flush.
type logBuffer struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	pending bool // a flush is scheduled
	err     error
}

func newLogBuffer(w io.Writer) *logBuffer { return &logBuffer{w: w} }

// Write gathers p, one whole log line from a slog handler.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	switch {
	case len(b.buf) >= logBufferBytes:
		b.flushLocked()
	case !b.pending:
		b.pending = true
		time.AfterFunc(logFlushInterval, func() { b.Flush() })
	}
	return len(p), nil
}

// Flush writes whatever has gathered.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	err := b.err
	b.err = nil
	return err
}

func (b *logBuffer) flushLocked() {
	b.pending = false
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil && b.err == nil {
		b.err = err
	}
	if cap(b.buf) > 4*logBufferBytes {
		b.buf = nil // do not keep a rare huge line's buffer
	} else {
		b.buf = b.buf[:0]
	}
}

// flushingHandler writes a record at Warn or above, and everything
// gathered before it, at once: problems are not held back.
type flushingHandler struct {
	slog.Handler
	buf *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.buf.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.buf}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.buf}
}

// bufferedLogger is the gateway's JSON logger on w, gathering lines as
// logBuffer does; call the returned flush before exiting.
func bufferedLogger(w io.Writer) (*slog.Logger, func() error) {
	b := newLogBuffer(w)
	return slog.New(flushingHandler{slog.NewJSONHandler(b, nil), b}), b.Flush
}
