package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Engine holds the policy set in force and swaps it atomically. A change
// (from a watched directory or a bundle server) is put in force only when
// it compiles and its Rego tests pass; otherwise the set in force stays,
// and Status says why the change was refused.
type Engine struct {
	cur   atomic.Pointer[Set]
	stats Stats

	// mu serialises changes and guards what follows.
	mu          sync.Mutex
	activatedAt time.Time
	lastErr     string
	lastErrAt   time.Time
	// rejected is the digest of the last refused change, so the same bytes
	// are not compiled and tested again on every event.
	rejected string
	// fetchErr is true while lastErr is a failure to fetch, which the next
	// successful fetch clears.
	fetchErr bool
}

// Stats counts what an Engine did. Its fields may be read at any time,
// e.g. by a Prometheus collector.
type Stats struct {
	// Activations counts policy sets put in force after the engine was
	// created.
	Activations atomic.Int64
	// Rejections counts changes refused: they did not compile, their Rego
	// tests failed, or their bundle was not validly signed.
	Rejections atomic.Int64
	// FetchErrors counts bundle downloads that failed before there was a
	// change to judge (network errors, error statuses).
	FetchErrors atomic.Int64
}

// Status is the state of an Engine, for readiness checks and operators.
type Status struct {
	// Revision of the set in force, "" when none is loaded yet.
	Revision string `json:"revision"`
	// Source of the set in force: its directory or bundle URL.
	Source string `json:"source,omitempty"`
	// ActivatedAt is when the set in force was put in force by a change;
	// zero for the set the engine started with.
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	// LastError says why the latest change was refused, "" when the
	// latest change was put in force (or there was none). File names in
	// it are relative to the policy directory or bundle.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// NewEngine returns an engine enforcing set. set may be nil while a bundle
// is awaited: every decision then denies.
func NewEngine(set *Set) *Engine {
	e := &Engine{}
	e.cur.Store(set)
	return e
}

// Current returns the set in force. A request should call it once and use
// that set throughout.
func (e *Engine) Current() *Set { return e.cur.Load() }

// Swap puts set in force unconditionally.
func (e *Engine) Swap(set *Set) { e.cur.Store(set) }

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// Status reports the set in force and the fate of the latest change.
func (e *Engine) Status() Status {
	set := e.Current()
	e.mu.Lock()
	defer e.mu.Unlock()
	return Status{
		Revision: set.Revision(), Source: set.Source(), ActivatedAt: e.activatedAt,
		LastError: e.lastErr, LastErrorAt: e.lastErrAt,
	}
}

// offer puts the snapshot in force if it differs from the set in force,
// compiles, and passes its own Rego tests. It returns the reason a change
// was refused; an unchanged snapshot is no error.
func (e *Engine) offer(ctx context.Context, snap *snapshot, dir, source string, log *slog.Logger) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.Current()
	if cur != nil && cur.digest == snap.digest && cur.source == source {
		// Back to what is in force (say, a broken edit was undone).
		e.lastErr, e.lastErrAt, e.rejected, e.fetchErr = "", time.Time{}, "", false
		return nil
	}
	if snap.digest == e.rejected {
		return fmt.Errorf("%s", e.lastErr)
	}
	set, err := compileSnapshot(ctx, snap)
	if err == nil {
		var results []TestResult
		if results, err = testSnapshot(ctx, snap); err == nil {
			err = testFailure(results)
		} else {
			err = fmt.Errorf("rego tests: %w", err)
		}
	}
	if err != nil {
		e.stats.Rejections.Add(1)
		e.rejected = snap.digest
		e.lastErr, e.lastErrAt, e.fetchErr = err.Error(), time.Now(), false
		log.Error("policy change refused; the policy in force stays",
			"source", source, "revision", cur.Revision(), "refused", snap.digest, "error", err)
		return err
	}
	set.dir, set.source = dir, source
	if snap.revision != "" {
		set.revision = snap.revision
	}
	e.cur.Store(set)
	e.stats.Activations.Add(1)
	e.activatedAt = time.Now()
	e.lastErr, e.lastErrAt, e.rejected, e.fetchErr = "", time.Time{}, "", false
	log.Info("policy change in force", "source", source, "revision", set.Revision(), "previous", cur.Revision())
	return nil
}

// fetchFailed records a failure to obtain a change at all.
func (e *Engine) fetchFailed(err error) {
	e.stats.FetchErrors.Add(1)
	e.mu.Lock()
	e.lastErr, e.lastErrAt, e.fetchErr = err.Error(), time.Now(), true
	e.mu.Unlock()
}

// fetchOK clears a fetch failure once fetching works again; a refused
// change stays reported until a good one replaces it.
func (e *Engine) fetchOK() {
	e.mu.Lock()
	if e.fetchErr {
		e.lastErr, e.lastErrAt, e.fetchErr = "", time.Time{}, false
	}
	e.mu.Unlock()
}

// refuse records a change refused before it could be offered (a bundle
// that is not validly signed).
func (e *Engine) refuse(err error) {
	e.stats.Rejections.Add(1)
	e.mu.Lock()
	e.lastErr, e.lastErrAt, e.fetchErr = err.Error(), time.Now(), false
	e.mu.Unlock()
}

// ReloadDir reads dir and puts it in force as a change would be (compile,
// run its Rego tests, swap only if both succeed). It is what Watch does on
// every change; call it directly to reload on a signal.
func (e *Engine) ReloadDir(ctx context.Context, dir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	snap, err := scan(dir)
	if err != nil {
		// The status may be shown to callers (readyz): no host paths.
		e.refuse(errors.New(strings.ReplaceAll(err.Error(), dir, "<policy dir>")))
		log.Error("policy change refused; the policy in force stays", "source", dir, "error", err)
		return err
	}
	return e.offer(ctx, snap, dir, dir, log)
}
