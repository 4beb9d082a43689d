package webhook

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Defaults of Options.
const (
	defaultTimeout     = 10 * time.Second
	defaultMaxAttempts = 8
	defaultMaxBackoff  = 10 * time.Minute
	defaultMaxBody     = 64 << 10
	defaultQueue       = 1000
	defaultWorkers     = 4
)

// ErrQueueFull is returned by [Sender.Send] when as many events as
// [Options.Queue] are already waiting, in flight or waiting to retry.
var ErrQueueFull = errors.New("webhook: queue full")

// ErrClosed is returned by [Sender.Send] after [Sender.Close].
var ErrClosed = errors.New("webhook: sender closed")

// Options configure a [Sender]. Zero values take the defaults given.
type Options struct {
	// Client makes the requests; default one with a 10 s timeout. Either
	// way the Sender uses a copy that follows no redirect (a redirect is
	// a failed attempt) and keeps no cookies, and gives one without a
	// Timeout the default, so that no attempt holds a worker for ever.
	Client *http.Client
	// MaxAttempts is how many attempts an event gets; default 8.
	MaxAttempts int
	// Backoff is the wait after attempt n (from 1) fails; default 1 s,
	// doubling at each attempt, ±20% jitter. Whatever it returns is
	// capped at MaxBackoff.
	Backoff func(attempt int) time.Duration
	// MaxBackoff caps every wait between attempts, a Retry-After included;
	// default 10 min.
	MaxBackoff time.Duration
	// Record is called with the outcome of every attempt, and of every
	// event dropped on Close. Calls are never concurrent, but they come
	// from the Sender's goroutines (and Close's) and hold up deliveries
	// while they run, so it must be quick. Nil: nothing is reported.
	Record func(Delivery)
	// Now is the clock deliveries are signed and stamped by; default
	// time.Now. Waits between attempts are timed by the runtime's timers.
	Now func() time.Time
	// MaxBody is the largest body Send accepts, in bytes; default 64 KiB.
	MaxBody int
	// Queue is how many events may be unfinished at once (waiting, in
	// flight or waiting to retry) before Send refuses more; default 1000.
	Queue int
	// Workers is how many attempts may be in flight at once; default 4.
	Workers int
	// AllowHTTP permits http URLs to hosts other than loopback ones. A
	// signature proves who sent an event over http, but anyone on the
	// path reads it.
	AllowHTTP bool
	// Logger receives the reasons of failed attempts in full; default
	// none.
	Logger *slog.Logger
}

// A Sender delivers events to targets in the background (see the package
// documentation). It is safe for concurrent use. Stop it with Close.
type Sender struct {
	opts    Options
	client  *http.Client
	ctx     context.Context // ends in-flight attempts when Close gives up waiting
	cancel  context.CancelFunc
	ready   chan *job // events due an attempt
	quit    chan struct{}
	workers sync.WaitGroup
	stopped chan struct{} // closed when Close has finished

	mu      sync.Mutex
	closed  bool
	pending int                  // unfinished events; never more than cap(ready)
	waiting map[*job]*time.Timer // events waiting to retry

	recordMu sync.Mutex // keeps calls of Record one at a time
}

// job is one event on its way to a target.
type job struct {
	target  Target
	id      string
	body    []byte
	attempt int // attempts made
}

