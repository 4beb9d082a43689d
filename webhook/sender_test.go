package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// received is a request as a receiver saw it.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a department's service on loopback: it keeps every request
// and answers the nth (from 1) with respond.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{r.Header.Clone(), body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		respond(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// requests returns what the receiver has been sent so far.
func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// status answers every request with code.
func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// newTestSender returns a Sender whose deliveries come out of the channel
// returned, retrying after 1 ms unless opts say otherwise. It is closed at
// the end of the test, cutting short whatever is still in flight.
func newTestSender(t *testing.T, opts Options) (*Sender, <-chan Delivery) {
	t.Helper()
	ch := make(chan Delivery, 100)
	opts.Record = func(d Delivery) { ch <- d }
	if opts.Backoff == nil {
		opts.Backoff = func(int) time.Duration { return time.Millisecond }
	}
	s := New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Close(ctx)
	})
	return s, ch
}

// next returns the next delivery reported. The wait is a guard against a
// hang, not a measure of speed.
func next(t *testing.T, ch <-chan Delivery) Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery reported in 10 s")
		return Delivery{}
	}
}

// untilFinal returns the deliveries reported up to and including the
// first Final one.
func untilFinal(t *testing.T, ch <-chan Delivery) []Delivery {
	t.Helper()
	var ds []Delivery
	for {
		d := next(t, ch)
		ds = append(ds, d)
		if d.Final {
			return ds
		}
	}
}

// outcome is what a test compares of a Delivery: not its times.
type outcome struct {
	Attempt int
	Status  int
	Err     string
	Final   bool
	OK      bool
}

func outcomes(ds []Delivery) []outcome {
	var out []outcome
	for _, d := range ds {
		out = append(out, outcome{d.Attempt, d.Status, d.Err, d.Final, d.OK})
	}
	return out
}

func target(rc *receiver) Target {
	return Target{Dept: "tax", URL: rc.URL + "/hooks/sluice?via=test", Secret: testSecret}
}

const testBody = `{"type":"notice.sent","notice":{"id":"ntc_1"}}`

func TestADeliveryIsSignedAndAcceptedFirstTime(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent))
	now := time.Now()
	s, ch := newTestSender(t, Options{Now: func() time.Time { return now }})
	if err := s.Send(target(rc), "ntc_1", []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	ds := untilFinal(t, ch)
	if diff := cmp.Diff([]outcome{{Attempt: 1, Status: 204, Final: true, OK: true}}, outcomes(ds)); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if d := ds[0]; d.ID != "ntc_1" || d.Dept != "tax" || d.URL != target(rc).URL || !d.At.Equal(now) {
		t.Errorf("delivery names %s %s %s at %s, want ntc_1 tax %s at %s", d.ID, d.Dept, d.URL, d.At, target(rc).URL, now)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if err := Verify(testSecret, r.header, r.body, now, 0); err != nil {
		t.Errorf("the receiver's Verify: %v", err)
	}
	if string(r.body) != testBody {
		t.Errorf("body %s, want %s", r.body, testBody)
	}
	for k, want := range map[string]string{"Content-Type": "application/json", "User-Agent": "sluice-webhook/1",
		"Webhook-Id": "ntc_1", "Webhook-Timestamp": strconv.FormatInt(now.Unix(), 10)} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
}

func TestRetriesKeepTheIDAndSignEachAttemptAfresh(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			http.Error(w, "upstream detail the trail must not hold", http.StatusServiceUnavailable)
		}
	})
	// A clock a second on at every reading, so that each attempt has its
	// own timestamp.
	start := time.Unix(1767225600, 0)
	var ticks atomic.Int64
	clock := func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * time.Second) }
	s, ch := newTestSender(t, Options{Now: clock})
	if err := s.Send(target(rc), "ntc_1", []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	ds := untilFinal(t, ch)
	want := []outcome{
		{Attempt: 1, Status: 503, Err: "status 503"},
		{Attempt: 2, Status: 503, Err: "status 503"},
		{Attempt: 3, Status: 200, Final: true, OK: true},
	}
	if diff := cmp.Diff(want, outcomes(ds)); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	for _, d := range ds[:2] {
		if d.RetryIn != time.Millisecond {
			t.Errorf("attempt %d: RetryIn %s, want the 1ms Backoff gives", d.Attempt, d.RetryIn)
		}
	}
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	var last int64
	for i, r := range reqs {
		if id := r.header.Get(HeaderID); id != "ntc_1" {
			t.Errorf("request %d: Webhook-Id %q, want ntc_1 on every attempt", i+1, id)
		}
		ts, err := strconv.ParseInt(r.header.Get(HeaderTimestamp), 10, 64)
		if err != nil || ts <= last {
			t.Errorf("request %d: Webhook-Timestamp %q, want one later than the last attempt's (%d)", i+1, r.header.Get(HeaderTimestamp), last)
		}
		last = ts
		if err := Verify(testSecret, r.header, r.body, time.Unix(ts, 0), 0); err != nil {
			t.Errorf("request %d: Verify: %v", i+1, err)
		}
	}
}

