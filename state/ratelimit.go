package state

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Rate is a request rate limit: Limit requests per Per on average, with
// bursts of up to Burst requests at once.
type Rate struct {
	Limit int
	Per   time.Duration
	Burst int
}

func (r Rate) check() error {
	if r.Limit < 1 || r.Per <= 0 || r.Burst < 1 {
		return errors.New("state: a rate needs a positive limit, period and burst")
	}
	return nil
}

// interval is the GCRA emission interval: the time one request uses up.
func (r Rate) interval() time.Duration { return r.Per / time.Duration(r.Limit) }

// Limiter admits requests at a rate per key with the generic cell rate
// algorithm (GCRA): each key has a theoretical arrival time that every
// admitted request pushes one interval further, and a request is admitted
// while that time is at most Burst intervals ahead of now.
type Limiter interface {
	// Allow takes one request from key's allowance under r. It returns 0
	// when the request is admitted, else how long until one would be (and
	// nothing was taken).
	Allow(ctx context.Context, key string, r Rate) (retryAfter time.Duration, err error)
}

// LocalLimiter is a [Limiter] in process memory: limits hold per process,
// so N replicas each admit the rate. [Redis] shares them.
type LocalLimiter struct {
	now   func() time.Time
	mu    sync.Mutex
	tat   map[string]time.Time
	calls int
}

var _ Limiter = (*LocalLimiter)(nil)

// NewLocalLimiter returns an in-process limiter; now is its clock
// (time.Now when nil).
func NewLocalLimiter(now func() time.Time) *LocalLimiter {
	if now == nil {
		now = time.Now
	}
	return &LocalLimiter{now: now, tat: map[string]time.Time{}}
}

// Allow implements [Limiter].
func (l *LocalLimiter) Allow(ctx context.Context, key string, r Rate) (time.Duration, error) {
	if err := r.check(); err != nil {
		return 0, err
	}
	t := r.interval()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	tat := l.tat[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(t)
	if allowAt := next.Add(-t * time.Duration(r.Burst)); now.Before(allowAt) {
		return allowAt.Sub(now), nil
	}
	l.tat[key] = next
	// A key whose arrival time has passed is as good as new: forget it,
	// so that memory follows the keys active now, not all ever seen.
	if l.calls++; l.calls%1024 == 0 {
		for k, v := range l.tat {
			if !v.After(now) {
				delete(l.tat, k)
			}
		}
	}
	return 0, nil
}
