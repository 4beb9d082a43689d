package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The conformance suites every backend runs: testLedger and testCache take
// a constructor of a fresh, empty backend.

// approx compares budgets to the ledger's precision.
var approx = cmpopts.EquateApprox(0, 1e-12)

func charge(id, dataset, consumer string, eps float64, consumerCap, datasetCap float64) Charge {
	return Charge{RequestID: id, Dataset: dataset, Consumer: consumer, Cost: Budget{Epsilon: eps},
		ConsumerCap: Budget{Epsilon: consumerCap}, DatasetCap: Budget{Epsilon: datasetCap}}
}

func mustCharge(t *testing.T, l Ledger, c Charge) Receipt {
	t.Helper()
	r, err := l.Charge(context.Background(), c)
	if err != nil {
		t.Fatalf("Charge(%+v): %v", c, err)
	}
	return r
}

func mustSpent(t *testing.T, l Ledger, dataset, consumer string) Balance {
	t.Helper()
	b, err := l.Spent(context.Background(), dataset, consumer)
	if err != nil {
		t.Fatalf("Spent(%s, %s): %v", dataset, consumer, err)
	}
	return b
}

func expectExhausted(t *testing.T, err error, account string) *ExhaustedError {
	t.Helper()
	var ex *ExhaustedError
	if !errors.As(err, &ex) {
		t.Fatalf("error %v, want an *ExhaustedError", err)
	}
	if ex.Account != account {
		t.Fatalf("exhausted account %q, want %q", ex.Account, account)
	}
	return ex
}

