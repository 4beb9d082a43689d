package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxStatusError bounds the reload error readyz shows.
const maxStatusError = 300

// policyCheck is readyz's policy condition: a set is in force; its detail
// names the revision and, when the latest change was refused, why.
func policyCheck(p Policies, name string) check {
	set := p.Current()
	if set == nil {
		c := check{Detail: "no " + name + " loaded"}
		if rl, ok := p.(reloading); ok {
			if st := rl.Status(); st.LastError != "" {
				c.Detail += "; " + clip(st.LastError)
			}
		}
		return c
	}
	c := check{OK: true, Detail: "revision " + set.Revision()}
	if rl, ok := p.(reloading); ok {
		if st := rl.Status(); st.LastError != "" {
			c.Detail += "; latest change refused at " + st.LastErrorAt.UTC().Format(time.RFC3339) + ": " + clip(st.LastError)
		}
	}
	return c
}

func clip(s string) string {
	if len(s) <= maxStatusError {
		return s
	}
	r := []rune(s[:maxStatusError])
	return string(r[:len(r)-1]) + "…"
}

// registerPolicyMetrics exports the reload counters of the active and
// shadow policy sets and counts shadow differences.
func (s *Server) registerPolicyMetrics(reg prometheus.Registerer) {
	s.shadowDiffs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_policy_shadow_differences_total",
		Help: "Requests on which the shadow policy set would have decided differently from the active one.",
	})
	reg.MustRegister(s.shadowDiffs)
	for set, p := range map[string]Policies{"active": s.policies, "shadow": s.shadow} {
		if p == nil {
			continue
		}
		labels := prometheus.Labels{"set": set}
		// Per policy set in force: a reload starts a fresh cache, so these
		// are gauges that restart at zero, not counters.
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sluice_policy_decision_cache_hits", ConstLabels: labels,
				Help: "Decisions the policy set in force answered from its decision cache since it was put in force.",
			}, func() float64 { h, _ := p.Current().CacheStats(); return float64(h) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sluice_policy_decision_cache_misses", ConstLabels: labels,
				Help: "Decisions the policy set in force evaluated because they were not in its cache since it was put in force.",
			}, func() float64 { _, m := p.Current().CacheStats(); return float64(m) }),
		)
		rl, ok := p.(reloading)
		if !ok {
			continue
		}
		st := rl.Stats()
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "sluice_policy_activations_total", ConstLabels: labels,
				Help: "Policy changes put in force (compiled and passed their Rego tests) since start.",
			}, func() float64 { return float64(st.Activations.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "sluice_policy_rejections_total", ConstLabels: labels,
				Help: "Policy changes refused (compile error, failing Rego test, bad bundle signature); the policy in force stayed.",
			}, func() float64 { return float64(st.Rejections.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "sluice_policy_bundle_fetch_errors_total", ConstLabels: labels,
				Help: "Policy bundle downloads that failed (network, HTTP status, size).",
			}, func() float64 { return float64(st.FetchErrors.Load()) }),
		)
	}
}
