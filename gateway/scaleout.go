package gateway

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/state"
)

// Replicas behind a load balancer share their state through Redis: the
// budget ledger and answer cache (stats.go), rate limits (ratelimit.go)
// and token revocations (revocation.go). While Redis cannot be reached,
// whatever charges a budget is refused; the rest follows
// state.on_failure.

// scaleMetrics are the metrics of shared state.
type scaleMetrics struct {
	rateLimited      *prometheus.CounterVec
	limiterFallbacks prometheus.Counter
}

func newScaleMetrics(reg prometheus.Registerer, s *Server) *scaleMetrics {
	m := &scaleMetrics{
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rate_limited_total",
			Help: "Requests refused with 429 by a rate limit, by limit (consumer, dataset).",
		}, []string{"limit"}),
		limiterFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_rate_limiter_fallbacks_total",
			Help: "Rate limit decisions made by this replica alone because the shared limiter was unreachable (state.on_failure: open).",
		}),
	}
	reg.MustRegister(m.rateLimited, m.limiterFallbacks)
	if s.revocations != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_revocations_age_seconds",
			Help: "Time since this replica's copy of the token revocation list was last confirmed current.",
		}, func() float64 {
			s.revocations.mu.RLock()
			defer s.revocations.mu.RUnlock()
			if s.revocations.fresh.IsZero() {
				return -1
			}
			return s.now().Sub(s.revocations.fresh).Seconds()
		}))
	}
	return m
}

// scaleOut wires the revocation list and the rate limiter: it reads the
// list once (a failure leaves it stale until the poller succeeds) and
// starts polling it until ctx ends.
func (s *Server) scaleOut(ctx context.Context, deps Deps) error {
	s.localLimiter = state.NewLocalLimiter(nil)
	s.limiter = deps.Limiter
	if s.limiter == nil {
		s.limiter = s.localLimiter
	}
	if deps.Revocations != nil {
		s.revocationStore = deps.Revocations
		s.revocations = newRevocationCache(deps.Revocations, s.cfg.State.Revocations, s.now)
		if s.revocations.poll <= 0 || s.revocations.maxStale <= 0 {
			return errors.New("gateway: state.revocations: poll and max_stale must be positive (validate the configuration)")
		}
		if err := s.revocations.refresh(ctx); err != nil {
			s.log.Warn("token revocations cannot be read yet", "error", err)
		}
		go s.revocations.run(ctx, s)
	}
	s.scale = newScaleMetrics(s.metrics.reg, s)
	return nil
}

// stateDetail describes a state backend failure for /readyz without
// addresses or other internals.
func stateDetail(err error) string {
	var down *state.UnavailableError
	if errors.As(err, &down) {
		return down.Backend + " " + down.Reason
	}
	return "unreachable"
}

// revocationCheck is readyz's condition on the revocation list.
func (s *Server) revocationCheck() check {
	_, stale, err := s.revocations.status("")
	s.revocations.mu.RLock()
	n, fresh := len(s.revocations.ids), s.revocations.fresh
	s.revocations.mu.RUnlock()
	if stale > 0 {
		detail := "token revocation list not refreshed"
		if err != nil {
			detail += ": " + stateDetail(err)
		}
		if !fresh.IsZero() {
			detail += "; last refreshed " + s.now().Sub(fresh).Round(time.Millisecond).String() + " ago"
		}
		return check{Detail: detail}
	}
	return check{OK: true, Detail: plural(n, "revoked token")}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
