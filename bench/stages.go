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
	// perRelease is the trail's commits (fsyncs) per release that waited
	// for its record: a cost in CPU the bare proxy does not pay.
	perRelease float64
	// policyFast is the share of policy decisions that took at most
	// fastPolicy (a bucket bound of the stage histogram): the decision
	// p99 is within it exactly when the share is at least 99%.
	policyFast float64
	decisions  float64
	// evaluated is the share of decisions the policy set evaluated rather
	// than answered from its decision cache.
	evaluated float64
	// slow is, by stage, the share of its observations over slowStage (a
	// bucket bound): the stages a run's tail latency is made of.
	slow map[string]float64
}

// slowStage is the bound the report counts stage observations above: the
// added latency issue 8 allows a request at its p99.
const slowStage = time.Millisecond

// fastPolicy is issue 8's bound on a policy decision's p99, one of the
// gateway's latency bucket bounds.
const fastPolicy = 100 * time.Microsecond

// metric is one series of a scrape: a histogram's sum, count and the
// counts of observations at most fastPolicy and at most slowStage, or a
// gauge's value in count.
type metric struct {
	sum, count, fast, withinSlow float64
}

// histograms is a scrape's histograms and decision cache gauges, by
// "family" or "family/stage".
type histograms map[string]metric

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
		switch {
		case f.GetType() == dto.MetricType_HISTOGRAM && strings.HasPrefix(name, "sluice_"):
			for _, m := range f.GetMetric() {
				key := name
				for _, l := range m.GetLabel() {
					if l.GetName() == "stage" {
						key += "/" + l.GetValue()
					}
				}
				hist := m.GetHistogram()
				x := metric{sum: hist.GetSampleSum(), count: float64(hist.GetSampleCount())}
				for _, b := range hist.GetBucket() {
					switch b.GetUpperBound() {
					case fastPolicy.Seconds():
						x.fast = float64(b.GetCumulativeCount())
					case slowStage.Seconds():
						x.withinSlow = float64(b.GetCumulativeCount())
					}
				}
				h[key] = x
			}
		case name == "sluice_policy_decision_cache_hits" || name == "sluice_policy_decision_cache_misses":
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "set" && l.GetValue() == "active" {
						h[name] = metric{count: m.GetGauge().GetValue()}
					}
				}
			}
		}
	}
	return h, nil
}

// since is what happened between two scrapes.
func (after histograms) since(before histograms) *stages {
	diff := func(key string) metric {
		a, b := after[key], before[key]
		return metric{sum: a.sum - b.sum, count: a.count - b.count, fast: a.fast - b.fast, withinSlow: a.withinSlow - b.withinSlow}
	}
	s := &stages{mean: map[string]time.Duration{}, slow: map[string]float64{}}
	for key := range after {
		if stage, ok := strings.CutPrefix(key, "sluice_stage_duration_seconds/"); ok {
			d := diff(key)
			s.mean[stage] = d.mean()
			if d.count > 0 {
				s.slow[stage] = 1 - d.withinSlow/d.count
			}
		}
	}
	s.fsync = diff("sluice_audit_fsync_duration_seconds").mean()
	if d := diff("sluice_audit_batch_records"); d.count > 0 {
		s.perCommit, s.commits = d.sum/d.count, d.count
	}
	if d := diff("sluice_stage_duration_seconds/audit"); d.count > 0 {
		s.perRelease = s.commits / d.count
	}
	if d := diff("sluice_stage_duration_seconds/policy"); d.count > 0 {
		s.decisions, s.policyFast = d.count, d.fast/d.count
	}
	hits, misses := diff("sluice_policy_decision_cache_hits").count, diff("sluice_policy_decision_cache_misses").count
	if hits+misses > 0 {
		s.evaluated = misses / (hits + misses)
	}
	return s
}

// mean is a histogram's mean observation, in seconds as Sluice observes
// them; 0 for none.
func (m metric) mean() time.Duration {
	if m.count <= 0 {
		return 0
	}
	return time.Duration(m.sum / m.count * float64(time.Second))
}

// stageOrder is the pipeline's order of stages.
var stageOrder = []string{"auth", "policy", "upstream", "transform", "audit"}

func (s *stages) String() string {
	var b strings.Builder
	for _, st := range stageOrder {
		fmt.Fprintf(&b, "%s %s, ", st, us(s.mean[st]))
	}
	fmt.Fprintf(&b, "fsync %s for %.1f records, %.2f per release", us(s.fsync), s.perCommit, s.perRelease)
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
