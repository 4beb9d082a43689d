package main

import (
	"context"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestStagesReadThePolicyShareAndTheCache: between two scrapes of a
// /metrics page shaped like Sluice's, since finds each stage's mean, the
// share of policy decisions within 100 µs, the share evaluated, and the
// trail's commits per release.
func TestStagesReadThePolicyShareAndTheCache(t *testing.T) {
	reg := prometheus.NewRegistry()
	stage := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_stage_duration_seconds",
		Buckets: []float64{.00005, .0001, .00025, .001, .0025},
	}, []string{"stage"})
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_audit_batch_records", Buckets: []float64{1, 4, 16}})
	var hits, misses float64
	reg.MustRegister(stage, batch,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_policy_decision_cache_hits", ConstLabels: prometheus.Labels{"set": "active"}},
			func() float64 { return hits }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_policy_decision_cache_misses", ConstLabels: prometheus.Labels{"set": "active"}},
			func() float64 { return misses }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_policy_decision_cache_hits", ConstLabels: prometheus.Labels{"set": "shadow"}},
			func() float64 { return 1e6 }))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	ctx := context.Background()

	stage.WithLabelValues("policy").Observe(0.5) // before the run: not counted
	batch.Observe(3)
	hits, misses = 10, 5
	before, err := scrape(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for range 97 {
		stage.WithLabelValues("policy").Observe(0.00002)
	}
	stage.WithLabelValues("policy").Observe(0.0001) // at the bound: within it
	stage.WithLabelValues("policy").Observe(0.0002)
	stage.WithLabelValues("policy").Observe(0.0003)
	stage.WithLabelValues("auth").Observe(0.000010)
	for i := range 200 { // 3 of 200 audit waits over 1 ms, one exactly at it
		v := 0.0003
		if i < 4 {
			v = []float64{0.001, 0.0012, 0.004, 0.05}[i]
		}
		stage.WithLabelValues("audit").Observe(v)
	}
	for range 50 { // 400 records, a release's two in each of 200, in 50 commits
		batch.Observe(8)
	}
	hits, misses = 108, 7
	after, err := scrape(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	st := after.since(before)
	if st.decisions != 100 || math.Abs(st.policyFast-0.98) > 1e-9 {
		t.Errorf("decisions %.0f, within 100 µs %.4f; want 100, 0.98", st.decisions, st.policyFast)
	}
	if math.Abs(st.evaluated-0.02) > 1e-9 {
		t.Errorf("evaluated %.4f, want 0.02 (2 misses of 100)", st.evaluated)
	}
	if st.mean["auth"] != 10*time.Microsecond {
		t.Errorf("auth mean %s, want 10µs", st.mean["auth"])
	}
	if got := st.slow["audit"]; math.Abs(got-3.0/200) > 1e-9 {
		t.Errorf("audit over 1 ms: %.4f, want 0.015 (3 of 200)", got)
	}
	if st.commits != 50 || st.perCommit != 8 || math.Abs(st.perRelease-0.25) > 1e-9 {
		t.Errorf("%.0f commits of %.1f records, %.3f per release; want 50 of 8, 0.25 (50 for 200 releases)", st.commits, st.perCommit, st.perRelease)
	}
	if got := st.slow["policy"]; got != 0 {
		t.Errorf("policy over 1 ms: %.4f, want 0 (the observation before the run is not counted)", got)
	}
}

// TestFsyncProbeCountsItsThreadsCPU: the probe's CPU per sync is its own
// thread's: some, and in all no more than the time the probe took.
func TestFsyncProbeCountsItsThreadsCPU(t *testing.T) {
	if _, ok := threadCPU(); !ok {
		t.Skip("the kernel does not report a thread's CPU time here")
	}
	dir := t.TempDir()
	start := time.Now()
	p, err := probeFsync(dir, 300*time.Millisecond)
	wall := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// One thread cannot spend more CPU than the time it ran for.
	if p.samples == 0 || p.cpu <= 0 || p.cpu*time.Duration(p.samples) > wall {
		t.Errorf("%d samples, %s of CPU each, %s in all; want some samples, costing some CPU and no more than the probe's time",
			p.samples, p.cpu, wall)
	}
	t.Logf("%d syncs: p50 %s, %s of CPU each", p.samples, p.p50, p.cpu)
}
