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
// share of policy decisions within 100 µs, and the share evaluated.
func TestStagesReadThePolicyShareAndTheCache(t *testing.T) {
	reg := prometheus.NewRegistry()
	stage := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_stage_duration_seconds",
		Buckets: []float64{.00005, .0001, .00025, .001, .0025},
	}, []string{"stage"})
	var hits, misses float64
	reg.MustRegister(stage,
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
	if got := st.slow["policy"]; got != 0 {
		t.Errorf("policy over 1 ms: %.4f, want 0 (the observation before the run is not counted)", got)
	}
}
