package policy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// versioned is a policy whose every decision names its version: reason
// "vN" and max_rows N.
func versioned(n int) string {
	return fmt.Sprintf(`package sluice

decision := {"allow": true, "reason": "v%d", "fields": {"a": "keep"}, "max_rows": %d}
`, n, n)
}

// allowsTest is a Rego test every versioned policy passes.
const allowsTest = "package sluice_test\n\nimport data.sluice\n\ntest_allows if sluice.decision.allow\n"

// version decides with set and returns the version the decision names,
// failing when the decision is not self-consistent.
func version(t testing.TB, set *Set) int {
	t.Helper()
	d, err := set.Decide(context.Background(), analystRead())
	if err != nil {
		t.Errorf("Decide (revision %s): %v", set.Revision(), err)
		return -1
	}
	n, err := strconv.Atoi(strings.TrimPrefix(d.Reason, "v"))
	if err != nil || d.MaxRows != n {
		t.Errorf("revision %s decided reason %q with max_rows %d: a mix of two policies", set.Revision(), d.Reason, d.MaxRows)
		return -1
	}
	return n
}

// write replaces a file the way an editor or `cp` does: in place.
func write(t testing.TB, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond for up to 30s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watch runs e.Watch(dir) until the test ends.
func watch(t *testing.T, e *Engine, dir string, debounce time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.Watch(ctx, dir, WatchOptions{Debounce: debounce, Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
}

func TestReloadDirPutsAPassingChangeInForce(t *testing.T) {
	dir := policyDir(t, map[string]string{"sluice.rego": versioned(1), "sluice_test.rego": allowsTest})
	e := NewEngine(load(t, dir))
	write(t, dir, "sluice.rego", versioned(2))
	if err := e.ReloadDir(context.Background(), dir, nil); err != nil {
		t.Fatalf("ReloadDir: %v", err)
	}
	if got := version(t, e.Current()); got != 2 {
		t.Errorf("version %d in force, want 2", got)
	}
	st := e.Status()
	if st.Revision != e.Current().Revision() || st.Source != dir || st.LastError != "" || st.ActivatedAt.IsZero() {
		t.Errorf("Status = %+v, want the new revision from %s and no error", st, dir)
	}
	// Reloading unchanged files changes nothing.
	before := e.Current()
	if err := e.ReloadDir(context.Background(), dir, nil); err != nil {
		t.Fatalf("ReloadDir unchanged: %v", err)
	}
	if e.Current() != before || e.Stats().Activations.Load() != 1 {
		t.Errorf("an unchanged directory was put in force again (%d activations)", e.Stats().Activations.Load())
	}
}

func TestReloadDirRefusesABadChangeAndKeepsThePolicyInForce(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string // in the error and Status().LastError
	}{
		{"syntax error", map[string]string{"sluice.rego": "package sluice\n\ndecision := {\n"}, "rego_parse_error"},
		{"compile error", map[string]string{"sluice.rego": "package sluice\n\ndecision := {\"allow\": x}\n"}, "rego_unsafe_var_error"},
		{"failing Rego test", map[string]string{"sluice.rego": "package sluice\n\ndecision := {\"allow\": false}\n"},
			"1 of 1 Rego tests failed: data.sluice_test.test_allows (sluice_test.rego:5)"},
		{"erring Rego test", map[string]string{"sluice_test.rego": "package sluice_test\n\ntest_divides if 1 / 0 == 1\n"}, "divide by zero"},
		{"broken data", map[string]string{"data.json": `{"a": `}, "data.json"},
		{"no policy left", map[string]string{"sluice.rego": "# moved away\n"}, "no .rego files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := policyDir(t, map[string]string{"sluice.rego": versioned(1), "sluice_test.rego": allowsTest})
			good := load(t, dir)
			e := NewEngine(good)
			for name, content := range tt.files {
				if name == "sluice.rego" && content == "# moved away\n" {
					os.Remove(filepath.Join(dir, name))
					continue
				}
				write(t, dir, name, content)
			}
			err := e.ReloadDir(context.Background(), dir, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReloadDir error %v, want one saying %q", err, tt.want)
			}
			if e.Current() != good {
				t.Fatal("a refused change replaced the policy in force")
			}
			if got := version(t, e.Current()); got != 1 {
				t.Errorf("version %d answers, want 1", got)
			}
			st := e.Status()
			if !strings.Contains(st.LastError, tt.want) || st.LastErrorAt.IsZero() || st.Revision != good.Revision() {
				t.Errorf("Status = %+v, want revision %s and the refusal", st, good.Revision())
			}
			if strings.Contains(st.LastError, dir) {
				t.Errorf("Status().LastError names the host path %s: %s", dir, st.LastError)
			}
			// The same bad files are not judged (or counted) again.
			e.ReloadDir(context.Background(), dir, nil)
			if n := e.Stats().Rejections.Load(); n != 1 {
				t.Errorf("%d rejections counted, want 1", n)
			}
			// Undoing the change clears the error.
			os.RemoveAll(dir)
			writeFiles(t, dir, map[string]string{"sluice.rego": versioned(1), "sluice_test.rego": allowsTest})
			if err := e.ReloadDir(context.Background(), dir, nil); err != nil {
				t.Fatalf("ReloadDir after undoing: %v", err)
			}
			if st := e.Status(); st.LastError != "" || e.Current() != good {
				t.Errorf("after undoing: Status = %+v, current %s; want no error and the same set", st, e.Current().Revision())
			}
		})
	}
}

func TestWatchReloadsUnderLoadWithoutMixingRevisions(t *testing.T) {
	dir := policyDir(t, map[string]string{"sluice.rego": versioned(0), "sluice_test.rego": allowsTest})
	e := NewEngine(load(t, dir))
	watch(t, e, dir, 20*time.Millisecond)

	// Deciders take one set per "request" and check that its decision is
	// the one its revision stands for.
	var (
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		decisions atomic.Int64
		byRev     sync.Map // revision → version
	)
	// Two deciders, pausing briefly between decisions, keep decisions
	// flowing through every swap without starving the reloads on a
	// two-core machine.
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Microsecond):
				}
				set := e.Current()
				n := version(t, set)
				if prev, loaded := byRev.LoadOrStore(set.Revision(), n); loaded && prev != n {
					t.Errorf("revision %s decided as v%d and as v%d", set.Revision(), prev, n)
				}
				decisions.Add(1)
			}
		})
	}
	const changes = 50
	for i := 1; i <= changes; i++ {
		if i%10 == 5 {
			// A broken change is refused; the last good version answers.
			refused := e.Stats().Rejections.Load()
			write(t, dir, "sluice.rego", "package sluice\n\ndecision := {\"allow\": \n")
			waitUntil(t, "the broken change is refused", func() bool { return e.Stats().Rejections.Load() > refused })
			if got := version(t, e.Current()); got != i-1 {
				t.Errorf("after a broken change v%d answers, want v%d", got, i-1)
			}
			if st := e.Status(); !strings.Contains(st.LastError, "rego_parse_error") {
				t.Errorf("Status().LastError = %q, want the parse error", st.LastError)
			}
		}
		write(t, dir, "sluice.rego", versioned(i))
		waitUntil(t, fmt.Sprintf("v%d is in force", i), func() bool { return version(t, e.Current()) == i })
	}
	close(stop)
	wg.Wait()
	if st := e.Status(); st.LastError != "" {
		t.Errorf("Status().LastError = %q after a good change, want none", st.LastError)
	}
	revisions := 0
	byRev.Range(func(any, any) bool { revisions++; return true })
	t.Logf("%d changes, %d activations, %d rejections, %d decisions over %d revisions",
		changes, e.Stats().Activations.Load(), e.Stats().Rejections.Load(), decisions.Load(), revisions)
	if a := e.Stats().Activations.Load(); a < changes {
		t.Errorf("%d activations, want at least %d", a, changes)
	}
}

