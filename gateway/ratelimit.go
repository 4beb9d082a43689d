package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/sluicegw/sluice/state"
)

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
	wait, err := s.allow(ctx, key, c, x.route != "stats" && s.cfg.State.OnFailure == FailOpen)
	if err != nil {
		return errUnavailable("the rate limiter is unavailable", err)
	}
	if wait > 0 {
		x.ev.Decision = "deny"
		s.scale.rateLimited.WithLabelValues(scope).Inc()
		return errRateLimited(fmt.Sprintf("too many requests: the %s rate limit is %d per %s (bursts of %d); retry after %s",
			scope, c.Rate, time.Duration(c.Per), c.Burst, wait.Round(time.Millisecond)), wait)
	}
	return nil
}

// allow takes one request from key's allowance in the shared limiter or,
// when that cannot decide and fallback is set, in this replica's own.
func (s *Server) allow(ctx context.Context, key string, c *RateConfig, fallback bool) (time.Duration, error) {
	wait, err := s.limiter.Allow(ctx, key, c.rate())
	if err == nil || !fallback || s.limiter == s.localLimiter {
		return wait, err
	}
	s.scale.limiterFallbacks.Inc()
	return s.localLimiter.Allow(ctx, key, c.rate())
}

// limitUnauthenticated applies rate_limits.unauthenticated to a request
// whose token was refused (why): per client address, each takes one
// request from the address's allowance, and past it the refusal is 429
// instead of why. Only requests that present a route with a token to
// check reach here, so routes that need none are never limited, and an
// accepted token never draws on the allowance: a valid token works from
// an address that has used its allowance up.
func (s *Server) limitUnauthenticated(x *exchange, r *http.Request, why *Error) *Error {
	c := s.cfg.RateLimits.Unauthenticated
	if c == nil {
		return why
	}
	ctx, cancel := context.WithTimeout(context.Background(), limiterTimeout)
	defer cancel()
	// The request is refused whatever the limiter says, so a shared
	// limiter that cannot decide falls back to this replica's own under
	// either on_failure: it only chooses between 401 and 429.
	wait, err := s.allow(ctx, "unauthenticated:"+clientKey(clientIP(r)), c, true)
	if err != nil || wait == 0 {
		return why
	}
	x.ev.Decision = "deny"
	s.scale.rateLimited.WithLabelValues("unauthenticated").Inc()
	return errRateLimited(fmt.Sprintf(
		"too many requests without an accepted token from this address (this one: %s): the limit is %d per %s (bursts of %d); retry after %s",
		why.Msg, c.Rate, time.Duration(c.Per), c.Burst, wait.Round(time.Millisecond)), wait)
}

// clientKey is the allowance a client address draws on: the address, or
// for IPv6 its /64, since one host is commonly given a /64 whole and could
// otherwise take a new allowance with every address in it.
func clientKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}
