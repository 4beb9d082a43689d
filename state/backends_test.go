package state

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newBolt(t *testing.T) *Bolt {
	t.Helper()
	b, err := OpenBolt(filepath.Join(t.TempDir(), "state", "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestMemoryLedger(t *testing.T) { testLedger(t, func(*testing.T) Ledger { return NewMemory() }) }
func TestMemoryCache(t *testing.T)  { testCache(t, func(*testing.T) Cache { return NewMemory() }) }
func TestBoltLedger(t *testing.T)   { testLedger(t, func(t *testing.T) Ledger { return newBolt(t) }) }
func TestBoltCache(t *testing.T)    { testCache(t, func(t *testing.T) Cache { return newBolt(t) }) }

func TestMemoryRevocations(t *testing.T) {
	testRevocations(t, func(*testing.T) Revocations { return NewMemory() })
}
func TestBoltRevocations(t *testing.T) {
	testRevocations(t, func(t *testing.T) Revocations { return newBolt(t) })
}
func TestLocalLimiter(t *testing.T) {
	testLimiter(t, func(*testing.T) Limiter { return NewLocalLimiter(nil) })
}

func TestBoltKeepsBudgetsChargesAndAnswersAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	accounts := []Account{acct("analysts", 50), acct("alice", 5), acct("acme", 20)}
	first := mustCharge(t, b, charge("r1", "health/visits", 4.5, accounts...))
	if _, err := b.StoreAnswer(ctx, "q", []byte("answer")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if diff := cmp.Diff(epsilons(4.5, 4.5, 4.5), mustSpent(t, b, "health/visits", "analysts", "alice", "acme"), approx); diff != "" {
		t.Errorf("after reopening, spent (-want +got):\n%s", diff)
	}
	_, err = b.Charge(ctx, charge("r2", "health/visits", 1, accounts...))
	expectExhausted(t, err, "alice")
	again := mustCharge(t, b, charge("r1", "health/visits", 4.5, accounts...))
	if diff := cmp.Diff(Receipt{Spent: first.Spent, Replayed: true}, again, approx); diff != "" {
		t.Errorf("after reopening, a retried charge (-want +got):\n%s", diff)
	}
	if a, ok, err := b.Answer(ctx, "q"); !ok || err != nil || string(a) != "answer" {
		t.Errorf("after reopening, Answer = %q, %v, %v", a, ok, err)
	}
}

func TestUnitsConvertDecimalsExactlyAndNeverRoundInTheCallersFavour(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		up   bool
		want int64
	}{
		{0.1, true, 100_000_000},
		{0.1, false, 100_000_000},
		{0.3, true, 300_000_000},
		{1.0000000001, true, 1_000_000_001},  // a cost a tenth of a unit over rounds up
		{1.0000000009, false, 1_000_000_000}, // a cap just under a unit rounds down
	} {
		got, err := units(tc.v, epsilonUnit, tc.up)
		if err != nil || got != tc.want {
			t.Errorf("units(%v, up=%v) = %d, %v; want %d", tc.v, tc.up, got, err, tc.want)
		}
	}
}
