package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// measurement is one run against one target, with the CPU time its
// processes and the department's process spent in the measured window.
type measurement struct {
	res     *loadResult
	tierCPU time.Duration
	upCPU   time.Duration
	// stages is Sluice's account of the run (warm-up included), nil for
	// other targets.
	stages *stages
}

// cpuPerRequest is the target's CPU time per answered request.
func (m *measurement) cpuPerRequest() time.Duration {
	n := m.res.requests + m.res.errors
	if n == 0 {
		return 0
	}
	return m.tierCPU / time.Duration(n)
}

func (m *measurement) upPerRequest() time.Duration {
	n := m.res.requests + m.res.errors
	if n == 0 {
		return 0
	}
	return m.upCPU / time.Duration(n)
}

// cpuWindow reads the CPU time of the target's processes, and of the
// department's, when the measured window opens and closes.
type cpuWindow struct {
	tier   []int
	up     int
	t0, u0 time.Duration
	// tierCPU and upCPU are the CPU times spent in the window.
	tierCPU, upCPU time.Duration
	err            error
}

func (w *cpuWindow) read() (tier, up time.Duration) {
	t, err1 := treeCPU(w.tier...)
	u, err2 := treeCPU(w.up)
	if err := errors.Join(err1, err2); err != nil && w.err == nil {
		w.err = err
	}
	return t, u
}

func (w *cpuWindow) open() { w.t0, w.u0 = w.read() }

func (w *cpuWindow) close() {
	t, u := w.read()
	w.tierCPU, w.upCPU = t-w.t0, u-w.u0
}

// results is everything a full run measured, for the report.
type results struct {
	o        *options
	machine  machine
	loadTool string
	targets  []*target
	closed   map[string][]*measurement // by target key, one per round
	// paired are the pairs' runs, one per round (see pairedRuns).
	paired map[pair][][2]*measurement
	// disputed is how many records of the page (g) marks.
	disputed int
	fixed    []fixedRate
	stream   *streamResult
	fsync    []*fsyncProbe // at the start and at the end of the run
	// streamErr is why the stream check failed; the report says so and
	// the run fails after writing it.
	streamErr error
	soak      *soakResult
	notes     []string
	started   time.Time
	took      time.Duration
}

type fixedRate struct {
	fraction, rate float64
	// rounds holds every round's run of each target; runs the round of
	// median p99 (medianBy).
	rounds map[string][]*measurement
	runs   map[string]*measurement
}

// median is the round of median throughput.
func median(ms []*measurement) *measurement {
	return medianBy(ms, func(m *measurement) float64 { return m.res.throughput() })
}

// medianBy is the round whose key is the median of the rounds'.
func medianBy[K cmp.Ordered](ms []*measurement, key func(*measurement) K) *measurement {
	if len(ms) == 0 {
		return nil
	}
	s := slices.Clone(ms)
	slices.SortFunc(s, func(a, b *measurement) int { return cmp.Compare(key(a), key(b)) })
	return s[(len(s)-1)/2]
}