// New returns a Sender with its workers started.
func New(opts Options) *Sender {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = defaultMaxAttempts
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	if opts.Backoff == nil {
		opts.Backoff = exponential(opts.MaxBackoff, defaultRand)
	}
	if opts.Record == nil {
		opts.Record = func(Delivery) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = defaultMaxBody
	}
	if opts.Queue <= 0 {
		opts.Queue = defaultQueue
	}
	if opts.Workers <= 0 {
		opts.Workers = defaultWorkers
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sender{opts: opts, client: newClient(opts.Client), ready: make(chan *job, opts.Queue),
		quit: make(chan struct{}), stopped: make(chan struct{}), waiting: map[*job]*time.Timer{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.workers.Add(opts.Workers)
	for range opts.Workers {
		go s.work()
	}
	return s
}

// newClient copies c (or a default), made to send nothing but the
// request built: no redirect is followed, since the signed body and its
// headers would go on to wherever the receiver pointed, and no cookie
// jar, since a gateway's cookies are not the receiver's business.
func newClient(c *http.Client) *http.Client {
	cc := http.Client{Timeout: defaultTimeout}
	if c != nil {
		cc = *c
	}
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cc.Jar = nil
	if cc.Timeout <= 0 {
		cc.Timeout = defaultTimeout
	}
	return &cc
}

// Send queues body for delivery to t as event id and returns; delivery
// happens in the background. id must be the same for every sending of the
// same event: receivers use it to see a repeat. It is refused with an
// error when t cannot be sent to (see [Target]), id is not 1 to 128
// letters, digits, _ or -, body is not JSON or is longer than
// [Options.MaxBody], the queue is full ([ErrQueueFull]), or the Sender is
// closed ([ErrClosed]); a refused event is not reported to Record. Send
// never waits for the network. body is copied.
func (s *Sender) Send(t Target, id string, body []byte) error {
	if err := s.check(t, id, body); err != nil {
		return err
	}
	j := &job{target: t, id: id, body: bytes.Clone(body)}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.pending >= cap(s.ready):
		return ErrQueueFull
	}
	s.pending++
	s.ready <- j // never blocks: no more are queued than are pending
	return nil
}

// work makes attempts until Close.
func (s *Sender) work() {
	defer s.workers.Done()
	for {
		select {
		case <-s.quit:
			return
		case j := <-s.ready:
			s.run(j)
		}
	}
}

// run makes j's next attempt, reports it, and either finishes j or sets
// a timer to queue it again.
func (s *Sender) run(j *job) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		s.drop(j)
		return
	}
	j.attempt++
	d, v, wait := s.attempt(j)
	s.mu.Lock()
	d.Final = v != retry || j.attempt >= s.opts.MaxAttempts || s.closed
	s.mu.Unlock()
	if !d.Final {
		d.RetryIn = wait
	}
	// Reported before the timer is set, so that an event's reports come
	// in the order of its attempts.
	s.record(d)
	if d.Final {
		s.finish()
		return
	}
	s.mu.Lock()
	if !s.closed {
		// The timer's function takes s.mu, so it finds j in waiting
		// however short the wait.
		s.waiting[j] = time.AfterFunc(wait, func() { s.wake(j) })
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	// Close came while the attempt was reported: the retry is dropped, as
	// Close drops those already waiting.
	s.drop(j)
}

// wake queues j, whose wait is over, unless Close dropped it.
func (s *Sender) wake(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.waiting[j]; !ok {
		return
	}
	delete(s.waiting, j)
	s.ready <- j // never blocks: see Send
}

// drop reports that j will not be attempted again and finishes it.
func (s *Sender) drop(j *job) {
	s.record(Delivery{ID: j.id, Dept: j.target.Dept, URL: j.target.URL, Attempt: j.attempt + 1,
		Err: stoppingReason, Final: true, At: s.opts.Now()})
	s.finish()
}

// finish counts an event out of the queue.
func (s *Sender) finish() {
	s.mu.Lock()
	s.pending--
	s.mu.Unlock()
}

// record passes d to Options.Record, one call at a time.
func (s *Sender) record(d Delivery) {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	s.opts.Record(d)
}

// Close stops the Sender: Send refuses new events at once; attempts in
// flight are let finish until ctx is done, and are then cut short (Err
// "gateway stopping"); events not yet attempted again, whether queued or
// waiting to retry, are dropped. Each event's last report says so: an
// attempt that ends during Close is Final, and a dropped event is
// reported as Final with Err "gateway stopping", Status 0 and the
// attempt that will not be made. Nothing is kept: whatever must survive
// a restart, the caller keeps.
//
// Close returns once every worker has stopped: nil, or ctx's error when
// it had to cut attempts short. Calling it again waits for the first
// call to finish.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		select {
		case <-s.stopped:
			return nil
		case <-ctx.Done():
			select {
			case <-s.stopped:
				return nil
			default:
				return ctx.Err()
			}
		}
	}
	s.closed = true
	close(s.quit)
	var dropped []*job
	for j, t := range s.waiting {
		t.Stop() // a timer already fired finds j gone from waiting
		dropped = append(dropped, j)
	}
	clear(s.waiting)
	s.mu.Unlock()
	defer close(s.stopped)
	for _, j := range dropped {
		s.drop(j)
	}

	done := make(chan struct{})
	go func() {
		s.workers.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		<-done
	}
	s.cancel()
	// The workers are gone and no timer can queue an event any more, so
	// what is left in ready is all there is.
	for {
		select {
		case j := <-s.ready:
			s.drop(j)
		default:
			return err
		}
	}
}
