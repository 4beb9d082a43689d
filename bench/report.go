package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// machine describes where the run happened.
type machine struct {
	cpus      int
	cpuModel  string
	memory    string
	kernel    string
	goVersion string
	nginx     string
	wrk       string
	opa       string
	loadStart string
	loadEnd   string
	source    string
}

func describeMachine(ctx context.Context) machine {
	m := machine{cpus: runtime.NumCPU(), cpuModel: "unknown", memory: "unknown", kernel: "unknown",
		goVersion: runtime.Version(), nginx: "not installed", wrk: "not installed", loadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "nginx", "-v").CombinedOutput(); err == nil {
		m.nginx = strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
	}
	// wrk -v prints its version and exits 1.
	if out, _ := exec.CommandContext(ctx, "wrk", "-v").CombinedOutput(); bytes.HasPrefix(out, []byte("wrk ")) {
		m.wrk, _, _ = strings.Cut(strings.TrimSpace(string(out)), " [")
	}
	return m
}

// describeSource names the tree cmd/sluice was built from: its commit when
// it is a git work tree (uncommitted changes are built too), else its path.
func describeSource(ctx context.Context, dir string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "`" + dir + "`"
	}
	return "the work tree at commit " + strings.TrimSpace(string(out)) + " (with any uncommitted changes)"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// us formats a duration in microseconds, or milliseconds past 10 ms.