func TestWatchFollowsNewSubdirectories(t *testing.T) {
	dir := policyDir(t, map[string]string{"sluice.rego": "package sluice\n\nimport data.sluice.lib\n\ndecision := {\"allow\": false, \"reason\": object.get(lib, \"reason\", \"none\")}\n"})
	e := NewEngine(load(t, dir))
	watch(t, e, dir, 20*time.Millisecond)
	reason := func() string {
		d, _ := e.Current().Decide(context.Background(), analystRead())
		return d.Reason
	}
	if err := os.Mkdir(filepath.Join(dir, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The new directory must be watched before a file in it changes.
	time.Sleep(100 * time.Millisecond)
	write(t, dir, "lib/lib.rego", "package sluice.lib\n\nreason := \"one\"\n")
	waitUntil(t, "lib.rego is in force", func() bool { return reason() == "one" })
	write(t, dir, "lib/lib.rego", "package sluice.lib\n\nreason := \"two\"\n")
	waitUntil(t, "the change in lib/ is in force", func() bool { return reason() == "two" })
}

func TestWatchReloadsABurstOfWritesOnce(t *testing.T) {
	dir := policyDir(t, map[string]string{"sluice.rego": versioned(0)})
	e := NewEngine(load(t, dir))
	watch(t, e, dir, 150*time.Millisecond)
	waitUntil(t, "the watch settles", func() bool { return true })
	time.Sleep(50 * time.Millisecond)
	for i := 1; i <= 30; i++ {
		write(t, dir, "sluice.rego", versioned(i))
	}
	waitUntil(t, "v30 is in force", func() bool { return version(t, e.Current()) == 30 })
	time.Sleep(300 * time.Millisecond)
	if a := e.Stats().Activations.Load(); a > 3 {
		t.Errorf("30 quick writes made %d activations, want them debounced into one or two", a)
	}
}

func TestWatchFailsOnAMissingDirectory(t *testing.T) {
	e := NewEngine(nil)
	err := e.Watch(context.Background(), filepath.Join(t.TempDir(), "nope"), WatchOptions{})
	if err == nil {
		t.Fatal("Watch of a missing directory succeeded")
	}
}

func TestANilSetDenies(t *testing.T) {
	e := NewEngine(nil)
	d, err := e.Current().Decide(context.Background(), analystRead())
	if err == nil {
		t.Error("Decide on no policy set gave no error")
	}
	assertDeny(t, d)
	if st := e.Status(); st.Revision != "" || st.Source != "" {
		t.Errorf("Status = %+v, want no revision", st)
	}
}
