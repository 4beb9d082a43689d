package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"
)

// streamPolicy releases health/visits to analysts as the shipped policy
// does, but with no cap on rows: the memory check streams one answer of
// hundreds of MiB, which the shipped max_rows would cut short.
const streamPolicy = `package sluice

default decision := {"allow": false, "reason": "bench stream: analysts only"}

decision := {
	"allow": true,
	"reason": "bench stream: analyst read of health visits, uncapped",
	"fields": {
		"visit_id": "keep",
		"patient_id": "pseudonymize",
		"patient_name": "drop",
		"district": "keep",
		"hospital": "keep",
		"diagnosis": "keep",
		"visit_date": {"op": "generalize", "to": "month"},
		"cost": "keep",
	},
	"params": ["district", "page", "page_size"],
} if {
	input.action == "read"
	input.resource.source == "health"
	"analyst" in input.subject.roles
}
`

// streamResult is what streaming one large answer through Sluice cost.
type streamResult struct {
	upstreamBytes int64
	releasedBytes int64
	took          time.Duration
	before        memStatus // idle, just before the request
	after         memStatus
	sampledPeak   int64 // highest VmRSS seen while streaming
	// anonPeak and filePeak are the highest RssAnon and RssFile seen:
	// the program's memory, and the pages of mapped files (the usage
	// index's bbolt file) the kernel counts as resident.
	anonPeak, filePeak int64
}

// anonGrowth is the peak anonymous resident memory during the stream
// over that before it.
func (s *streamResult) anonGrowth() int64 { return max(s.after.anon, s.anonPeak) - s.before.anon }

// fileGrowth is the same of file-backed resident memory.
func (s *streamResult) fileGrowth() int64 { return max(s.after.file, s.filePeak) - s.before.file }

// growth is the peak resident size during the stream over the resident
// size before it.
func (s *streamResult) growth() int64 { return max(s.after.hwm, s.sampledPeak) - s.before.rss }

func (s *streamResult) mibPerSecond() float64 {
	return float64(s.upstreamBytes) / (1 << 20) / s.took.Seconds()
}

// streamCheck runs a second Sluice before the synthetic department, which
// answers every request with one page of size bytes, and fetches it once.
func (l *lab) streamCheck(ctx context.Context, size int64) (*streamResult, error) {
	pol := filepath.Join(l.work, "stream-policies")
	if err := os.MkdirAll(pol, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pol, "sluice.rego"), []byte(streamPolicy), 0o600); err != nil {
		return nil, err
	}
	c, base, err := l.serveSluice(ctx, "sluice-stream", func(cfg string) (string, error) {
		health := "upstream: " + l.upURLs["health"] + "\n"
		// The source timeout bounds the whole exchange, transform
		// included; hundreds of MiB take longer than the demo's 10s.
		timeout := regexp.MustCompile(`(?m)^(\s*)` + regexp.QuoteMeta(strings.TrimSuffix(health, "\n")) + `\n(\s*)timeout: .*$`)
		if !timeout.MatchString(cfg) {
			return "", fmt.Errorf("configuration has no timeout after %q", health)
		}
		cfg = timeout.ReplaceAllString(cfg, "${1}upstream: "+l.upURLs["stream"]+"\n${2}timeout: 30m")
		var err error
		for _, sub := range []struct{ section, dir string }{{"policy", pol}, {"audit", "audit-stream"}} {
			re := regexp.MustCompile(`(?m)^` + sub.section + `:\n  dir: .*$`)
			if !re.MatchString(cfg) {
				err = fmt.Errorf("configuration has no %s.dir", sub.section)
			}
			cfg = re.ReplaceAllLiteralString(cfg, sub.section+":\n  dir: "+sub.dir)
		}
		// The main Sluice still runs: this one needs its own witness
		// and state file, which each admit one process.
		cfg = regexp.MustCompile(`(?m)^(\s*)witness_file: .*$`).ReplaceAllString(cfg, "${1}witness_file: audit-stream-witness.json")
		cfg = regexp.MustCompile(`(?m)^state:\n(\s*)path: .*$`).ReplaceAllString(cfg, "state:\n${1}path: state/sluice-stream.db")
		// Open data would compute its tables from health/visits — here
		// the stream itself, read at start (up to a statistics request's
		// 100,000 records, whose live heap then set the collector's
		// goal at five times as much) and again each minute it fails:
		// not the one release this check measures.
		if err != nil {
			return "", err
		}
		return withoutOpenData(cfg)
	})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	pid := c.pid()
	time.Sleep(time.Second) // let start-up garbage be collected
	res := &streamResult{upstreamBytes: size}
	if res.before, err = readMem(pid); err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := readMem(pid); err == nil {
				res.sampledPeak = max(res.sampledPeak, m.rss)
				res.anonPeak, res.filePeak = max(res.anonPeak, m.anon), max(res.filePeak, m.file)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	start := time.Now()
	n, err := fetchCounting(ctx, base+"/v1/health/visits", "Bearer "+l.analyst)
	res.took = time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	res.releasedBytes = n
	if res.after, err = readMem(pid); err != nil {
		return nil, err
	}
	return res, nil
}