func us(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// markdown is the report: the machine, the command, the tables, and each
// issue-8 target with the figure measured here.
func (r *results) markdown() string {
	var b strings.Builder
	o := r.o
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	mode := "full run"
	if o.smoke {
		mode = "smoke run: figures too short to mean anything"
	}
	p("# Sluice benchmark results (%s)\n\n", mode)
	p("Written by `%s` on %s (took %s). All figures come from this one run on one machine;\n",
		o.cmdline, r.started.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second))
	p("the load generator, every server and the department's API share its cores. The ratios are the\n")
	p("meaningful part: absolute numbers move with whatever else the machine is doing.\n\n")
	p("## Machine\n\n")
	p("| | |\n| --- | --- |\n")
	p("| CPUs (nproc) | %d × %s |\n", r.machine.cpus, r.machine.cpuModel)
	p("| memory | %s |\n", r.machine.memory)
	p("| kernel | %s |\n", r.machine.kernel)
	p("| Go | %s |\n", r.machine.goVersion)
	p("| nginx | %s |\n", r.machine.nginx)
	p("| wrk | %s |\n", r.machine.wrk)
	p("| OPA (sidecar) | %s, built from the module go.mod pins |\n", r.machine.opa)
	p("| Sluice built from | %s |\n", r.machine.source)
	p("| load average (1, 5, 15 min) | %s at start, %s at end |\n", r.machine.loadStart, r.machine.loadEnd)
	for i, f := range r.fsync {
		when := "start"
		if i > 0 {
			when = "end"
		}
		cpu := ""
		if f.cpu > 0 {
			cpu = fmt.Sprintf("; %s of CPU each", us(f.cpu))
		}
		p("| fsync of a 4 KiB append, audit trail's disk (%s) | p50 %s, p99 %s, max %s (%d samples)%s |\n", when, us(f.p50), us(f.p99), us(f.max), f.samples, cpu)
	}
	p("\n")

	p("## Workload\n\n")
	p("`GET …/v1/health/visits?page_size=20` as the demo analyst: one page of 20 visit records. Each server runs in\n")
	p("a process of its own; the department's API (package demo, in its own process) is the upstream of all.\n\n")
	p("- (a) upstream direct: the department's API, with its credential.\n")
	p("- (b) bare `httputil.ReverseProxy`: path prefix cut, the department's credential set; no logging.\n")
	p("- (c) nginx `proxy_pass` with upstream keep-alive, the credential set by `proxy_set_header`; access log on.\n")
	p("- (d) sidecar pattern: the same Go proxy first POSTs `{method, path, query, authorization}` to `opa run --server`\n")
	p("  (policy: a no-op allow on GET /v1/… with a bearer token, so this is the pattern's floor) and proxies on `true`.\n")
	p("  Its CPU is the proxy's plus OPA's.\n")
	p("- (e) Sluice, `sluice serve` with the demo configuration and the shipped policies, the analyst reading under the\n")
	p("  demo's approved grant: EdDSA JWT verified, grants in force looked up, policy\n")
	p("  decided, query rebuilt, records transformed (identifiers dropped, date to month, cost to a band) and filtered\n")
	p("  to classes of at least five patients (min_k 5, the class table built once by the warm-up), the\n")
	p("  release's decision record queued before the department is asked and durable before release, its outcome\n")
	p("  record riding with a later commit (group commit: one write into the segment's preallocated space and one\n")
	p("  fdatasync per batch); JSON request log on stderr (to a file; lines gathered into one write per 100 ms).\n")
	p("- (f) the same Sluice on a state file whose hub holds no grant: the analyst reads the same view by its role's\n")
	p("  own rule (`policies/sluice.rego`); (e) against (f) is what reading under a grant costs.\n")
	if strings.Contains(o.targets, "g") {
		p("- (g) the same Sluice and grant, %d of the page's records under open objections (filed through the hub by the\n", r.disputed)
		p("  researcher, another department that received them): each release marks them in `disputed`.\n")
	}
	if strings.Contains(o.targets, "h") {
		p("- (h) the same Sluice and grant, health/visits declaring no privacy unit and no id: its releases name nobody\n")
		p("  (no keyed hashes in the outcome record, nothing for the usage index). Every release in (e) names its people.\n")
	}
	if strings.ContainsAny(o.targets, "gh") {
		p("\n(g) and (h) run in the closed loop and paired with (e), not at the fixed rates.\n")
	}
	p("\n")
	closedTool := "wrk (`wrk -t1 -c%d --latency`)"
	if r.loadTool == "go" {
		closedTool = "the built-in Go generator (%d connections)"
	}
	p("Closed loop: "+closedTool+", %s warm-up then %s measured, %d round(s) interleaved over the targets; the\n",
		o.conns, o.warmup, o.duration, o.rounds)
	p("round of median throughput is shown. CPU/request is the target's processes' utime+stime (from /proc/PID/stat,\n")
	p("nginx's workers included) over the measured window, divided by the requests answered in it.\n\n")

	b0 := median(r.closed["b"])
	p("## Closed loop: maximum throughput\n\n")
	p("| target | req/s | vs (b) | p50 | p99 | CPU/req | CPU vs (b) | upstream CPU/req | errors |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, t := range r.targets {
		if t.skipped != "" {
			p("| (%s) %s | skipped: %s | | | | | | | |\n", t.key, t.name, t.skipped)
			continue
		}
		m := median(r.closed[t.key])
		if m == nil {
			continue
		}
		vs, cvs := "–", "–"
		if b0 != nil {
			vs = ratio(m.res.throughput(), b0.res.throughput())
			cvs = ratio(float64(m.cpuPerRequest()), float64(b0.cpuPerRequest()))
		}
		p("| (%s) %s | %.0f | %s | %s | %s | %s | %s | %s | %d |\n", t.key, t.name, m.res.throughput(), vs,
			us(m.res.p50), us(m.res.p99), us(m.cpuPerRequest()), cvs, us(m.upPerRequest()), m.res.errors)
	}
	for _, pr := range pairs {
		runs := r.paired[pr]
		if len(runs) == 0 {
			continue
		}
		var tput, cpu []float64
		var rounds []string
		for _, ms := range runs {
			t := ms[0].res.throughput() / ms[1].res.throughput()
			c := float64(ms[0].cpuPerRequest()) / float64(ms[1].cpuPerRequest())
			tput, cpu = append(tput, t), append(cpu, c)
			rounds = append(rounds, fmt.Sprintf("%.2f× / %.2f×", t, c))
		}
		slices.Sort(tput)
		slices.Sort(cpu)
		p("\n%s, loaded at once\n(half the connections each, the same window, %d round(s)): (%s)/(%s) throughput %.2f×, CPU/request %.2f×\n",
			pr.says, len(runs), pr.a, pr.b, tput[len(tput)/2], cpu[len(cpu)/2])
		p("(medians; each round, throughput / CPU: %s).", strings.Join(rounds, ", "))
		if pr.bound != "" {
			p(" %s", pr.bound)
		}
		p("\n")
	}
	if o.rounds > 1 {
		p("\nEvery round's throughput (req/s), to show the spread:\n\n")
		for _, t := range r.targets {
			if xs := spread(r.closed[t.key], func(m *measurement) string { return fmt.Sprintf("%.0f", m.res.throughput()) }); xs != "" {
				p("- (%s) %s\n", t.key, xs)
			}
		}
	}

	if len(r.fixed) > 0 {
		p("\n## Fixed rates: latency at a given load\n\n")
		p("The built-in open-loop generator sends on a fixed schedule and measures each latency from the request's\n")
		p("intended send time (as wrk2 does), so queueing behind a slow answer is counted. Rates are fractions of\n")
		p("Sluice's closed-loop throughput above; %d round(s) interleaved over the targets, each %s warm-up then %s\n", r.o.rounds, r.o.warmup, r.o.duration)
		p("measured, and the round of median p99 shown. \"added p99\" is the target's p99 minus the bare proxy's at that rate.\n\n")
		p("| rate | target | achieved req/s | p50 | p99 | added p99 vs (b) | CPU/req | errors |\n")
		p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, fr := range r.fixed {
			base := fr.runs["b"]
			for _, t := range r.targets {
				m := fr.runs[t.key]
				if m == nil {
					continue
				}
				added := "–"
				if base != nil && t.key != "b" {
					added = signedUS(m.res.p99 - base.res.p99)
				}
				over := ""
				if m.res.overloaded {
					over = " (overloaded)"
				}
				p("| %.0f/s (%.2f×) | (%s) %s | %.0f%s | %s | %s | %s | %s | %d |\n", fr.rate, fr.fraction, t.key, t.name,
					m.res.throughput(), over, us(m.res.p50), us(m.res.p99), added, us(m.cpuPerRequest()), m.res.errors)
			}
		}
		p("\nEvery round's p99, to show the spread:\n\n")
		for _, fr := range r.fixed {
			for _, t := range r.targets {
				if xs := spread(fr.rounds[t.key], func(m *measurement) string { return us(m.res.p99) }); xs != "" {
					p("- %.0f/s, (%s) %s\n", fr.rate, t.key, xs)
				}
			}
		}
	}

	if s := r.stream; s != nil {
		p("\n## Memory: one large answer\n\n")
		p("A second `sluice serve` before a synthetic department that answers one page of %s of visit records, made on\n", mib(s.upstreamBytes))
		p("the fly; the policy is the analyst's without `max_rows` (`bench/memory.go`), so every record is transformed.\n")
		p("Resident memory from /proc/PID/status: VmRSS just before, VmHWM after, VmRSS sampled every 20 ms; and its\n")
		p("two parts, RssAnon (the program's: heap, stacks, runtime) and RssFile (pages of mapped files the kernel counts\n")
		p("as resident once touched: the binary, and the usage index's bbolt file, which grows with every person and record\n")
		p("the release names). The target is judged on the program's part.\n\n")
		p("| upstream bytes | released bytes | time | throughput | RSS before | peak RSS | growth | anonymous growth (target < 64 MiB) | mapped-file growth |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		p("| %s | %s | %s | %.0f MiB/s | %s | %s | %s | %s | %s |\n", mib(s.upstreamBytes), mib(s.releasedBytes),
			s.took.Round(time.Millisecond), s.mibPerSecond(), mib(s.before.rss), mib(max(s.after.hwm, s.sampledPeak)), mib(s.growth()),
			mib(s.anonGrowth()), mib(s.fileGrowth()))
	}
	if r.streamErr != nil {
		p("\n## Memory: one large answer\n\nFailed: %v\n", r.streamErr)
	}
	if s := r.soak; s != nil {
		p("\n## Memory: under a long load\n\n")
		p("Sluice at %.0f req/s (open loop, at most %d connections, so that resident memory does not follow how many\n", s.rate, soakConns)
		p("connections a stall of the machine made the generator open) for %s; VmRSS every %s. Slopes by least squares after\n", s.dur, s.every)
		p("the first tenth: of every sample, and of the lowest RSS in each %s (the floor: between collections the heap\n", s.floorWindow())
		p("grows by up to GOGC%% of the live heap and comes back, a sawtooth a fit of every sample reads as noise or slope;\n")
		p("a leak raises the floor). The heap found live by the last collection (go_gc_heap_live_bytes), the heap in use\n")
		p("and goroutine stacks come from Sluice's /metrics at the same moments.\n\n")
		p("| answered | errors | p99 | RSS after first tenth | RSS at end | max RSS | RSS slope | RSS floor slope | live heap slope | heap in use slope | stacks slope |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		last := int64(0)
		if n := len(s.samples); n > 0 {
			last = s.samples[n-1].rss
		}
		p("| %d | %d | %s | %s | %s | %s | %.2f MiB/min | %.2f MiB/min | %.3f MiB/min | %.2f MiB/min | %.3f MiB/min |\n", s.load.requests, s.load.errors, us(s.load.p99),
			mib(s.firstRSS), mib(last), mib(s.maxRSS), s.slope/(1<<20), s.floorSlope/(1<<20), s.liveSlope/(1<<20), s.heapSlope/(1<<20), s.stackSlope/(1<<20))
		if len(s.floors) > 0 {
			p("\nRSS floors (MiB): ")
			for i, f := range s.floors {
				if i > 0 {
					p(", ")
				}
				p("%.1f", float64(f.rss)/(1<<20))
			}
			p("\n")
		}
		p("\nRSS (anonymous + mapped files) / live heap / Go heap in use / stacks (MiB) and open files (connections, mostly), one sample per tenth of the run:\n\n")
		for i := range 11 {
			if len(s.samples) == 0 {
				break
			}
			x := s.samples[min(i*(len(s.samples)-1)/10, len(s.samples)-1)]
			p("- %s: %.1f (%.1f + %.1f) / %.1f / %.1f / %.1f MiB, %d files\n", x.at.Round(time.Second), float64(x.rss)/(1<<20),
				float64(x.anon)/(1<<20), float64(x.file)/(1<<20), float64(x.live)/(1<<20), float64(x.heap)/(1<<20), float64(x.stacks)/(1<<20), x.fds)
		}
	}

	p("\n## Issue 8 targets, as measured in this run\n\n")
	for _, line := range r.targetLines() {
		p("- %s\n", line)
	}
	p("- Policy decision p99 of an evaluation the decision cache misses, and transform ≥ 1.5× an encoding/json round trip:\n")
	p("  micro-benchmarks, not this harness: `go test ./policy -run '^$' -bench DecideLatency` and\n")
	p("  `go test ./anonymize -run '^$' -bench 'Transform|EncodingJSON'`.\n")
	p("\n## Where the time goes\n\n")
	var stageRows []string
	var slowRows []string
	if m := median(r.closed["e"]); m != nil && m.stages != nil {
		stageRows = append(stageRows, stageRow("closed loop", m.stages))
		slowRows = append(slowRows, slowRow("closed loop", m.stages))
	}
	for _, fr := range r.fixed {
		if m := fr.runs["e"]; m != nil && m.stages != nil {
			run := fmt.Sprintf("%.0f/s (%.2f×)", fr.rate, fr.fraction)
			stageRows = append(stageRows, stageRow(run, m.stages))
			slowRows = append(slowRows, slowRow(run, m.stages))
		}
	}
	if len(stageRows) > 0 {
		p("Sluice's own account of each run (its `/metrics`, scraped before and after; warm-up included): the mean\n")
		p("time of each pipeline stage, and of the audit trail's group commits (one write and one fdatasync each).\n")
		p("\"audit\" is the wait, after the transform, for the release's decision record (queued before the department was\n")
		p("asked) to be durable. \"policy ≤ 100 µs\" is the share of the run's decisions\n")
		p("the stage histogram puts at or under 100 µs (their p99 is within 100 µs when it is 99%% or more); \"evaluated\" the\n")
		p("share the policy set evaluated rather than answered from its decision cache. \"fsyncs per release\" counts the\n")
		p("trail's commits, outcome-only ones included, against the releases that waited for a record: each costs the\n")
		p("CPU the machine table gives for a sync, which the bare proxy never spends.\n\n")
		p("| run | auth | policy | policy ≤ 100 µs | evaluated | upstream | transform | audit | fsync | records per fsync | fsyncs per release |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, row := range stageRows {
			p("%s\n", row)
		}
		p("\n")
		p("Where the tail comes from: the share of each run's requests whose stage took over %s (a bucket bound of the\n", us(slowStage))
		p("stage histogram; at 1%% or more, the stage alone adds that much to the run's p99).\n\n")
		p("| run | %s |\n", strings.Join(stageOrder, " | "))
		p("| --- |%s\n", strings.Repeat(" ---: |", len(stageOrder)))
		for _, row := range slowRows {
			p("%s\n", row)
		}
		p("\n")
	}
	p("The harness measures from outside. To see inside the pipeline: `go test ./gateway -run '^$' -bench Pipeline`\n")
	p("(full pipeline with the real audit trail against a bare ReverseProxy, in process; add `-cpuprofile cpu.out`),\n")
	p("`go test ./policy -run '^$' -bench 'DecideLatency|DecideInputForms'`, and `go tool pprof` on the profiles.\n")
	if len(r.notes) > 0 {
		p("\n## Notes\n\n")
		for _, n := range r.notes {
			p("- %s\n", n)
		}
	}
	return b.String()
}

func signedUS(d time.Duration) string {
	if d < 0 {
		return "−" + us(-d)
	}
	return "+" + us(d)
}

// targetLines states each issue-8 target the harness measures.
func (r *results) targetLines() []string {
	var out []string
	b, d, e := median(r.closed["b"]), median(r.closed["d"]), median(r.closed["e"])
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**not met**"
	}
	if e != nil && b != nil {
		x := e.res.throughput() / b.res.throughput()
		out = append(out, fmt.Sprintf("Sluice throughput ≥ 0.7× the bare Go proxy: %.2f× (%.0f vs %.0f req/s; by CPU per request %.2f×, %s vs %s) — %s.",
			x, e.res.throughput(), b.res.throughput(), float64(b.cpuPerRequest())/float64(e.cpuPerRequest()),
			us(e.cpuPerRequest()), us(b.cpuPerRequest()), verdict(x >= 0.7)))
	}
	if e != nil && d != nil {
		x := e.res.throughput() / d.res.throughput()
		out = append(out, fmt.Sprintf("Sluice throughput ≥ 1.5× the sidecar pattern: %.2f× (%.0f vs %.0f req/s; by CPU per request %.2f×, %s vs %s) — %s.",
			x, e.res.throughput(), d.res.throughput(), float64(d.cpuPerRequest())/float64(e.cpuPerRequest()),
			us(e.cpuPerRequest()), us(d.cpuPerRequest()), verdict(x >= 1.5)))
	}
	for _, fr := range r.fixed {
		if fr.fraction != 0.5 {
			continue
		}
		fb, fe := fr.runs["b"], fr.runs["e"]
		if fb == nil || fe == nil {
			continue
		}
		added := fe.res.p99 - fb.res.p99
		var pairs []string
		for i, e := range fr.rounds["e"] {
			if i < len(fr.rounds["b"]) {
				pairs = append(pairs, signedUS(e.res.p99-fr.rounds["b"][i].res.p99))
			}
		}
		out = append(out, fmt.Sprintf("Added p99 over the bare proxy ≤ 1 ms at half of Sluice's maximum throughput (%.0f req/s): %s (median p99 %s vs %s; round by round %s) — %s.",
			fr.rate, signedUS(added), us(fe.res.p99), us(fb.res.p99), strings.Join(pairs, ", "), verdict(added <= time.Millisecond && !fe.res.overloaded)))
	}
	if m := median(r.closed["e"]); m != nil && m.stages != nil && m.stages.decisions > 0 {
		st := m.stages
		out = append(out, fmt.Sprintf("Policy decision p99 ≤ 100 µs, in the gateway under the closed loop: %.2f%% of %.0f decisions took ≤ 100 µs (%.3f%% evaluated, the rest from the decision cache) — %s.",
			100*st.policyFast, st.decisions, 100*st.evaluated, verdict(st.policyFast >= 0.99)))
	}
	if s := r.stream; s != nil {
		out = append(out, fmt.Sprintf("A %s answer streams with under 64 MiB resident growth: %s of the program's memory (%s in all, mapped files included) — %s.",
			mib(s.upstreamBytes), mib(s.anonGrowth()), mib(s.growth()), verdict(s.anonGrowth() < 64<<20)))
	}
	if s := r.soak; s != nil {
		// Flat: the fitted growth over the whole soak of the RSS floor,
		// and of the live heap, stays under 5% of the resident size (and
		// under 16 MiB).
		floor, live := s.floorSlope*s.dur.Minutes(), s.liveSlope*s.dur.Minutes()
		bound := min(16<<20, 0.05*float64(s.firstRSS))
		ok := len(s.floors) >= 3 && floor < bound && live < bound
		out = append(out, fmt.Sprintf("Memory flat under a %s load: RSS floor slope %.2f MiB/min, %s fitted over the run; live heap %.3f MiB/min, %s (bound: %s; every RSS sample: %.2f MiB/min) — %s.",
			s.dur, s.floorSlope/(1<<20), mib(int64(floor)), s.liveSlope/(1<<20), mib(int64(live)), mib(int64(bound)), s.slope/(1<<20), verdict(ok)))
	} else {
		out = append(out, "Memory flat under a 10-minute load: not run here (`go run ./bench --soak 10m`).")
	}
	return out
}

// spread lists a figure of every round, "" for none.
func spread(ms []*measurement, figure func(*measurement) string) string {
	xs := make([]string, len(ms))
	for i, m := range ms {
		xs[i] = figure(m)
	}
	return strings.Join(xs, ", ")
}

func slowRow(run string, s *stages) string {
	cells := []string{run}
	for _, st := range stageOrder {
		cells = append(cells, fmt.Sprintf("%.2f%%", 100*s.slow[st]))
	}
	return "| " + strings.Join(cells, " | ") + " |"
}

func stageRow(run string, s *stages) string {
	cells := []string{run}
	for _, st := range stageOrder {
		cells = append(cells, us(s.mean[st]))
		if st == "policy" {
			cells = append(cells, fmt.Sprintf("%.2f%%", 100*s.policyFast), fmt.Sprintf("%.3f%%", 100*s.evaluated))
		}
	}
	cells = append(cells, us(s.fsync), fmt.Sprintf("%.1f", s.perCommit), fmt.Sprintf("%.2f", s.perRelease))
	return "| " + strings.Join(cells, " | ") + " |"
}
