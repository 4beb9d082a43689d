package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// stages is where Sluice spent a run's requests, as its own /metrics
// counts them: the mean time of each pipeline stage, and the audit
// trail's group commits (mean write+fsync time and records per fsync).
type stages struct {
	mean      map[string]time.Duration // by stage
	fsync     time.Duration
	perCommit float64
	commits   float64
}

// histograms is a scrape's histogram sums and counts, by
// "family" or "family/stage".
type histograms map[string][2]float64

// metricFamilies fetches and parses a Prometheus /metrics page.
func metricFamilies(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	return fams, nil
}

// scrape reads the histograms of Sluice's /metrics.
func scrape(ctx context.Context, url string) (histograms, error) {
	fams, err := metricFamilies(ctx, url)
	if err != nil {
		return nil, err
	}
	h := histograms{}
	for name, f := range fams {
		if f.GetType() != dto.MetricType_HISTOGRAM || !strings.HasPrefix(name, "sluice_") {
			continue
		}
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					key += "/" + l.GetValue()
				}
			}
			hist := m.GetHistogram()
			h[key] = [2]float64{hist.GetSampleSum(), float64(hist.GetSampleCount())}
		}
	}
	return h, nil
}

// since is what happened between two scrapes.
func (after histograms) since(before histograms) *stages {
	delta := func(key string) (sum, n float64) {
		a, b := after[key], before[key]
		return a[0] - b[0], a[1] - b[1]
	}
	mean := func(key string) time.Duration {
		sum, n := delta(key)
		if n <= 0 {
			return 0
		}
		return time.Duration(sum / n * float64(time.Second))
	}
	s := &stages{mean: map[string]time.Duration{}}
	for key := range after {
		if stage, ok := strings.CutPrefix(key, "sluice_stage_duration_seconds/"); ok {
			s.mean[stage] = mean(key)
		}
	}
	s.fsync = mean("sluice_audit_fsync_duration_seconds")
	if records, n := delta("sluice_audit_batch_records"); n > 0 {
		s.perCommit, s.commits = records/n, n
	}
	return s
}

// stageOrder is the pipeline's order of stages.
var stageOrder = []string{"auth", "policy", "upstream", "transform", "audit"}

func (s *stages) String() string {
	var b strings.Builder
	for _, st := range stageOrder {
		fmt.Fprintf(&b, "%s %s, ", st, us(s.mean[st]))
	}
	fmt.Fprintf(&b, "fsync %s for %.1f records", us(s.fsync), s.perCommit)
	return b.String()
}

// gauges reads the named gauges of a /metrics page.
func gauges(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	fams, err := metricFamilies(ctx, url)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, name := range names {
		if f := fams[name]; f != nil && len(f.GetMetric()) > 0 {
			out[name] = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return out, nil
}
