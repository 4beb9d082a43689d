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

// acct is an account of key capped at ε = eps, δ = 0.
func acct(key string, eps float64) Account { return Account{Key: key, Cap: Budget{Epsilon: eps}} }

// charge asks to spend ε = eps on accounts of scope.
func charge(id, scope string, eps float64, accounts ...Account) Charge {
	return Charge{RequestID: id, Scope: scope, Cost: Budget{Epsilon: eps}, Accounts: accounts}
}

// epsilons are budgets of ε alone.
func epsilons(eps ...float64) []Budget {
	out := make([]Budget, len(eps))
	for i, e := range eps {
		out[i] = Budget{Epsilon: e}
	}
	return out
}

func mustCharge(t *testing.T, l Ledger, c Charge) Receipt {
	t.Helper()
	r, err := l.Charge(context.Background(), c)
	if err != nil {
		t.Fatalf("Charge(%+v): %v", c, err)
	}
	return r
}

func mustSpent(t *testing.T, l Ledger, scope string, keys ...string) []Budget {
	t.Helper()
	b, err := l.Spent(context.Background(), scope, keys...)
	if err != nil {
		t.Fatalf("Spent(%q, %q): %v", scope, keys, err)
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

	t.Run("a charge spends on every one of its accounts", func(t *testing.T) {
		l := newLedger(t)
		r := mustCharge(t, l, charge("r1", "health/visits", 0.5, acct("analysts", 50), acct("alice", 5)))
		if diff := cmp.Diff(Receipt{Spent: epsilons(0.5, 0.5)}, r, approx); diff != "" {
			t.Errorf("receipt (-want +got):\n%s", diff)
		}
		mustCharge(t, l, charge("r2", "health/visits", 0.25, acct("analysts", 50), acct("bob", 5), acct("acme", 10)))
		if diff := cmp.Diff(epsilons(0.75, 0.5, 0.25, 0.25),
			mustSpent(t, l, "health/visits", "analysts", "alice", "bob", "acme"), approx); diff != "" {
			t.Errorf("spent (-want +got):\n%s", diff)
		}
	})

	t.Run("unknown accounts have spent nothing", func(t *testing.T) {
		l := newLedger(t)
		if diff := cmp.Diff([]Budget{{}, {}}, mustSpent(t, l, "civil/assistance", "nobody", "none")); diff != "" {
			t.Errorf("spent (-want +got):\n%s", diff)
		}
		if got := mustSpent(t, l, "civil/assistance"); len(got) != 0 {
			t.Errorf("Spent of no accounts = %+v, want none", got)
		}
	})

	t.Run("Spent returns the accounts in the order asked", func(t *testing.T) {
		l := newLedger(t)
		for i, key := range []string{"a", "b", "c"} {
			mustCharge(t, l, charge(fmt.Sprint("r", i), "s", 0.1*float64(i+1), acct(key, 1)))
		}
		if diff := cmp.Diff(epsilons(0.3, 0, 0.1, 0.2, 0.1), mustSpent(t, l, "s", "c", "unknown", "a", "b", "a"), approx); diff != "" {
			t.Errorf("spent (-want +got):\n%s", diff)
		}
	})

	t.Run("ten charges of 0.1 spend a cap of 1 exactly", func(t *testing.T) {
		l := newLedger(t)
		for i := range 10 {
			mustCharge(t, l, charge(fmt.Sprint("r", i), "d/s", 0.1, acct("c", 1), acct("pop", 50)))
		}
		if got := mustSpent(t, l, "d/s", "c")[0]; got != (Budget{Epsilon: 1}) {
			t.Errorf("spent %+v, want exactly ε=1", got)
		}
		_, err := l.Charge(ctx, charge("r10", "d/s", 1e-9, acct("c", 1), acct("pop", 50)))
		expectExhausted(t, err, "c")
	})

	t.Run("the first account's cap refuses and charges none of them", func(t *testing.T) {
		l := newLedger(t)
		mustCharge(t, l, charge("r1", "d/s", 4, acct("c", 5), acct("pop", 50)))
		_, err := l.Charge(ctx, charge("r2", "d/s", 1.5, acct("c", 5), acct("pop", 50)))
		ex := expectExhausted(t, err, "c")
		if diff := cmp.Diff(epsilons(4, 4), ex.Spent, approx); diff != "" {
			t.Errorf("refusal reports spent (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(ex.Spent, mustSpent(t, l, "d/s", "c", "pop"), approx); diff != "" {
			t.Errorf("a refused charge changed the ledger (-want +got):\n%s", diff)
		}
	})

	t.Run("a shared account's cap refuses across the accounts that draw on it", func(t *testing.T) {
		l := newLedger(t)
		for i := range 4 {
			mustCharge(t, l, charge(fmt.Sprint("r", i), "d/s", 2.5, acct(fmt.Sprint("c", i), 5), acct("pop", 10)))
		}
		_, err := l.Charge(ctx, charge("r4", "d/s", 0.1, acct("c4", 5), acct("pop", 10)))
		expectExhausted(t, err, "pop")
		if got := mustSpent(t, l, "d/s", "c4")[0]; got != (Budget{}) {
			t.Errorf("the refused consumer was charged %+v", got)
		}
	})

	t.Run("of three accounts only the third short charges none and names it", func(t *testing.T) {
		l := newLedger(t)
		mustCharge(t, l, charge("r1", "d/s", 0.8, acct("org", 1)))
		_, err := l.Charge(ctx, charge("r2", "d/s", 0.5, acct("pop", 5), acct("c", 5), acct("org", 1)))
		ex := expectExhausted(t, err, "org")
		if diff := cmp.Diff(epsilons(0, 0, 0.8), ex.Spent, approx); diff != "" {
			t.Errorf("refusal reports spent (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(epsilons(0, 0, 0.8), mustSpent(t, l, "d/s", "pop", "c", "org"), approx); diff != "" {
			t.Errorf("a refused charge changed the ledger (-want +got):\n%s", diff)
		}
	})

	t.Run("charges of different consumers both draw on the allocation they share", func(t *testing.T) {
		l := newLedger(t)
		a := mustCharge(t, l, charge("r1", "pop/2025", 0.4, acct("analysts", 1), acct("alice", 5)))
		b := mustCharge(t, l, charge("r2", "pop/2025", 0.4, acct("analysts", 1), acct("bob", 5)))
		if diff := cmp.Diff([][]Budget{epsilons(0.4, 0.4), epsilons(0.8, 0.4)}, [][]Budget{a.Spent, b.Spent}, approx); diff != "" {
			t.Errorf("receipts (-want +got):\n%s", diff)
		}
		_, err := l.Charge(ctx, charge("r3", "pop/2025", 0.4, acct("analysts", 1), acct("carol", 5)))
		expectExhausted(t, err, "analysts")
		if diff := cmp.Diff(epsilons(0.8, 0.4, 0.4, 0), mustSpent(t, l, "pop/2025", "analysts", "alice", "bob", "carol"), approx); diff != "" {
			t.Errorf("spent (-want +got):\n%s", diff)
		}
	})

	t.Run("the same key in two scopes is two accounts", func(t *testing.T) {
		l := newLedger(t)
		mustCharge(t, l, charge("r1", "pop/2024", 1, acct("alice", 1)))
		mustCharge(t, l, charge("r2", "pop/2025", 0.25, acct("alice", 1)))
		for scope, want := range map[string]float64{"pop/2024": 1, "pop/2025": 0.25} {
			if diff := cmp.Diff(epsilons(want), mustSpent(t, l, scope, "alice"), approx); diff != "" {
				t.Errorf("%s (-want +got):\n%s", scope, diff)
			}
		}
	})

	t.Run("delta is capped too", func(t *testing.T) {
		l := newLedger(t)
		cost := Budget{Epsilon: 0.1, Delta: 1e-6}
		c := Charge{RequestID: "r1", Scope: "d/s", Cost: cost, Accounts: []Account{
			{Key: "c", Cap: Budget{Epsilon: 5, Delta: 1e-6}}, {Key: "pop", Cap: Budget{Epsilon: 50, Delta: 1e-4}}}}
		mustCharge(t, l, c)
		c.RequestID = "r2"
		_, err := l.Charge(ctx, c)
		expectExhausted(t, err, "c")
		c.RequestID, c.Accounts[0] = "r3", Account{Key: "d", Cap: Budget{Epsilon: 5}} // a δ cap of 0
		_, err = l.Charge(ctx, c)
		expectExhausted(t, err, "d")
		_, err = l.Charge(ctx, Charge{RequestID: "r4", Scope: "d/t", Cost: cost, Accounts: []Account{
			{Key: "c", Cap: Budget{Epsilon: 5, Delta: 1}}, {Key: "pop", Cap: Budget{Epsilon: 50, Delta: 5e-7}}}})
		expectExhausted(t, err, "pop")
		want := []Budget{{Epsilon: 0.1, Delta: 1e-6}, {}, {Epsilon: 0.1, Delta: 1e-6}}
		if diff := cmp.Diff(want, mustSpent(t, l, "d/s", "c", "d", "pop"), approx); diff != "" {
			t.Errorf("spent (-want +got):\n%s", diff)
		}
	})

	t.Run("a retried request id charges once and reports the first charge", func(t *testing.T) {
		l := newLedger(t)
		first := mustCharge(t, l, charge("r1", "d/s", 1, acct("pop", 50), acct("c", 5)))
		mustCharge(t, l, charge("r2", "d/s", 1, acct("pop", 50), acct("c", 5)))
		again := mustCharge(t, l, charge("r1", "d/s", 1, acct("pop", 50), acct("c", 5)))
		if !again.Replayed || first.Replayed {
			t.Errorf("Replayed: first %v, retry %v; want false, true", first.Replayed, again.Replayed)
		}
		if diff := cmp.Diff(first.Spent, again.Spent, approx); diff != "" {
			t.Errorf("a retry reports another spent (-first +retry):\n%s", diff)
		}
		// Caps are not part of a charge's identity: one that would now be
		// refused still replays.
		tight := mustCharge(t, l, charge("r1", "d/s", 1, acct("pop", 1), acct("c", 1)))
		if diff := cmp.Diff(Receipt{Spent: first.Spent, Replayed: true}, tight, approx); diff != "" {
			t.Errorf("a retry with other caps (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(epsilons(2, 2), mustSpent(t, l, "d/s", "pop", "c"), approx); diff != "" {
			t.Errorf("spent after two charges and retries (-want +got):\n%s", diff)
		}
	})

	t.Run("a request id reused for another charge is refused", func(t *testing.T) {
		l := newLedger(t)
		pop, c := acct("pop", 50), acct("c", 5)
		mustCharge(t, l, charge("r1", "d/s", 1, pop, c))
		deltaCost := charge("r1", "d/s", 1, pop, c)
		deltaCost.Cost.Delta, deltaCost.Accounts = 1e-9, []Account{
			{Key: "pop", Cap: Budget{Epsilon: 50, Delta: 1}}, {Key: "c", Cap: Budget{Epsilon: 5, Delta: 1}}}
		for name, c := range map[string]Charge{
			"another scope":        charge("r1", "d/t", 1, pop, c),
			"another account":      charge("r1", "d/s", 1, pop, acct("other", 5)),
			"the accounts swapped": charge("r1", "d/s", 1, c, pop),
			"an account more":      charge("r1", "d/s", 1, pop, c, acct("org", 5)),
			"an account fewer":     charge("r1", "d/s", 1, pop),
			"another ε":            charge("r1", "d/s", 2, pop, c),
			"another δ":            deltaCost,
		} {
			if _, err := l.Charge(ctx, c); !errors.Is(err, ErrRequestReused) {
				t.Errorf("%s: Charge(%+v) = %v, want ErrRequestReused", name, c, err)
			}
		}
		if diff := cmp.Diff(epsilons(1, 1, 0, 0), mustSpent(t, l, "d/s", "pop", "c", "other", "org"), approx); diff != "" {
			t.Errorf("reused ids changed the ledger (-want +got):\n%s", diff)
		}
		if got := mustSpent(t, l, "d/t", "pop", "c"); got[0] != (Budget{}) || got[1] != (Budget{}) {
			t.Errorf("a reused id charged another scope: %+v", got)
		}
	})

	t.Run("accounts of look-alike names are separate", func(t *testing.T) {
		l := newLedger(t)
		accounts := []struct{ scope, key string }{
			{"x", "yz"}, {"xy", "z"}, {"x/y", "z"}, {"x:y", "z"}, {"x", "y:z"}, {"x", ":y:z"},
			{"{x}", "y"}, {"x", "}y{"}, {"{", "x"}, {"%7B", "x"}, {"x", "charge:r1"}, {"x", "acct:y"},
		}
		for i, a := range accounts {
			mustCharge(t, l, charge(fmt.Sprint("r", i), a.scope, 1, acct(a.key, 1)))
		}
		for _, a := range accounts {
			if diff := cmp.Diff(epsilons(1), mustSpent(t, l, a.scope, a.key), approx); diff != "" {
				t.Errorf("scope %q key %q (-want +got):\n%s", a.scope, a.key, diff)
			}
		}
	})

	t.Run("eight accounts are the most a charge holds", func(t *testing.T) {
		l := newLedger(t)
		var accounts []Account
		var keys []string
		for i := range maxAccounts {
			accounts = append(accounts, acct(fmt.Sprint("a", i), 1))
			keys = append(keys, fmt.Sprint("a", i))
		}
		r := mustCharge(t, l, charge("r1", "s", 0.5, accounts...))
		want := epsilons(0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)
		if diff := cmp.Diff(want, r.Spent, approx); diff != "" {
			t.Errorf("receipt (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, mustSpent(t, l, "s", keys...), approx); diff != "" {
			t.Errorf("spent (-want +got):\n%s", diff)
		}
	})

	t.Run("malformed charges are refused and spend nothing", func(t *testing.T) {
		l := newLedger(t)
		good := func() Charge { return charge("r1", "d/s", 1, acct("pop", 50), acct("c", 5)) }
		nine := make([]Account, maxAccounts+1)
		for i := range nine {
			nine[i] = acct(fmt.Sprint("a", i), 5)
		}
		for name, edit := range map[string]func(c *Charge){
			"no request id":     func(c *Charge) { c.RequestID = "" },
			"no scope":          func(c *Charge) { c.Scope = "" },
			"no accounts":       func(c *Charge) { c.Accounts = nil },
			"nine accounts":     func(c *Charge) { c.Accounts = nine },
			"a key twice":       func(c *Charge) { c.Accounts[1].Key = "pop" },
			"an empty key":      func(c *Charge) { c.Accounts[1].Key = "" },
			"zero cost":         func(c *Charge) { c.Cost.Epsilon = 0 },
			"negative cost":     func(c *Charge) { c.Cost.Epsilon = -1 },
			"NaN cost":          func(c *Charge) { c.Cost.Epsilon = math.NaN() },
			"infinite cost":     func(c *Charge) { c.Cost.Epsilon = math.Inf(1) },
			"negative delta":    func(c *Charge) { c.Cost.Delta = -1e-9 },
			"no first cap":      func(c *Charge) { c.Accounts[0].Cap.Epsilon = 0 },
			"no last cap":       func(c *Charge) { c.Accounts[1].Cap.Epsilon = 0 },
			"negative δ cap":    func(c *Charge) { c.Accounts[1].Cap.Delta = -1 },
			"NaN cap":           func(c *Charge) { c.Accounts[1].Cap.Epsilon = math.NaN() },
			"enormous last cap": func(c *Charge) { c.Accounts[1].Cap.Epsilon = 1e12 },
		} {
			c := good()
			edit(&c)
			if _, err := l.Charge(ctx, c); err == nil {
				t.Errorf("%s: Charge(%+v) succeeded", name, c)
			}
		}
		keys := []string{"pop", "c", ""}
		for _, a := range nine {
			keys = append(keys, a.Key)
		}
		for _, b := range mustSpent(t, l, "d/s", keys...) {
			if b != (Budget{}) {
				t.Fatalf("malformed charges spent %+v", mustSpent(t, l, "d/s", keys...))
			}
		}
		// Nor did they bind the request id.
		mustCharge(t, l, good())
	})

	// 100 goroutines race to spend one budget, an account each charge
	// holds first or last among its own: the number that succeed is
	// exactly what the cap allows, and the ledger ends at or below the
	// cap.
	for _, at := range []string{"first", "last"} {
		t.Run("100 racing charges never overspend an account held "+at, func(t *testing.T) {
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
					accounts := []Account{acct("shared", budget), acct(fmt.Sprint("c", i), 1000), acct(fmt.Sprint("o", i), 1000)}
					if at == "last" {
						accounts = []Account{accounts[1], accounts[2], accounts[0]}
					}
					c := charge(fmt.Sprint("race", i), "d/s", cost, accounts...)
					<-start
					_, err := l.Charge(ctx, c)
					mu.Lock()
					defer mu.Unlock()
					var ex *ExhaustedError
					switch {
					case err == nil:
						ok++
					case errors.As(err, &ex) && ex.Account == "shared":
						refused++
					default:
						t.Errorf("charge %d: %v", i, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			spent := mustSpent(t, l, "d/s", "shared")[0]
			if ok != allows || refused != racers-allows {
				t.Errorf("%d charges succeeded and %d were refused, want %d and %d", ok, refused, allows, racers-allows)
			}
			if spent != (Budget{Epsilon: allows * cost}) {
				t.Errorf("overspent: %d × %v succeeded, ledger says ε=%v, cap %v", ok, cost, spent.Epsilon, budget)
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

	alice := RevokedSubject{Issuer: "https://idp.example", Subject: "alice"}
	cutoff := time.Now().Add(-time.Minute).Truncate(time.Millisecond)

	t.Run("one poll returns the revoked ids and subjects", func(t *testing.T) {
		r := newRevocations(t)
		empty, err := r.Revoked(ctx, "")
		if err != nil || !empty.Changed || len(empty.Subjects) != 0 {
			t.Fatalf("a new list: %+v, %v; want changed, no subjects", empty, err)
		}
		if err := r.Revoke(ctx, "jti-1", soon); err != nil {
			t.Fatal(err)
		}
		if err := r.RevokeSubject(ctx, alice, SubjectRevocation{IssuedBefore: cutoff, Expires: soon}); err != nil {
			t.Fatal(err)
		}
		got, err := r.Revoked(ctx, empty.Version)
		if err != nil || !got.Changed || got.Version == empty.Version {
			t.Fatalf("after revocations: %+v, %v; want a new version", got, err)
		}
		want := RevocationList{Version: got.Version, Changed: true, IDs: map[string]time.Time{"jti-1": soon},
			Subjects: map[RevokedSubject]SubjectRevocation{alice: {IssuedBefore: cutoff, Expires: soon}}}
		if diff := cmp.Diff(want, got, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
			t.Errorf("list (-want +got):\n%s", diff)
		}
		again, err := r.Revoked(ctx, got.Version)
		if err != nil || again.Changed || again.IDs != nil || again.Subjects != nil {
			t.Errorf("asked at the current version: %+v, %v; want unchanged, nothing listed", again, err)
		}
	})

	t.Run("every subject revocation changes the version", func(t *testing.T) {
		r := newRevocations(t)
		seen := map[string]bool{}
		for range 3 {
			if err := r.RevokeSubject(ctx, alice, SubjectRevocation{IssuedBefore: cutoff, Expires: soon}); err != nil {
				t.Fatal(err)
			}
			l, _ := r.Revoked(ctx, "")
			if seen[l.Version] {
				t.Fatalf("version %q came back", l.Version)
			}
			seen[l.Version] = true
		}
	})

	t.Run("revoking a subject again never narrows the revocation", func(t *testing.T) {
		early, late := cutoff.Add(-time.Hour), cutoff
		short, long := soon.Add(-time.Minute), soon
		for _, tc := range []struct {
			name          string
			first, second SubjectRevocation
		}{
			{"later cutoff and expiry second", SubjectRevocation{early, short}, SubjectRevocation{late, long}},
			{"earlier cutoff and expiry second", SubjectRevocation{late, long}, SubjectRevocation{early, short}},
			{"later cutoff, earlier expiry second", SubjectRevocation{early, long}, SubjectRevocation{late, short}},
			{"earlier cutoff, later expiry second", SubjectRevocation{late, short}, SubjectRevocation{early, long}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := newRevocations(t)
				for _, rev := range []SubjectRevocation{tc.first, tc.second} {
					if err := r.RevokeSubject(ctx, alice, rev); err != nil {
						t.Fatal(err)
					}
				}
				l, _ := r.Revoked(ctx, "")
				want := SubjectRevocation{IssuedBefore: late, Expires: long}
				if diff := cmp.Diff(want, l.Subjects[alice], cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
					t.Errorf("revocation (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("subjects are told apart by issuer and by every byte", func(t *testing.T) {
		r := newRevocations(t)
		subjects := []RevokedSubject{
			alice,
			{Issuer: "https://other.example", Subject: "alice"},
			{Issuer: "a", Subject: `b","c`},
			{Issuer: `a","b`, Subject: "c"},
			{Issuer: "a", Subject: "b\x00c 张三"},
		}
		want := map[RevokedSubject]SubjectRevocation{}
		for i, s := range subjects {
			rev := SubjectRevocation{IssuedBefore: cutoff.Add(time.Duration(i) * time.Second), Expires: soon}
			if err := r.RevokeSubject(ctx, s, rev); err != nil {
				t.Fatal(err)
			}
			want[s] = rev
		}
		l, _ := r.Revoked(ctx, "")
		if diff := cmp.Diff(want, l.Subjects, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
			t.Errorf("subjects (-want +got):\n%s", diff)
		}
	})

	t.Run("expired subject revocations are dropped when another subject is revoked", func(t *testing.T) {
		r := newRevocations(t)
		old := RevokedSubject{Issuer: alice.Issuer, Subject: "old"}
		r.RevokeSubject(ctx, old, SubjectRevocation{IssuedBefore: cutoff.Add(-48 * time.Hour), Expires: time.Now().Add(-time.Minute)})
		r.RevokeSubject(ctx, alice, SubjectRevocation{IssuedBefore: cutoff, Expires: soon})
		l, _ := r.Revoked(ctx, "")
		if _, ok := l.Subjects[old]; ok || len(l.Subjects) != 1 {
			t.Errorf("subjects %v, want only alice", l.Subjects)
		}
	})

	t.Run("a subject revocation needs an issuer, a subject, a cutoff and an expiry", func(t *testing.T) {
		r := newRevocations(t)
		for _, tc := range []struct {
			s   RevokedSubject
			rev SubjectRevocation
		}{
			{RevokedSubject{Subject: "alice"}, SubjectRevocation{cutoff, soon}},
			{RevokedSubject{Issuer: alice.Issuer}, SubjectRevocation{cutoff, soon}},
			{alice, SubjectRevocation{Expires: soon}},
			{alice, SubjectRevocation{IssuedBefore: cutoff}},
		} {
			if err := r.RevokeSubject(ctx, tc.s, tc.rev); err == nil {
				t.Errorf("RevokeSubject(%+v, %+v) was taken", tc.s, tc.rev)
			}
		}
		if l, _ := r.Revoked(ctx, ""); len(l.Subjects) != 0 {
			t.Errorf("refused revocations were kept: %v", l.Subjects)
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
