package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicegw/sluice/state"
)

// RateLimiter admits requests at a rate per key: state.Redis shares the
// allowance across replicas, state.LocalLimiter keeps it per process.
type RateLimiter interface {
	// Allow takes one request from key's allowance; it returns 0 when the
	// request is admitted, else how long until one would be.
	Allow(ctx context.Context, key string, r state.Rate) (time.Duration, error)
}

// limiterTimeout bounds one rate limit decision.
const limiterTimeout = 2 * time.Second

func (c *RateConfig) rate() state.Rate {
	return state.Rate{Limit: c.Rate, Per: time.Duration(c.Per), Burst: c.Burst}
}

// limitConsumer applies rate_limits.consumer to an authenticated caller.
func (s *Server) limitConsumer(x *exchange) *Error {
	if c := s.cfg.RateLimits.Consumer; c != nil && !x.simulated {
		return s.limit(x, "consumer", "consumer:"+x.principal.Subject, c)
	}
	return nil
}

// limitDataset applies rate_limits.dataset to a request on ds.
func (s *Server) limitDataset(x *exchange, ds *dataset) *Error {
	if c := s.cfg.RateLimits.Dataset; c != nil {
		return s.limit(x, "dataset", "dataset:"+ds.src.cfg.Name+"/"+ds.cfg.Name, c)
	}
	return nil
}

// limit takes one request from key's allowance. When the shared limiter
// cannot decide, a statistics request is refused (503) like anything that
// charges a budget; other requests are refused too under on_failure
// closed, and under open fall back to this replica's own limiter, so that
// they are limited per replica rather than not at all.
func (s *Server) limit(x *exchange, scope, key string, c *RateConfig) *Error {
	ctx, cancel := context.WithTimeout(context.Background(), limiterTimeout)
	defer cancel()
	wait, err := s.limiter.Allow(ctx, key, c.rate())
	if err != nil {
		if x.route == "stats" || s.cfg.State.OnFailure != FailOpen || s.limiter == s.localLimiter {
			return errUnavailable("the rate limiter is unavailable", err)
		}
		s.scale.limiterFallbacks.Inc()
		if wait, err = s.localLimiter.Allow(ctx, key, c.rate()); err != nil {
			return errUnavailable("the rate limiter is unavailable", err)
		}
	}
	if wait > 0 {
		x.ev.Decision = "deny"
		s.scale.rateLimited.WithLabelValues(scope).Inc()
		return errRateLimited(fmt.Sprintf("too many requests: the %s rate limit is %d per %s (bursts of %d); retry after %s",
			scope, c.Rate, time.Duration(c.Per), c.Burst, wait.Round(time.Millisecond)), wait)
	}
	return nil
}