func TestAClientErrorIsFinalAfterOneAttempt(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusGone} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			rc := newReceiver(t, status(code))
			s, ch := newTestSender(t, Options{})
			if err := s.Send(target(rc), "ntc_1", []byte(testBody)); err != nil {
				t.Fatal(err)
			}
			ds := untilFinal(t, ch)
			want := []outcome{{Attempt: 1, Status: code, Err: "status " + strconv.Itoa(code), Final: true}}
			if diff := cmp.Diff(want, outcomes(ds)); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := len(rc.requests()); n != 1 {
				t.Errorf("receiver got %d requests, want 1", n)
			}
		})
	}
}

func TestRetryAfterIsHonouredUpToMaxBackoff(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	// Retry-After asks for a second; the Backoff would wait 1 ms; the cap
	// keeps the test short and says which one won.
	s, ch := newTestSender(t, Options{MaxBackoff: 20 * time.Millisecond})
	if err := s.Send(target(rc), "ntc_1", []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	ds := untilFinal(t, ch)
	want := []outcome{{Attempt: 1, Status: 429, Err: "status 429"}, {Attempt: 2, Status: 200, Final: true, OK: true}}
	if diff := cmp.Diff(want, outcomes(ds)); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if got := ds[0].RetryIn; got != 20*time.Millisecond {
		t.Errorf("RetryIn after a 429 with Retry-After: 1 = %s, want MaxBackoff (20ms)", got)
	}
}

func TestAReceiverThatNeverAnswersTimesOut(t *testing.T) {
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	s, ch := newTestSender(t, Options{Client: &http.Client{Timeout: 50 * time.Millisecond}, MaxAttempts: 2})
	if err := s.Send(target(rc), "ntc_1", []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	want := []outcome{{Attempt: 1, Err: "timeout"}, {Attempt: 2, Err: "timeout", Final: true}}
	if diff := cmp.Diff(want, outcomes(untilFinal(t, ch))); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func TestAnUnreachableReceiverIsRetried(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK))
	tg := target(rc)
	rc.Close() // nothing listens on its port now
	s, ch := newTestSender(t, Options{MaxAttempts: 3})
	if err := s.Send(tg, "ntc_1", []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	want := []outcome{
		{Attempt: 1, Err: "connection refused"},
		{Attempt: 2, Err: "connection refused"},
		{Attempt: 3, Err: "connection refused", Final: true},
	}
	if diff := cmp.Diff(want, outcomes(untilFinal(t, ch))); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	for name, client := range map[string]*http.Client{
		"default client":                         nil,
		"caller's client that follows redirects": {},
	} {
		t.Run(name, func(t *testing.T) {
			elsewhere := newReceiver(t, status(http.StatusOK))
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
			})
			s, ch := newTestSender(t, Options{Client: client})
			if err := s.Send(target(rc), "ntc_1", []byte(testBody)); err != nil {
				t.Fatal(err)
			}
			want := []outcome{{Attempt: 1, Status: 307, Err: "status 307: redirect not followed", Final: true}}
			if diff := cmp.Diff(want, outcomes(untilFinal(t, ch))); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			if n := len(elsewhere.requests()); n != 0 {
				t.Errorf("the redirect's target got %d requests, want none", n)
			}
		})
	}
}