func testLedger(t *testing.T, newLedger func(t *testing.T) Ledger) {
	ctx := context.Background()

	t.Run("a charge spends on the consumer and the dataset", func(t *testing.T) {
		l := newLedger(t)
		r := mustCharge(t, l, charge("r1", "health/visits", "alice", 0.5, 5, 50))
		want := Balance{Consumer: Budget{Epsilon: 0.5}, Dataset: Budget{Epsilon: 0.5}}
		if diff := cmp.Diff(Receipt{Balance: want}, r, approx); diff != "" {
			t.Errorf("receipt (-want +got):\n%s", diff)
		}
		mustCharge(t, l, charge("r2", "health/visits", "bob", 0.25, 5, 50))
		if diff := cmp.Diff(Balance{Consumer: Budget{Epsilon: 0.5}, Dataset: Budget{Epsilon: 0.75}},
			mustSpent(t, l, "health/visits", "alice"), approx); diff != "" {
			t.Errorf("spent (-want +got):\n%s", diff)
		}
	})

	t.Run("unknown accounts have spent nothing", func(t *testing.T) {
		if got := mustSpent(t, newLedger(t), "civil/assistance", "nobody"); got != (Balance{}) {
			t.Errorf("spent %+v, want nothing", got)
		}
	})

	t.Run("ten charges of 0.1 spend a budget of 1 exactly", func(t *testing.T) {
		l := newLedger(t)
		for i := range 10 {
			mustCharge(t, l, charge(fmt.Sprint("r", i), "d/s", "c", 0.1, 1, 50))
		}
		_, err := l.Charge(ctx, charge("r10", "d/s", "c", 1e-9, 1, 50))
		expectExhausted(t, err, "consumer")
	})

	t.Run("the consumer cap refuses and charges neither account", func(t *testing.T) {
		l := newLedger(t)
		mustCharge(t, l, charge("r1", "d/s", "c", 4, 5, 50))
		_, err := l.Charge(ctx, charge("r2", "d/s", "c", 1.5, 5, 50))
		ex := expectExhausted(t, err, "consumer")
		if diff := cmp.Diff(Balance{Consumer: Budget{Epsilon: 4}, Dataset: Budget{Epsilon: 4}}, ex.Spent, approx); diff != "" {
			t.Errorf("refusal reports spent (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(ex.Spent, mustSpent(t, l, "d/s", "c"), approx); diff != "" {
			t.Errorf("a refused charge changed the ledger (-want +got):\n%s", diff)
		}
	})

	t.Run("the dataset cap refuses across consumers", func(t *testing.T) {
		l := newLedger(t)
		for i := range 4 {
			mustCharge(t, l, charge(fmt.Sprint("r", i), "d/s", fmt.Sprint("c", i), 2.5, 5, 10))
		}
		_, err := l.Charge(ctx, charge("r4", "d/s", "c4", 0.1, 5, 10))
		expectExhausted(t, err, "dataset")
		if got := mustSpent(t, l, "d/s", "c4"); got.Consumer != (Budget{}) {
			t.Errorf("the refused consumer was charged %+v", got.Consumer)
		}
	})

	t.Run("delta is capped too", func(t *testing.T) {
		l := newLedger(t)
		c := Charge{RequestID: "r1", Dataset: "d/s", Consumer: "c", Cost: Budget{Epsilon: 0.1, Delta: 1e-6},
			ConsumerCap: Budget{Epsilon: 5, Delta: 1e-6}, DatasetCap: Budget{Epsilon: 50, Delta: 1e-4}}
		mustCharge(t, l, c)
		c.RequestID = "r2"
		_, err := l.Charge(ctx, c)
		expectExhausted(t, err, "consumer")
		c.RequestID, c.Consumer, c.ConsumerCap.Delta = "r3", "d", 0
		_, err = l.Charge(ctx, c)
		expectExhausted(t, err, "consumer")
	})

	t.Run("a retried request id charges once", func(t *testing.T) {
		l := newLedger(t)
		first := mustCharge(t, l, charge("r1", "d/s", "c", 1, 5, 50))
		mustCharge(t, l, charge("r2", "d/s", "c", 1, 5, 50))
		again := mustCharge(t, l, charge("r1", "d/s", "c", 1, 5, 50))
		if !again.Replayed || first.Replayed {
			t.Errorf("Replayed: first %v, retry %v; want false, true", first.Replayed, again.Replayed)
		}
		if diff := cmp.Diff(first.Balance, again.Balance, approx); diff != "" {
			t.Errorf("a retry reports another balance (-first +retry):\n%s", diff)
		}
		if got := mustSpent(t, l, "d/s", "c").Consumer.Epsilon; math.Abs(got-2) > 1e-12 {
			t.Errorf("spent ε=%v after two charges and a retry, want 2", got)
		}
	})

	t.Run("a request id reused for another charge is refused", func(t *testing.T) {
		l := newLedger(t)
		mustCharge(t, l, charge("r1", "d/s", "c", 1, 5, 50))
		for _, c := range []Charge{charge("r1", "d/s", "other", 1, 5, 50), charge("r1", "d/s", "c", 2, 5, 50), charge("r1", "d/t", "c", 1, 5, 50)} {
			if _, err := l.Charge(ctx, c); !errors.Is(err, ErrRequestReused) {
				t.Errorf("Charge(%+v) = %v, want ErrRequestReused", c, err)
			}
		}
	})

	t.Run("accounts of look-alike names are separate", func(t *testing.T) {
		l := newLedger(t)
		mustCharge(t, l, charge("r1", "x", "yz", 1, 1, 1))
		mustCharge(t, l, charge("r2", "xy", "z", 1, 1, 1))
		mustCharge(t, l, charge("r3", "x/y", "z", 1, 1, 1))
	})

	t.Run("malformed charges are refused", func(t *testing.T) {
		l := newLedger(t)
		good := charge("r1", "d/s", "c", 1, 5, 50)
		for name, edit := range map[string]func(c *Charge){
			"no request id":        func(c *Charge) { c.RequestID = "" },
			"no dataset":           func(c *Charge) { c.Dataset = "" },
			"no consumer":          func(c *Charge) { c.Consumer = "" },
			"zero cost":            func(c *Charge) { c.Cost.Epsilon = 0 },
			"negative cost":        func(c *Charge) { c.Cost.Epsilon = -1 },
			"NaN cost":             func(c *Charge) { c.Cost.Epsilon = math.NaN() },
			"infinite cost":        func(c *Charge) { c.Cost.Epsilon = math.Inf(1) },
			"negative delta":       func(c *Charge) { c.Cost.Delta = -1e-9 },
			"no consumer cap":      func(c *Charge) { c.ConsumerCap.Epsilon = 0 },
			"no dataset cap":       func(c *Charge) { c.DatasetCap.Epsilon = 0 },
			"enormous dataset cap": func(c *Charge) { c.DatasetCap.Epsilon = 1e12 },
		} {
			c := good
			edit(&c)
			if _, err := l.Charge(ctx, c); err == nil {
				t.Errorf("%s: Charge(%+v) succeeded", name, c)
			}
		}
		if got := mustSpent(t, l, "d/s", "c"); got != (Balance{}) {
			t.Errorf("malformed charges spent %+v", got)
		}
	})

	// 100 goroutines race to spend one budget: the number that succeed is
	// exactly what the cap allows, and the ledger ends at or below the cap.
	for _, shared := range []string{"consumer", "dataset"} {
		t.Run("100 racing charges never overspend the "+shared+" budget", func(t *testing.T) {
			l := newLedger(t)
			const (
				racers = 100
				cost   = 0.03
				budget = 1.0
				allows = 33 // 33 × 0.03 = 0.99 ≤ 1 < 34 × 0.03
			)
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, refused := 0, 0
			start := make(chan struct{})
			for i := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := charge(fmt.Sprint("race", i), "d/s", "c", cost, budget, 1000)
					if shared == "dataset" {
						c.Consumer, c.ConsumerCap.Epsilon, c.DatasetCap.Epsilon = fmt.Sprint("c", i), 1000, budget
					}
					<-start
					_, err := l.Charge(ctx, c)
					mu.Lock()
					defer mu.Unlock()
					var ex *ExhaustedError
					switch {
					case err == nil:
						ok++
					case errors.As(err, &ex) && ex.Account == shared:
						refused++
					default:
						t.Errorf("charge %d: %v", i, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			spent := mustSpent(t, l, "d/s", "c")
			if ok != allows || refused != racers-allows {
				t.Errorf("%d charges succeeded and %d were refused, want %d and %d", ok, refused, allows, racers-allows)
			}
			if float64(ok)*cost > budget+1e-12 || spent.Dataset.Epsilon > budget+1e-12 {
				t.Errorf("overspent: %d × %v succeeded, ledger says ε=%v, cap %v", ok, cost, spent.Dataset.Epsilon, budget)
			}
		})
	}
}

func testCache(t *testing.T, newCache func(t *testing.T) Cache) {
	ctx := context.Background()

	t.Run("an unknown query has no answer", func(t *testing.T) {
		if _, ok, err := newCache(t).Answer(ctx, "q"); ok || err != nil {
			t.Errorf("Answer = ok %v, err %v; want none", ok, err)
		}
	})

	t.Run("the first answer stored is the answer for good", func(t *testing.T) {
		c := newCache(t)
		got, err := c.StoreAnswer(ctx, "q", []byte(`{"v":1}`))
		if err != nil || string(got) != `{"v":1}` {
			t.Fatalf("StoreAnswer = %s, %v", got, err)
		}
		got, err = c.StoreAnswer(ctx, "q", []byte(`{"v":2}`))
		if err != nil || string(got) != `{"v":1}` {
			t.Errorf("a second StoreAnswer = %s, %v; want the first answer", got, err)
		}
		got[0] = 'X' // the caller's copy is its own
		a, ok, err := c.Answer(ctx, "q")
		if !ok || err != nil || string(a) != `{"v":1}` {
			t.Errorf("Answer = %s, %v, %v; want the first answer", a, ok, err)
		}
		if _, ok, _ := c.Answer(ctx, "other"); ok {
			t.Error("another query has an answer")
		}
	})

	t.Run("racing stores agree on one answer", func(t *testing.T) {
		c := newCache(t)
		answers := make([][]byte, 20)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := c.StoreAnswer(ctx, "q", []byte(fmt.Sprint(i)))
				if err != nil {
					t.Error(err)
				}
				answers[i] = a
			}()
		}
		wg.Wait()
		for _, a := range answers {
			if !bytes.Equal(a, answers[0]) {
				t.Fatalf("stores disagree: %q and %q", a, answers[0])
			}
		}
	})

	t.Run("empty keys and answers are refused", func(t *testing.T) {
		c := newCache(t)
		if _, err := c.StoreAnswer(ctx, "", []byte("x")); err == nil {
			t.Error("stored under an empty key")
		}
		if _, err := c.StoreAnswer(ctx, "q", nil); err == nil {
			t.Error("stored an empty answer")
		}
	})
}

func testRevocations(t *testing.T, newRevocations func(t *testing.T) Revocations) {
	ctx := context.Background()
	soon := time.Now().Add(time.Hour).Truncate(time.Millisecond)

	t.Run("a revoked id is listed with its expiry", func(t *testing.T) {
		r := newRevocations(t)
		empty, err := r.Revoked(ctx, "")
		if err != nil || !empty.Changed || len(empty.IDs) != 0 {
			t.Fatalf("a new list: %+v, %v; want changed and empty", empty, err)
		}
		if err := r.Revoke(ctx, "jti-1", soon); err != nil {
			t.Fatal(err)
		}
		got, err := r.Revoked(ctx, empty.Version)
		if err != nil || !got.Changed || got.Version == empty.Version {
			t.Fatalf("after a revocation: %+v, %v; want a new version", got, err)
		}
		if want := map[string]time.Time{"jti-1": soon}; !cmp.Equal(want, got.IDs, cmpopts.EquateApproxTime(time.Millisecond)) {
			t.Errorf("ids %v, want %v", got.IDs, want)
		}
	})

	t.Run("an unchanged list costs only its version", func(t *testing.T) {
		r := newRevocations(t)
		if err := r.Revoke(ctx, "jti-1", soon); err != nil {
			t.Fatal(err)
		}
		first, _ := r.Revoked(ctx, "")
		again, err := r.Revoked(ctx, first.Version)
		if err != nil || again.Changed || again.IDs != nil || again.Version != first.Version {
			t.Errorf("asked at the current version: %+v, %v; want unchanged, no ids", again, err)
		}
	})

	t.Run("every revocation changes the version", func(t *testing.T) {
		r := newRevocations(t)
		seen := map[string]bool{}
		for i := range 5 {
			if err := r.Revoke(ctx, "jti-1", soon.Add(time.Duration(-i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
			l, _ := r.Revoked(ctx, "")
			if seen[l.Version] {
				t.Fatalf("version %q came back", l.Version)
			}
			seen[l.Version] = true
		}
	})

	t.Run("revoking again keeps the later expiry", func(t *testing.T) {
		r := newRevocations(t)
		r.Revoke(ctx, "jti-1", soon)
		r.Revoke(ctx, "jti-1", soon.Add(-time.Minute))
		l, _ := r.Revoked(ctx, "")
		if got := l.IDs["jti-1"]; !got.Equal(soon) {
			t.Errorf("expiry %v, want %v", got, soon)
		}
	})

	t.Run("expired ids are dropped when another is revoked", func(t *testing.T) {
		r := newRevocations(t)
		r.Revoke(ctx, "old", time.Now().Add(-time.Minute))
		r.Revoke(ctx, "new", soon)
		l, _ := r.Revoked(ctx, "")
		if _, ok := l.IDs["old"]; ok || len(l.IDs) != 1 {
			t.Errorf("ids %v, want only new", l.IDs)
		}
	})

	t.Run("an id and an expiry are required", func(t *testing.T) {
		r := newRevocations(t)
		if r.Revoke(ctx, "", soon) == nil || r.Revoke(ctx, "x", time.Time{}) == nil {
			t.Error("a revocation without an id or expiry was taken")
		}
	})
}

func testLimiter(t *testing.T, newLimiter func(t *testing.T) Limiter) {
	ctx := context.Background()
	hourly := Rate{Limit: 1, Per: time.Hour, Burst: 5}

	t.Run("a burst is admitted, then the request after it waits an interval", func(t *testing.T) {
		l := newLimiter(t)
		for i := range hourly.Burst {
			if wait, err := l.Allow(ctx, "alice", hourly); wait != 0 || err != nil {
				t.Fatalf("request %d: wait %v, %v; want admitted", i+1, wait, err)
			}
		}
		wait, err := l.Allow(ctx, "alice", hourly)
		if err != nil || wait < 59*time.Minute || wait > time.Hour {
			t.Errorf("request after the burst: wait %v, %v; want about an hour", wait, err)
		}
	})

	t.Run("keys have separate allowances", func(t *testing.T) {
		l := newLimiter(t)
		one := Rate{Limit: 1, Per: time.Hour, Burst: 1}
		for _, key := range []string{"consumer:alice", "consumer:bob", "dataset:health/visits"} {
			if wait, err := l.Allow(ctx, key, one); wait != 0 || err != nil {
				t.Errorf("%s: wait %v, %v; want admitted", key, wait, err)
			}
		}
		if wait, _ := l.Allow(ctx, "consumer:alice", one); wait == 0 {
			t.Error("alice was admitted twice in an hour with a burst of 1")
		}
	})

	t.Run("the allowance comes back with time", func(t *testing.T) {
		l := newLimiter(t)
		fast := Rate{Limit: 20, Per: time.Second, Burst: 1}
		l.Allow(ctx, "k", fast)
		wait, err := l.Allow(ctx, "k", fast)
		if err != nil || wait <= 0 || wait > 50*time.Millisecond {
			t.Fatalf("wait %v, %v; want up to one interval (50ms)", wait, err)
		}
		time.Sleep(wait + 5*time.Millisecond)
		if wait, err := l.Allow(ctx, "k", fast); wait != 0 || err != nil {
			t.Errorf("after waiting: wait %v, %v; want admitted", wait, err)
		}
	})

	t.Run("50 racing requests get exactly the burst", func(t *testing.T) {
		l := newLimiter(t)
		var admitted atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wait, err := l.Allow(ctx, "racer", Rate{Limit: 1, Per: time.Hour, Burst: 10})
				if err != nil {
					t.Error(err)
				}
				if wait == 0 {
					admitted.Add(1)
				}
			}()
		}
		wg.Wait()
		if got := admitted.Load(); got != 10 {
			t.Errorf("%d admitted, want 10", got)
		}
	})

	t.Run("malformed rates are refused", func(t *testing.T) {
		l := newLimiter(t)
		for _, r := range []Rate{{}, {Limit: 1, Per: time.Second}, {Limit: 1, Burst: 1}, {Per: time.Second, Burst: 1}} {
			if _, err := l.Allow(ctx, "k", r); err == nil {
				t.Errorf("rate %+v taken", r)
			}
		}
	})
}