func benchmark(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.out == "" && !o.smoke {
		o.out = filepath.Join(root, "bench", "RESULTS.md")
	}
	work, err := os.MkdirTemp("", "sluice-bench-*")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "working directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	l := &lab{o: o, root: root, work: work, log: stderr}
	defer l.close()

	r := &results{o: o, started: time.Now(), closed: map[string][]*measurement{}, paired: map[pair][][2]*measurement{}}
	r.machine = describeMachine(ctx)
	r.machine.source = describeSource(ctx, root)
	if o.src != "" {
		r.machine.source = describeSource(ctx, o.src)
	}
	if err := l.setUp(ctx); err != nil {
		return err
	}
	if r.targets, err = l.targets(ctx); err != nil {
		return err
	}
	r.disputed = l.disputed
	r.machine.opa, _ = l.opaVersion()
	for _, t := range r.targets {
		if t.skipped != "" {
			l.logf("(%s) %s: SKIPPED: %s", t.key, t.name, t.skipped)
			r.notes = append(r.notes, fmt.Sprintf("(%s) %s was skipped: %s.", t.key, t.name, t.skipped))
		}
	}

	probe := func() {
		if p, err := probeFsync(l.demoDir, min(2*time.Second, o.duration)); err != nil {
			l.logf("fsync probe: %v", err)
		} else {
			r.fsync = append(r.fsync, p)
			l.logf("fsync of a 4 KiB append: p50 %s, p99 %s, max %s (%d samples), %s of CPU each", p.p50, p.p99, p.max, p.samples, p.cpu)
		}
	}
	probe()

	r.loadTool = o.load
	if r.loadTool == "auto" {
		r.loadTool = "go"
		if _, err := exec.LookPath("wrk"); err == nil {
			r.loadTool = "wrk"
		}
	}
	if r.loadTool == "go" && o.load == "auto" {
		l.logf("wrk is not installed (apt-get install wrk): the closed-loop runs use the built-in generator")
		r.notes = append(r.notes, "wrk was not installed; closed-loop runs used the built-in Go generator.")
	}
	if r.loadTool == "wrk" {
		if _, err := exec.LookPath("wrk"); err != nil {
			return errors.New("--load wrk: wrk is not installed (apt-get install wrk)")
		}
	}

	// Closed loop: rounds over all targets, interleaved, so that drift in
	// the machine's other load touches every target alike.
	for round := 1; round <= o.rounds; round++ {
		for _, t := range r.targets {
			if t.skipped != "" {
				continue
			}
			m, err := measure(ctx, t, l.upstream, func(win window) (*loadResult, error) {
				if r.loadTool == "wrk" {
					return wrkClosedLoop(ctx, t.w, o.conns, o.warmup, o.duration, win)
				}
				return closedLoop(ctx, t.w, o.conns, o.warmup, o.duration, win)
			})
			if err != nil {
				return fmt.Errorf("(%s) %s, closed loop: %w", t.key, t.name, err)
			}
			l.logf("round %d (%s) %-48s %8.0f req/s  p50 %-9s p99 %-9s cpu %s/req  errors %d",
				round, t.key, t.name, m.res.throughput(), m.res.p50, m.res.p99, m.cpuPerRequest(), m.res.errors)
			if m.stages != nil {
				l.logf("    stages: %s", m.stages)
			}
			r.closed[t.key] = append(r.closed[t.key], m)
		}
	}

	if err := r.pairedRuns(ctx, l); err != nil {
		return err
	}

	// Fixed rates, as fractions of Sluice's throughput (of the bare
	// proxy's when Sluice is not among the targets).
	ref := "e"
	if r.closed[ref] == nil {
		ref = "b"
	}
	if base := median(r.closed[ref]); base != nil {
		for _, frac := range o.rates {
			fr := fixedRate{fraction: frac, rate: float64(int(frac * base.res.throughput())),
				rounds: map[string][]*measurement{}, runs: map[string]*measurement{}}
			if fr.rate >= 1 {
				r.fixed = append(r.fixed, fr)
			}
		}
		// Rounds interleaved over the targets, as the closed loop's: a
		// p99 is the few slowest answers, and a stall of the shared
		// machine lands in whichever run it meets.
		for round := 1; round <= o.rounds; round++ {
			for _, fr := range r.fixed {
				for _, t := range r.targets {
					if t.skipped != "" || pairedOnly[t.key] {
						continue
					}
					m, err := measure(ctx, t, l.upstream, func(win window) (*loadResult, error) {
						return openLoop(ctx, t.w, fr.rate, maxInFlight, o.warmup, o.duration, win)
					})
					if err != nil {
						return fmt.Errorf("(%s) %s, %.0f req/s: %w", t.key, t.name, fr.rate, err)
					}
					l.logf("round %d rate %6.0f (%s) %-48s %8.0f req/s  p50 %-9s p99 %-9s cpu %s/req  errors %d overloaded %v",
						round, fr.rate, t.key, t.name, m.res.throughput(), m.res.p50, m.res.p99, m.cpuPerRequest(), m.res.errors, m.res.overloaded)
					if m.stages != nil {
						l.logf("    stages: %s", m.stages)
					}
					fr.rounds[t.key] = append(fr.rounds[t.key], m)
				}
			}
		}
		for _, fr := range r.fixed {
			for key, ms := range fr.rounds {
				fr.runs[key] = medianBy(ms, func(m *measurement) time.Duration { return m.res.p99 })
			}
		}
	}

	probe()

	if o.streamMB > 0 && strings.Contains(o.targets, "e") {
		if r.stream, err = l.streamCheck(ctx, int64(o.streamMB)<<20); err != nil {
			r.streamErr = fmt.Errorf("streaming %d MiB through Sluice: %w", o.streamMB, err)
			l.logf("%v", r.streamErr)
		} else {
			l.logf("stream %d MiB: resident growth %s (target < 64 MiB; anonymous %s, mapped files %s), %.0f MiB/s",
				o.streamMB, mib(r.stream.growth()), mib(r.stream.anonGrowth()), mib(r.stream.fileGrowth()), r.stream.mibPerSecond())
		}
	}
	if o.soak > 0 && strings.Contains(o.targets, "e") {
		rate := o.soakRate
		if rate <= 0 {
			if m := median(r.closed["e"]); m != nil {
				rate = float64(int(m.res.throughput() / 2))
			}
		}
		if rate <= 0 {
			rate = 200
		}
		var sl *target
		for _, t := range r.targets {
			if t.key == "e" {
				sl = t
			}
		}
		if r.soak, err = l.soakRun(ctx, sl, rate, o.soak, o.soakEvery); err != nil {
			return fmt.Errorf("soak: %w", err)
		}
	}
	r.took = time.Since(r.started)
	r.machine.loadEnd = loadAvg()

	report := r.markdown()
	fmt.Fprint(stdout, report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		l.logf("wrote %s", o.out)
	}
	return r.verdict()
}

