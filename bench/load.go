package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// workload is the one request every run repeats.
type workload struct {
	url  string
	auth string // Authorization header value
}

// window is called when a run's measured window opens and closes, so CPU
// time can be read around exactly the measured requests.
type window interface {
	open()
	close()
}

// loadResult is what one run measured.
type loadResult struct {
	tool      string
	requests  int           // completed in the measured window
	errors    int           // non-200 answers and failed requests in the window
	firstErr  string        // the first of them, for the log
	elapsed   time.Duration // length of the measured window
	latencies []time.Duration
	// For fixed-rate runs: the rate asked for, and whether the generator
	// had to stop early because the server fell too far behind.
	rate       float64
	overloaded bool
	// wrk reports percentiles only.
	p50, p99 time.Duration
}

func (r *loadResult) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// percentile is the nearest-rank percentile p (0..100) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func (r *loadResult) finish() {
	slices.Sort(r.latencies)
	if len(r.latencies) > 0 {
		r.p50, r.p99 = percentile(r.latencies, 50), percentile(r.latencies, 99)
	}
}

func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}, Timeout: 30 * time.Second}
}

// once sends the workload's request and reads the whole answer.
func (w workload) once(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", w.auth)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// tally collects one run's samples from many goroutines.
type tally struct {
	mu   sync.Mutex
	res  *loadResult
	from time.Time // measured window
	to   time.Time
}

func (t *tally) add(sent, done time.Time, lat time.Duration, err error) {
	if sent.Before(t.from) || done.After(t.to) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.res.errors++
		if t.res.firstErr == "" {
			t.res.firstErr = err.Error()
		}
		return
	}
	t.res.requests++
	t.res.latencies = append(t.res.latencies, lat)
}

// closedLoop keeps conns requests in flight: each connection sends its
// next request when the previous answer has arrived.
func closedLoop(ctx context.Context, w workload, conns int, warmup, dur time.Duration, win window) (*loadResult, error) {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	start := time.Now()
	t := &tally{res: &loadResult{tool: "go", elapsed: dur}, from: start.Add(warmup), to: start.Add(warmup + dur)}
	ctx, cancel := context.WithDeadline(ctx, t.to)
	defer cancel()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				sent := time.Now()
				err := w.once(ctx, client)
				done := time.Now()
				if ctx.Err() != nil {
					return
				}
				t.add(sent, done, done.Sub(sent), err)
			}
		})
	}
	runWindow(ctx, t.from, t.to, win)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.DeadlineExceeded {
		return nil, err
	}
	t.res.finish()
	return t.res, nil
}

// runWindow calls win.open at from and win.close at to.
func runWindow(ctx context.Context, from, to time.Time, win window) {
	if win == nil {
		return
	}
	sleepUntil(ctx, from)
	win.open()
	sleepUntil(ctx, to)
	win.close()
}

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// maxInFlight bounds the connections of the fixed-rate runs; a server
// slower than the rate queues requests behind them, and that queueing is
// counted in their latency.
const maxInFlight = 256

// openLoop sends rate requests per second on a fixed schedule, whatever
// the server does, over at most conns connections, and measures each
// latency from the request's intended send time (as wrk2 does), so that a
// stalled server cannot hide the requests it delayed (coordinated
// omission).
func openLoop(ctx context.Context, w workload, rate float64, conns int, warmup, dur time.Duration, win window) (*loadResult, error) {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	start := time.Now().Add(10 * time.Millisecond)
	t := &tally{res: &loadResult{tool: "go", elapsed: dur, rate: rate}, from: start.Add(warmup), to: start.Add(warmup + dur)}
	// Answers may arrive after the window; they count when they were due
	// in it, and the generator waits a while for them.
	total := int(rate * (warmup + dur).Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan time.Time, conns)
	grace := max(2*time.Second, dur/2)
	rctx, cancel := context.WithDeadline(ctx, start.Add(warmup+dur+grace))
	defer cancel()
	var mu sync.Mutex
	var late []time.Duration
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for intended := range due {
				err := w.once(rctx, client)
				done := time.Now()
				if rctx.Err() != nil {
					continue
				}
				if intended.Before(t.from) || !intended.Before(t.to) {
					continue
				}
				mu.Lock()
				if err != nil {
					t.res.errors++
					if t.res.firstErr == "" {
						t.res.firstErr = err.Error()
					}
				} else {
					t.res.requests++
					late = append(late, done.Sub(intended))
				}
				mu.Unlock()
			}
		})
	}
	wctx, wcancel := context.WithCancel(rctx)
	windowDone := make(chan struct{})
	go func() {
		defer close(windowDone)
		runWindow(wctx, t.from, t.to, win)
	}()
	for i := range total {
		intended := start.Add(time.Duration(i) * interval)
		sleepUntil(rctx, intended)
		if rctx.Err() != nil || time.Since(intended) > time.Second {
			// More than a second behind schedule: the server cannot take
			// this rate; what was measured so far stands, marked.
			t.res.overloaded = true
			break
		}
		select {
		case due <- intended:
		case <-rctx.Done():
		}
	}
	close(due)
	wg.Wait()
	wcancel()
	<-windowDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rctx.Err() != nil {
		t.res.overloaded = true
	}
	t.res.latencies = late
	t.res.finish()
	return t.res, nil
}