func TestReceiversSeeNoCredentials(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK))
	// A caller's client with a cookie for the receiver must not send it.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(rc.URL)
	if err != nil {
		t.Fatal(err)
	}
	jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "the-gateway's"}})
	s, ch := newTestSender(t, Options{Client: &http.Client{Jar: jar}})
	if err := s.Send(target(rc), "ntc_1", []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	untilFinal(t, ch)
	for _, r := range rc.requests() {
		for _, k := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
			if v, ok := r.header[k]; ok {
				t.Errorf("receiver saw %s: %q", k, v)
			}
		}
	}
}

// blocking is a receiver that holds each request until release is closed
// (or the client gives up), telling arrived of each.
func blocking(t *testing.T) (rc *receiver, arrived <-chan int, release func()) {
	t.Helper()
	arrivals, done := make(chan int, 100), make(chan struct{})
	rc = newReceiver(t, func(n int, _ http.ResponseWriter, r *http.Request) {
		arrivals <- n
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})
	var once sync.Once
	release = func() { once.Do(func() { close(done) }) }
	t.Cleanup(release) // before rc.Close, which waits for its handlers
	return rc, arrivals, release
}

// arrival waits for the receiver to see a request.
func arrival(t *testing.T, arrived <-chan int) {
	t.Helper()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no request arrived in 10 s")
	}
}

func TestSendRefusesWhenTheQueueIsFull(t *testing.T) {
	rc, arrived, release := blocking(t)
	s, ch := newTestSender(t, Options{Workers: 1, Queue: 2})
	for _, id := range []string{"ntc_1", "ntc_2"} {
		if err := s.Send(target(rc), id, []byte(testBody)); err != nil {
			t.Fatalf("Send %s: %v", id, err)
		}
	}
	arrival(t, arrived)
	// One in flight and one queued make two: as many as the queue holds.
	if err := s.Send(target(rc), "ntc_3", []byte(testBody)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Send to a full queue = %v, want ErrQueueFull", err)
	}
	release()
	untilFinal(t, ch)
	untilFinal(t, ch)
	// Finished events leave the queue.
	if err := s.Send(target(rc), "ntc_3", []byte(testBody)); err != nil {
		t.Errorf("Send once the queue emptied: %v", err)
	}
}