// measure runs load against t with a CPU window around the measured part.
func measure(ctx context.Context, t *target, up *child, load func(window) (*loadResult, error)) (*measurement, error) {
	var tier []int
	for _, c := range t.tier {
		if err := c.exited(); err != nil {
			return nil, err
		}
		tier = append(tier, c.pid())
	}
	var before histograms
	if t.metrics != "" {
		var err error
		if before, err = scrape(ctx, t.metrics); err != nil {
			return nil, err
		}
	}
	win := &cpuWindow{tier: tier, up: up.pid()}
	res, err := load(win)
	if err != nil {
		return nil, err
	}
	var st *stages
	if t.metrics != "" {
		after, err := scrape(ctx, t.metrics)
		if err != nil {
			return nil, err
		}
		st = after.since(before)
	}
	if win.err != nil {
		return nil, win.err
	}
	for _, c := range t.tier {
		if err := c.exited(); err != nil {
			return nil, err
		}
	}
	return &measurement{res: res, tierCPU: win.tierCPU, upCPU: win.upCPU, stages: st}, nil
}

// verdict fails a run in which some target answered nothing, or answered
// errors: its figures would measure a fast failure.
func (r *results) verdict() error {
	var errs []error
	for _, t := range r.targets {
		for _, m := range r.closed[t.key] {
			if m.res.requests == 0 || m.res.errors > 0 {
				errs = append(errs, fmt.Errorf("(%s) %s: %d answers, %d errors (first: %s)",
					t.key, t.name, m.res.requests, m.res.errors, m.res.firstErr))
				break
			}
		}
	}
	if r.streamErr != nil {
		errs = append(errs, r.streamErr)
	}
	return errors.Join(errs...)
}

// pair is two targets loaded at once — half the connections each, over
// the same window, one pair per round — so that whatever else the shared
// machine does touches both alike, and their ratio answers one question.
type pair struct {
	a, b string // target keys; ratios are a's over b's
	// what the ratio measures, and the bound it is held to ("" for none).
	says, bound string
}

// pairs are the questions the paired runs answer.
var pairs = []pair{
	{a: "e", b: "f", says: "A release under a sharing grant (e) against the same view by the analyst's own rule (f)",
		bound: "Issue 20's bound: within 5%."},
	{a: "e", b: "h", says: "A release that names the people it holds (e: their keyed hashes in the outcome record, " +
		"added to the usage index) against the same release naming nobody (h)"},
	{a: "g", b: "e", says: "A release marking the records under objection (g) against the same release with none under objection (e)"},
}

// pairedOnly are the targets whose question the paired runs answer; the
// fixed rates leave them out.
var pairedOnly = map[string]bool{"g": true, "h": true}

// pairedRuns loads each pair of targets at once, round by round.
func (r *results) pairedRuns(ctx context.Context, l *lab) error {
	byKey := map[string]*target{}
	for _, t := range r.targets {
		if t.skipped == "" {
			byKey[t.key] = t
		}
	}
	o := r.o
	for _, pr := range pairs {
		a, b := byKey[pr.a], byKey[pr.b]
		if a == nil || b == nil {
			continue
		}
		for round := 1; round <= o.rounds; round++ {
			var ms [2]*measurement
			var errs [2]error
			var wg sync.WaitGroup
			for i, t := range []*target{a, b} {
				wg.Go(func() {
					ms[i], errs[i] = measure(ctx, t, l.upstream, func(win window) (*loadResult, error) {
						return closedLoop(ctx, t.w, max(o.conns/2, 1), o.warmup, o.duration, win)
					})
				})
			}
			wg.Wait()
			if err := errors.Join(errs[:]...); err != nil {
				return fmt.Errorf("(%s) and (%s) paired: %w", pr.a, pr.b, err)
			}
			l.logf("round %d paired (%s) %.0f req/s cpu %s/req, (%s) %.0f req/s cpu %s/req", round,
				pr.a, ms[0].res.throughput(), ms[0].cpuPerRequest(), pr.b, ms[1].res.throughput(), ms[1].cpuPerRequest())
			r.paired[pr] = append(r.paired[pr], ms)
		}
	}
	return nil
}