// fetchCounting GETs url and counts the answer's bytes, checking that it
// is a page of records, without holding it.
func fetchCounting(ctx context.Context, url, auth string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", auth)
	client := newClient(1)
	defer client.CloseIdleConnections()
	client.Timeout = 0
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	head := make([]byte, 512)
	k, _ := io.ReadFull(resp.Body, head)
	head = head[:k]
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, head)
	}
	if !bytes.HasPrefix(head, []byte(`{"items":[{`)) || bytes.Contains(head, []byte("patient_name")) {
		return 0, fmt.Errorf("answer does not start as released records: %.200s", head)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	return int64(k) + n, err
}

// soakResult is the resident memory of Sluice sampled under a long load.
type soakResult struct {
	rate    float64
	dur     time.Duration
	every   time.Duration
	samples []memSample
	load    *loadResult
	slope   float64 // bytes per minute, least squares over the samples after the first tenth
	// floorSlope is the same fit of the lowest RSS of each floorWindow():
	// the resident size the collector's pacing keeps coming back to,
	// which a leak raises and the heap's sawtooth between collections
	// (up to GOGC% of the live heap) does not.
	floorSlope float64
	floors     []memSample
	// liveSlope, heapSlope and stackSlope are the fit of the heap the last
	// collection found live, of the Go heap in use, and of goroutine stacks.
	liveSlope, heapSlope, stackSlope float64
	growth                           int64 // last sample over the first one after the first tenth
	maxRSS                           int64
	firstRSS                         int64
}

type memSample struct {
	at  time.Duration
	rss int64
	// anon and file split rss (see memStatus).
	anon, file int64
	// heap and stacks are the Go heap in use and goroutine stacks, and
	// live the heap the last collection found reachable, from Sluice's
	// /metrics: growth in them is the program's, growth in RSS alone is
	// the runtime's or the kernel's accounting.
	heap, stacks, live int64
	// fds counts Sluice's open files: connections from the load generator
	// and to the department, which an open-loop load opens more of after
	// every stall and keeps.
	fds int
}

// soakConns bounds the soak's connections. After a stall of the shared
// machine, an unbounded open-loop generator opens connections to keep its
// schedule and keeps them, and Sluice's resident memory follows their
// count (each holds buffers and a goroutine, here and upstream), which
// would hide or fake a leak; the soak holds the load's concurrency fixed.
const soakConns = 64