func TestCloseDropsPendingRetriesAndReportsThem(t *testing.T) {
	rc := newReceiver(t, status(http.StatusServiceUnavailable))
	s, ch := newTestSender(t, Options{Backoff: func(int) time.Duration { return time.Minute }})
	if err := s.Send(target(rc), "ntc_1", []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	if d := next(t, ch); d.Final || d.RetryIn != time.Minute {
		t.Fatalf("first attempt: Final %v, RetryIn %s; want a retry in a minute", d.Final, d.RetryIn)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []outcome{{Attempt: 2, Err: "gateway stopping", Final: true}}
	if diff := cmp.Diff(want, outcomes(untilFinal(t, ch))); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if err := s.Send(target(rc), "ntc_2", []byte(testBody)); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestCloseLetsAnAttemptInFlightFinish(t *testing.T) {
	rc, arrived, release := blocking(t)
	s, ch := newTestSender(t, Options{})
	if err := s.Send(target(rc), "ntc_1", []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	arrival(t, arrived)
	closed := make(chan error)
	go func() { closed <- s.Close(context.Background()) }()
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []outcome{{Attempt: 1, Status: 200, Final: true, OK: true}}
	if diff := cmp.Diff(want, outcomes(untilFinal(t, ch))); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func TestCloseCutsAttemptsShortWhenItsContextEnds(t *testing.T) {
	rc, arrived, _ := blocking(t)
	s, ch := newTestSender(t, Options{Workers: 1})
	for _, id := range []string{"ntc_1", "ntc_2"} {
		if err := s.Send(target(rc), id, []byte(testBody)); err != nil {
			t.Fatalf("Send %s: %v", id, err)
		}
	}
	arrival(t, arrived)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	got := map[string]outcome{}
	for range 2 {
		d := next(t, ch)
		got[d.ID] = outcome{d.Attempt, d.Status, d.Err, d.Final, d.OK}
	}
	want := map[string]outcome{
		"ntc_1": {Attempt: 1, Err: "gateway stopping", Final: true}, // cut short in flight
		"ntc_2": {Attempt: 1, Err: "gateway stopping", Final: true}, // never attempted
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestSendRefusesWhatCannotOrMustNotBeSent(t *testing.T) {
	ok := Target{Dept: "tax", URL: "https://tax.example/hooks", Secret: testSecret}
	with := func(edit func(*Target)) Target { tg := ok; edit(&tg); return tg }
	for _, tc := range []struct {
		name string
		t    Target
		id   string
		body string
		want string
	}{
		{"ftp", with(func(tg *Target) { tg.URL = "ftp://tax.example/hooks" }), "ntc_1", `{}`, "want an http(s) URL"},
		{"no scheme", with(func(tg *Target) { tg.URL = "tax.example/hooks" }), "ntc_1", `{}`, "want an http(s) URL"},
		{"no host", with(func(tg *Target) { tg.URL = "https:///hooks" }), "ntc_1", `{}`, "want an http(s) URL"},
		{"unparsable", with(func(tg *Target) { tg.URL = "https://tax.example/%zz" }), "ntc_1", `{}`, "want an http(s) URL"},
		{"http to another host", with(func(tg *Target) { tg.URL = "http://tax.example/hooks" }), "ntc_1", `{}`, "http only to a loopback"},
		{"credentials in the URL", with(func(tg *Target) { tg.URL = "https://user:pw@tax.example/hooks" }), "ntc_1", `{}`, "credentials"},
		{"short secret", with(func(tg *Target) { tg.Secret = testSecret[:31] }), "ntc_1", `{}`, "want at least 32"},
		{"no id", ok, "", `{}`, "event id"},
		{"id with a dot", ok, "ntc.1", `{}`, "event id"},
		{"id with a space", ok, "ntc 1", `{}`, "event id"},
		{"id too long", ok, strings.Repeat("n", 129), `{}`, "event id"},
		{"body over MaxBody", ok, "ntc_1", `"` + strings.Repeat("x", 1023) + `"`, "exceeds the 1024 allowed"},
		{"body not JSON", ok, "ntc_1", `notice`, "not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestSender(t, Options{MaxBody: 1024})
			err := s.Send(tc.t, tc.id, []byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Send = %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(testSecret[:16])) || strings.Contains(err.Error(), "pw@") {
				t.Errorf("the error %q holds a credential", err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.pending != 0 {
				t.Errorf("%d events pending after a refusal, want 0", s.pending)
			}
		})
	}
}

func TestCheckAcceptsHTTPSAndHTTPToLoopback(t *testing.T) {
	body := []byte(`{}`)
	for _, tc := range []struct {
		url       string
		allowHTTP bool
	}{
		{"https://tax.example/hooks?via=sluice", false},
		{"http://127.0.0.1:8080/hooks", false},
		{"http://127.0.0.2/hooks", false},
		{"http://[::1]:8080/hooks", false},
		{"http://localhost/hooks", false},
		{"http://tax.internal/hooks", true},
	} {
		s := &Sender{opts: Options{AllowHTTP: tc.allowHTTP, MaxBody: defaultMaxBody}}
		if err := s.check(Target{Dept: "tax", URL: tc.url, Secret: testSecret}, "ntc_1", body); err != nil {
			t.Errorf("%s (AllowHTTP %v): %v", tc.url, tc.allowHTTP, err)
		}
	}
	s := &Sender{opts: Options{MaxBody: defaultMaxBody}}
	if err := s.check(Target{Dept: "tax", URL: "http://tax.internal/hooks", Secret: testSecret}, "ntc_1", body); err == nil {
		t.Error("http to another host accepted without AllowHTTP")
	}
}
