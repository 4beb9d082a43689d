// Package state keeps what the gateway must remember across requests,
// restarts and replicas: the privacy budget ledger, the answer cache of
// differentially private releases, token revocations and rate limits.
//
// Backends are siblings behind the [Ledger], [Cache], [Revocations] and
// [Limiter] interfaces and pass one conformance suite: [Memory] (tests,
// single process, nothing durable), [Bolt] (the embedded default, a bbolt
// file fsync'd on every commit; rate limits in process, [LocalLimiter])
// and [Redis] (shared by replicas; also the audit witness and stream of
// each replica's trail, see audit.go).
//
// The ledger guarantees that budgets are never overspent. A [Charge]
// names the accounts one release draws on, up to eight, all in one scope
// (for the gateway: a population and its period, holding the allocation
// of the caller's role class, the consumer's account and the
// organisation's); it checks and spends every one of them atomically,
// all or none, durably before it returns, and at most once per request
// id, so a retried charge never charges twice.
//
// Accounting is sequential composition: the ledger adds up the (ε, δ) of
// the releases charged to an account and compares the sums with the caps
// (package dp's Compose is the same rule within a release). Amounts are
// kept in fixed point, ε in units of 1e-9 and δ in units of 1e-15, so that
// sums are exact on every backend — ten charges of ε = 0.1 spend exactly a
// budget of 1 — and stay below 2⁵³, where a Lua script's doubles are still
// exact. Costs are rounded up to a unit and caps down, so rounding never
// lets a release through. Under zCDP the gateway keeps ρ where ε is: the
// ledger adds ρ the same way, since zCDP composes by adding ρ.
package state

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Budget is a privacy loss (ε, δ): a cost, a cap or an amount spent.
// Under zCDP accounting the gateway keeps ρ in Epsilon; the ledger adds
// either the same way.
type Budget struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// Minus returns b − c, never below zero, to the ledger's precision: what
// remains of cap b after c.
func (b Budget) Minus(c Budget) Budget {
	return Budget{
		Epsilon: max(0, math.Round((b.Epsilon-c.Epsilon)*1e9)/1e9),
		Delta:   max(0, math.Round((b.Delta-c.Delta)*1e15)/1e15),
	}
}

// Account is one budget a charge draws on.
type Account struct {
	// Key names the account within the charge's scope (any non-empty
	// string).
	Key string `json:"key"`
	// Cap is the most the account may have spent (ε > 0; δ ≥ 0, and a δ
	// cap of 0 admits only δ-free costs).
	Cap Budget `json:"cap"`
}

// Charge asks to spend Cost on every one of Accounts, each within its cap:
// all of them or none.
type Charge struct {
	// RequestID makes the charge idempotent: a charge whose id was charged
	// before charges nothing again.
	RequestID string `json:"request_id"`
	// Scope holds the accounts (for the gateway: a population and its
	// period). Every account of a charge is in its scope, so one Redis
	// Cluster slot holds them all.
	Scope string `json:"scope"`
	// Cost is the loss of the release (ε > 0).
	Cost Budget `json:"cost"`
	// Accounts are the accounts the release draws on: 1 to 8, with
	// distinct non-empty keys.
	Accounts []Account `json:"accounts"`
}

// Receipt is the outcome of a successful charge.
type Receipt struct {
	// Spent is what each account had spent right after the charge, in the
	// order of Charge.Accounts.
	Spent []Budget
	// Replayed is true when the request id had been charged before:
	// nothing was charged again and Spent is the first charge's.
	Replayed bool
}

// Ledger is the privacy budget ledger.
type Ledger interface {
	// Charge spends c.Cost on every account of c if none would exceed its
	// cap, and on none otherwise (an *ExhaustedError). A nil error means
	// the charge is durable.
	Charge(ctx context.Context, c Charge) (Receipt, error)
	// Spent returns what the named accounts of scope have spent, in the
	// order asked; unknown accounts have spent nothing.
	Spent(ctx context.Context, scope string, keys ...string) ([]Budget, error)
}

// Cache stores the answers of differentially private releases, so that a
// repeated query gets the same answer and costs nothing: averaging
// repeated answers gains nothing.
type Cache interface {
	// Answer returns the answer stored under key; ok is false when none is.
	Answer(ctx context.Context, key string) (answer []byte, ok bool, err error)
	// StoreAnswer stores answer under key unless an answer is there
	// already, and returns the answer stored under key now: the first one
	// stored wins, so every caller sees one answer per query.
	StoreAnswer(ctx context.Context, key string, answer []byte) ([]byte, error)
}

// ExhaustedError refuses a charge that would overspend an account; nothing
// was charged.
type ExhaustedError struct {
	// Account is the key of the first account, in the charge's order, the
	// cost would overspend.
	Account string
	// Spent is what each account of the charge had spent, in the charge's
	// order.
	Spent []Budget
}

func (e *ExhaustedError) Error() string {
	var spent strings.Builder
	for i, b := range e.Spent {
		if i > 0 {
			spent.WriteString(", ")
		}
		fmt.Fprintf(&spent, "ε=%g δ=%g", b.Epsilon, b.Delta)
	}
	return fmt.Sprintf("privacy budget exhausted: the cost would overspend account %q (the charge's accounts have spent %s)",
		e.Account, spent.String())
}

// ErrRequestReused is returned when a request id that was charged comes
// back with a different charge.
var ErrRequestReused = errors.New("state: request id already charged for a different charge")

var errEmptyAnswer = errors.New("state: an answer needs a key and a body")

