package main

import (
	"math"
	"os"
	"runtime"
	"testing"
	"time"
)

const wrkOutput = `Running 10s test @ http://127.0.0.1:41000/v1/health/visits?page_size=20
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.21ms    1.04ms  21.37ms   80.11%
    Req/Sec    10.02k   512.33    11.01k    71.00%
  Latency Distribution
     50%    3.02ms
     75%    3.61ms
     90%    4.40ms
     99%  837.00us
  99716 requests in 10.01s, 412.11MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 16
Requests/sec:   9961.64
Transfer/sec:     41.17MB
`

func TestParseWrkReadsCountsPercentilesAndErrors(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 99716-16 || r.errors != 16+3 {
		t.Errorf("requests %d errors %d, want %d and %d", r.requests, r.errors, 99716-16, 19)
	}
	if r.elapsed != 10010*time.Millisecond {
		t.Errorf("elapsed %s, want 10.01s", r.elapsed)
	}
	if r.p50 != 3020*time.Microsecond || r.p99 != 837*time.Microsecond {
		t.Errorf("p50 %s p99 %s, want 3.02ms and 837µs", r.p50, r.p99)
	}
}

func TestParseWrkRefusesOutputWithoutLatencies(t *testing.T) {
	if _, err := parseWrk("  100 requests in 1.00s, 1MB read\n"); err == nil {
		t.Error("parseWrk accepted output without --latency's distribution")
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0, 1}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("percentile(1..100, %v) = %d, want %d", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("percentile(nil) = %d, want 0", got)
	}
}

func TestSlopeIsBytesPerMinute(t *testing.T) {
	var xs []memSample
	for i := range 10 {
		xs = append(xs, memSample{at: time.Duration(i) * 30 * time.Second, rss: 100<<20 + int64(i)<<20})
	}
	// 1 MiB every 30 s is 2 MiB a minute.
	if got, want := slope(xs, func(x memSample) int64 { return x.rss }), float64(2<<20); math.Abs(got-want) > 1 {
		t.Errorf("slope = %.0f, want %.0f", got, want)
	}
}

// TestFloorSlopeSeesALeakAndNotTheSawtooth: a heap that climbs by 20 MiB
// and drops back every 14 s, on a flat base, has a flat floor whatever
// the phase a fit of every sample catches it in; the same sawtooth on a
// base growing 1 MiB a minute has a floor growing 1 MiB a minute.
func TestFloorSlopeSeesALeakAndNotTheSawtooth(t *testing.T) {
	for _, leak := range []float64{0, 1} {
		s := &soakResult{dur: 10 * time.Minute, every: 2 * time.Second}
		for at := time.Duration(0); at <= s.dur; at += s.every {
			saw := float64(at%(14*time.Second)) / float64(14*time.Second) * 20
			base := 50 + leak*at.Minutes()
			s.samples = append(s.samples, memSample{at: at, rss: int64((base + saw) * (1 << 20))})
		}
		s.analyse()
		if got := s.floorSlope / (1 << 20); math.Abs(got-leak) > 0.1 {
			t.Errorf("leak %.0f MiB/min: floor slope %.2f MiB/min (every sample: %.2f)", leak, got, s.slope/(1<<20))
		}
		if n := len(s.floors); n < 15 || n > 18 {
			t.Errorf("%d floors of 30 s in 9 minutes", n)
		}
	}
}

func TestReplaceLineWantsExactlyOneMatch(t *testing.T) {
	got, err := replaceLine("a: 1\nlisten: 127.0.0.1:1\nb: 2\n", "listen: ", "listen: 127.0.0.1:2")
	if err != nil || got != "a: 1\nlisten: 127.0.0.1:2\nb: 2\n" {
		t.Errorf("replaceLine = %q, %v", got, err)
	}
	if _, err := replaceLine("  dir: a\n  dir: b\n", "dir: ", "dir: c"); err == nil {
		t.Error("replaceLine replaced one of two matching lines")
	}
}

func TestProcReadersSeeThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	st, err := readStat(os.Getpid())
	if err != nil || st.ppid != os.Getppid() {
		t.Fatalf("readStat = %+v, %v; want ppid %d", st, err, os.Getppid())
	}
	m, err := readMem(os.Getpid())
	if err != nil || m.rss <= 0 || m.hwm < m.rss {
		t.Fatalf("readMem = %+v, %v", m, err)
	}
	if _, err := treeCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
