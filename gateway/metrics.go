package gateway

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// stage is a step of the request pipeline whose latency is observed.
type stage int

const (
	stageAuth stage = iota
	stagePolicy
	stageUpstream
	stageTransform
	stageAudit
	numStages
)

var stageNames = [numStages]string{"auth", "policy", "upstream", "transform", "audit"}

// metrics are the gateway's Prometheus collectors. Labels never carry a
// consumer, a query value or anything else a caller chose freely, so the
// series stay bounded and hold no personal data.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	stages   *prometheus.HistogramVec
	// stage holds stages' histograms, looked up once: every request
	// observes several.
	stage     [numStages]prometheus.Observer
	fallbacks prometheus.Counter
	released  *prometheus.CounterVec
	epsilon   *prometheus.CounterVec
	// usageBehind counts releases the usage index could not take at once
	// (added later from the trail).
	usageBehind prometheus.Counter
}

// latencyBuckets span 50µs to 10s: policy and transform stages are tens of
// microseconds, upstream exchanges milliseconds to seconds.
var latencyBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}

func newMetrics(reg *prometheus.Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_requests_total",
			Help: "Requests answered, by route, policy decision (allow, deny, error, none) and HTTP status.",
		}, []string{"route", "decision", "status"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_stage_duration_seconds",
			Help:    "Time spent in each pipeline stage: auth, policy, upstream (until response headers), transform, audit (until durable).",
			Buckets: latencyBuckets,
		}, []string{"stage"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_masking_fallbacks_total",
			Help: "Values redacted because their operator could not handle them (wrong type, invalid identifier).",
		}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_records_released_total",
			Help: "Records released to callers, by source and dataset.",
		}, []string{"source", "dataset"}),
		epsilon: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_privacy_epsilon_spent_total",
			Help: "Privacy loss ε charged to the budget ledger by statistics releases, by source and dataset.",
		}, []string{"source", "dataset"}),
		usageBehind: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_usage_index_deferred_total",
			Help: "Releases the usage index could not take when they were made; each is added from the audit trail before the index answers again.",
		}),
	}
	reg.MustRegister(m.requests, m.stages, m.fallbacks, m.released, m.epsilon, m.usageBehind)
	for st, name := range stageNames {
		m.stage[st] = m.stages.WithLabelValues(name)
	}
	return m
}

// RegisterDefaultCollectors adds the Go runtime and process collectors to
// reg, for a registry that serves a whole process. Besides the usual
// go_memstats_* it exports go_gc_heap_live_bytes, the heap the last
// collection found reachable: the figure a leak moves, where the heap in
// use swings with the collector's pacing.
func RegisterDefaultCollectors(reg *prometheus.Registry) {
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// lap observes the time since the exchange's previous lap as stage.
func (s *Server) lap(x *exchange, st stage) {
	now := s.now()
	s.metrics.stage[st].Observe(now.Sub(x.lap).Seconds())
	x.lap = now
}

// countRequest records one answered request.
func (s *Server) countRequest(x *exchange) {
	decision := x.ev.Decision
	if decision == "" {
		decision = "none"
	}
	s.metrics.requests.WithLabelValues(x.route, decision, strconv.Itoa(x.ev.Status)).Inc()
}

// serveMetrics is GET /metrics in the Prometheus text format.
func (s *Server) serveMetrics() http.Handler {
	h := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Timeout: 5 * time.Second})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", newRequestID())
		h.ServeHTTP(w, r)
	})
}

// AuditCommitMetrics registers the audit trail's group-commit metrics with
// reg and returns the observer to give the trail (audit.Options.OnCommit):
// the latency of each write+fsync, the records per commit, and failures.
func AuditCommitMetrics(reg *prometheus.Registry) func(records int, took time.Duration, err error) {
	took := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sluice_audit_fsync_duration_seconds",
		Help:    "Time to write and fsync one group commit of audit records.",
		Buckets: latencyBuckets,
	})
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sluice_audit_batch_records",
		Help:    "Audit records made durable by one fsync (group commit).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	})
	failed := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_audit_commit_failures_total",
		Help: "Group commits that failed; their requests were refused with 503.",
	})
	reg.MustRegister(took, batch, failed)
	return func(records int, d time.Duration, err error) {
		took.Observe(d.Seconds())
		batch.Observe(float64(records))
		if err != nil {
			failed.Inc()
		}
	}
}