// The fixed-point units of the ledger.
const (
	epsilonUnit = 1e-9
	deltaUnit   = 1e-15
	maxUnits    = 1 << 53
)

// amount is a Budget in ledger units.
type amount struct {
	Eps   int64 `json:"eps"`
	Delta int64 `json:"delta"`
}

// budget converts back; dividing by the exact 1e9 and 1e15 gives the
// float64 nearest the decimal amount.
func (a amount) budget() Budget {
	return Budget{Epsilon: float64(a.Eps) / 1e9, Delta: float64(a.Delta) / 1e15}
}

func (a amount) plus(b amount) amount { return amount{a.Eps + b.Eps, a.Delta + b.Delta} }

func (a amount) exceeds(limit amount) bool { return a.Eps > limit.Eps || a.Delta > limit.Delta }

// units converts v to ledger units, rounding up for a cost and down for a
// cap. The slack of 1e-3 units absorbs binary rounding (0.1 × 1e9 is
// 100000000.00000001), so decimal amounts convert exactly.
func units(v, unit float64, up bool) (int64, error) {
	if math.IsNaN(v) || v < 0 || v/unit >= maxUnits {
		return 0, fmt.Errorf("%v is not an amount the ledger can hold", v)
	}
	if up {
		return int64(math.Ceil(v/unit - 1e-3)), nil
	}
	return int64(math.Floor(v/unit + 1e-3)), nil
}

func toAmount(b Budget, up bool) (amount, error) {
	eps, err := units(b.Epsilon, epsilonUnit, up)
	if err != nil {
		return amount{}, fmt.Errorf("ε: %w", err)
	}
	delta, err := units(b.Delta, deltaUnit, up)
	if err != nil {
		return amount{}, fmt.Errorf("δ: %w", err)
	}
	return amount{eps, delta}, nil
}

// maxAccounts bounds the accounts of one charge, and with them the keys
// one Redis script holds its slot for; the gateway charges at most three.
const maxAccounts = 8

// plan is a validated charge in ledger units.
type plan struct {
	scope string
	keys  []string
	cost  amount
	caps  []amount // in the order of keys
}

func (c *Charge) plan() (plan, error) {
	p := plan{scope: c.Scope}
	if c.RequestID == "" || c.Scope == "" {
		return p, errors.New("state: a charge needs a request id and a scope")
	}
	if len(c.Accounts) == 0 || len(c.Accounts) > maxAccounts {
		return p, fmt.Errorf("state: a charge has 1 to %d accounts, not %d", maxAccounts, len(c.Accounts))
	}
	var err error
	if p.cost, err = toAmount(c.Cost, true); err != nil {
		return p, fmt.Errorf("state: cost %w", err)
	}
	if p.cost.Eps <= 0 {
		return p, errors.New("state: the cost needs a positive ε")
	}
	p.keys, p.caps = make([]string, len(c.Accounts)), make([]amount, len(c.Accounts))
	for i, a := range c.Accounts {
		switch {
		case a.Key == "":
			return p, fmt.Errorf("state: account %d has no key", i+1)
		case slices.Contains(p.keys[:i], a.Key):
			// The charge would add the cost twice to one account while
			// checking it once.
			return p, fmt.Errorf("state: account %q is named twice", a.Key)
		}
		p.keys[i] = a.Key
		if p.caps[i], err = toAmount(a.Cap, false); err != nil {
			return p, fmt.Errorf("state: cap of account %q: %w", a.Key, err)
		}
		if p.caps[i].Eps <= 0 {
			return p, fmt.Errorf("state: the cap of account %q needs a positive ε", a.Key)
		}
	}
	return p, nil
}

// apply is the one check-and-charge rule every backend runs inside its
// atomic section: given what the accounts have spent, in the plan's
// order, it returns what they will have spent, or the refusal naming the
// first account the cost would overspend. The Redis charge script mirrors
// it.
func (p plan) apply(spent []amount) ([]amount, error) {
	for i, s := range spent {
		if s.plus(p.cost).exceeds(p.caps[i]) {
			return nil, &ExhaustedError{Account: p.keys[i], Spent: budgets(spent)}
		}
	}
	after := make([]amount, len(spent))
	for i, s := range spent {
		after[i] = s.plus(p.cost)
	}
	return after, nil
}

func budgets(as []amount) []Budget {
	out := make([]Budget, len(as))
	for i, a := range as {
		out[i] = a.budget()
	}
	return out
}

// chargeRecord is what a backend remembers of a charge, for idempotency:
// the charge (which the caps are not part of: a retry may come with
// others) and what its accounts had spent after it.
type chargeRecord struct {
	Scope string   `json:"scope"`
	Keys  []string `json:"keys"`
	Cost  amount   `json:"cost"`
	Spent []amount `json:"spent,omitempty"`
}

// record is the record of p's charge, having left the accounts at spent.
func (p plan) record(spent []amount) chargeRecord {
	return chargeRecord{Scope: p.scope, Keys: p.keys, Cost: p.cost, Spent: spent}
}

// replay answers a charge whose request id was seen before.
func (r *chargeRecord) replay(p plan) (Receipt, error) {
	if r.Scope != p.scope || !slices.Equal(r.Keys, p.keys) || r.Cost != p.cost {
		return Receipt{}, ErrRequestReused
	}
	if len(r.Spent) != len(r.Keys) {
		return Receipt{}, fmt.Errorf("state: corrupt charge record: %d accounts, %d amounts", len(r.Keys), len(r.Spent))
	}
	return Receipt{Spent: budgets(r.Spent), Replayed: true}, nil
}
