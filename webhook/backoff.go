package webhook

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// exponential is the default back-off: 1 s after the first attempt, then
// 2 s, 4 s … up to limit, each stretched or shrunk by up to 20% (rnd
// returns a number in [0, 1)) so that a department coming back up is not
// hit by every retry in the same second.
func exponential(limit time.Duration, rnd func() float64) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := limit
		if n := max(attempt, 1) - 1; n < 40 {
			d = min(time.Second<<n, limit)
		}
		return min(time.Duration(float64(d)*(0.8+0.4*rnd())), limit)
	}
}

// defaultRand is the jitter's randomness: math/rand, since nothing about
// it needs to be unpredictable.
func defaultRand() float64 { return rand.Float64() }

// delay is the wait before the attempt after attempt: the back-off, or
// longer when the receiver asked for it (Retry-After), never more than
// MaxBackoff.
func (s *Sender) delay(attempt int, retryAfter time.Duration) time.Duration {
	return min(max(s.opts.Backoff(attempt), retryAfter, 0), s.opts.MaxBackoff)
}

// retryAfter reads a Retry-After header, delay-seconds or an HTTP date,
// as a wait from now; 0 when absent, unreadable or past.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