// soakRun loads Sluice at a fixed rate for dur over at most soakConns
// connections and samples its resident memory every interval.
func (l *lab) soakRun(ctx context.Context, t *target, rate float64, dur, every time.Duration) (*soakResult, error) {
	if t == nil || len(t.tier) == 0 {
		return nil, fmt.Errorf("no Sluice target")
	}
	pid := t.tier[0].pid()
	l.logf("soak: %.0f req/s for %s, resident memory every %s", rate, dur, every)
	res := &soakResult{rate: rate, dur: dur, every: every}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			if m, err := readMem(pid); err == nil {
				x := memSample{at: time.Since(start), rss: m.rss, anon: m.anon, file: m.file, fds: openFiles(pid)}
				if t.metrics != "" {
					if g, err := gauges(ctx, t.metrics, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_gc_heap_live_bytes"); err == nil {
						x.heap, x.stacks = int64(g["go_memstats_heap_inuse_bytes"]), int64(g["go_memstats_stack_inuse_bytes"])
						x.live = int64(g["go_gc_heap_live_bytes"])
					}
				}
				res.samples = append(res.samples, x)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	})
	lr, err := openLoop(ctx, t.w, rate, soakConns, 0, dur, nil)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	res.load = lr
	res.analyse()
	l.logf("soak: slope %.2f MiB/min, growth %s after the first tenth, max %s",
		res.slope/(1<<20), mib(res.growth), mib(res.maxRSS))
	return res, nil
}

// analyse fits a line to the samples after the first tenth (start-up and
// warm-up: pools, caches and the heap goal settle there).
func (s *soakResult) analyse() {
	if len(s.samples) == 0 {
		return
	}
	skip := len(s.samples) / 10
	xs := s.samples[skip:]
	s.firstRSS = xs[0].rss
	s.growth = xs[len(xs)-1].rss - xs[0].rss
	for _, x := range s.samples {
		s.maxRSS = max(s.maxRSS, x.rss)
	}
	rss := func(x memSample) int64 { return x.rss }
	s.slope = slope(xs, rss)
	s.floors = floors(xs, s.floorWindow())
	s.floorSlope = slope(s.floors, rss)
	s.liveSlope = slope(xs, func(x memSample) int64 { return x.live })
	s.heapSlope = slope(xs, func(x memSample) int64 { return x.heap })
	s.stackSlope = slope(xs, func(x memSample) int64 { return x.stacks })
}

// floorWindow is the span over which the soak takes the lowest RSS: several
// of Sluice's collection cycles at the soak's load, and several samples.
func (s *soakResult) floorWindow() time.Duration { return max(30*time.Second, 5*s.every) }

// floors returns the lowest-RSS sample of each whole window of xs, at the
// window's middle.
func floors(xs []memSample, window time.Duration) []memSample {
	if len(xs) == 0 {
		return nil
	}
	var out []memSample
	start := xs[0].at
	var low *memSample
	for i := range xs {
		x := &xs[i]
		if x.at-start >= window {
			if low != nil {
				f := *low
				f.at = start + window/2
				out = append(out, f)
			}
			start, low = start+window*((x.at-start)/window), nil
		}
		if low == nil || x.rss < low.rss {
			low = x
		}
	}
	return out // the last, partial window is left out
}

// slope is the least-squares slope of y over time, in bytes per minute.
func slope(xs []memSample, y func(memSample) int64) float64 {
	if len(xs) < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, x := range xs {
		t := x.at.Minutes()
		y := float64(y(x))
		sx, sy, sxx, sxy = sx+t, sy+y, sxx+t*t, sxy+t*y
	}
	n := float64(len(xs))
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// fsyncProbe is the latency of a 4 KiB append and fsync on the disk that
// holds the audit trail: the floor of what "audit before release" adds to
// a request, whatever the gateway does. cpu is what one costs the thread
// that asks for it (zero where the kernel does not say): on a virtual
// machine, the kernel's share of a sync is CPU time the bare proxy never
// spends.
type fsyncProbe struct {
	samples       int
	p50, p99, max time.Duration
	cpu           time.Duration
}

func probeFsync(dir string, dur time.Duration) (*fsyncProbe, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := bytes.Repeat([]byte("x"), 4096)
	var lat []time.Duration
	// The thread's own CPU time is the probe's alone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, cpuOK := threadCPU()
	for end := time.Now().Add(dur); time.Now().Before(end) && len(lat) < 2000; {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(start))
	}
	p := &fsyncProbe{samples: len(lat)}
	if cpu1, ok := threadCPU(); ok && cpuOK && len(lat) > 0 {
		p.cpu = (cpu1 - cpu0) / time.Duration(len(lat))
	}
	r := &loadResult{latencies: lat}
	r.finish()
	p.p50, p.p99, p.max = r.p50, r.p99, lat[len(lat)-1]
	return p, nil
}
