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
// The ledger guarantees that budgets are never overspent: a [Charge] checks
// and spends two accounts (the consumer's on a dataset and the dataset's
// total) atomically, all or nothing, durably before it returns, and at
// most once per request id, so a retried charge never charges twice.
//
// Accounting is sequential composition: the ledger adds up the (ε, δ) of
// the releases charged to an account and compares the sums with the caps
// (package dp's Compose is the same rule within a release). Amounts are
// kept in fixed point, ε in units of 1e-9 and δ in units of 1e-15, so that
// sums are exact on every backend — ten charges of ε = 0.1 spend exactly a
// budget of 1 — and stay below 2⁵³, where a Lua script's doubles are still
// exact. Costs are rounded up to a unit and caps down, so rounding never
// lets a release through. A tighter accountant (zCDP) would change what is
// added, not how.
package state

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Budget is a privacy loss (ε, δ): a cost, a cap or an amount spent.
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

// Charge asks to spend Cost on two accounts: the consumer's on the dataset
// and the dataset's total, each within its cap.
type Charge struct {
	// RequestID makes the charge idempotent: a charge whose id was charged
	// before charges nothing again.
	RequestID string `json:"request_id"`
	// Dataset is "source/dataset".
	Dataset string `json:"dataset"`
	// Consumer is the caller's subject.
	Consumer string `json:"consumer"`
	// Cost is the loss of the release (ε > 0).
	Cost Budget `json:"cost"`
	// ConsumerCap and DatasetCap are the budgets of the two accounts (ε > 0;
	// δ ≥ 0, and a δ cap of 0 admits only δ-free releases).
	ConsumerCap Budget `json:"consumer_cap"`
	DatasetCap  Budget `json:"dataset_cap"`
}

// Balance is what has been spent on the two accounts of a dataset and
// consumer.
type Balance struct {
	Consumer Budget `json:"consumer"`
	Dataset  Budget `json:"dataset"`
}

// Receipt is the outcome of a successful charge.
type Receipt struct {
	// Balance is what the accounts had spent right after the charge.
	Balance Balance
	// Replayed is true when the request id had been charged before:
	// nothing was charged again and Balance is the first charge's.
	Replayed bool
}

// Ledger is the privacy budget ledger.
type Ledger interface {
	// Charge spends c.Cost on both accounts if neither would exceed its
	// cap, and on neither otherwise (an *ExhaustedError). A nil error
	// means the charge is durable.
	Charge(ctx context.Context, c Charge) (Receipt, error)
	// Spent returns what the consumer and the dataset have spent; unknown
	// accounts have spent nothing.
	Spent(ctx context.Context, dataset, consumer string) (Balance, error)
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
	// Account is "consumer" or "dataset": the first account found short.
	Account string
	// Spent is what both accounts had spent.
	Spent Balance
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("privacy budget exhausted: the %s account has spent ε=%g, δ=%g",
		e.Account, e.account().Epsilon, e.account().Delta)
}

func (e *ExhaustedError) account() Budget {
	if e.Account == "consumer" {
		return e.Spent.Consumer
	}
	return e.Spent.Dataset
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

// plan is a validated charge in ledger units.
type plan struct {
	cost, consumerCap, datasetCap amount
}

func (c *Charge) plan() (plan, error) {
	var p plan
	if c.RequestID == "" || c.Dataset == "" || c.Consumer == "" {
		return p, errors.New("state: a charge needs a request id, a dataset and a consumer")
	}
	var err error
	if p.cost, err = toAmount(c.Cost, true); err != nil {
		return p, fmt.Errorf("state: cost %w", err)
	}
	if p.consumerCap, err = toAmount(c.ConsumerCap, false); err != nil {
		return p, fmt.Errorf("state: consumer cap %w", err)
	}
	if p.datasetCap, err = toAmount(c.DatasetCap, false); err != nil {
		return p, fmt.Errorf("state: dataset cap %w", err)
	}
	if p.cost.Eps <= 0 || p.consumerCap.Eps <= 0 || p.datasetCap.Eps <= 0 {
		return p, errors.New("state: cost and caps need a positive ε")
	}
	return p, nil
}

// apply is the one check-and-charge rule every backend runs inside its
// atomic section: given what the accounts have spent, it returns what they
// will have spent, or the refusal.
func (p plan) apply(consumer, dataset amount) (amount, amount, error) {
	spent := Balance{Consumer: consumer.budget(), Dataset: dataset.budget()}
	if consumer.plus(p.cost).exceeds(p.consumerCap) {
		return consumer, dataset, &ExhaustedError{Account: "consumer", Spent: spent}
	}
	if dataset.plus(p.cost).exceeds(p.datasetCap) {
		return consumer, dataset, &ExhaustedError{Account: "dataset", Spent: spent}
	}
	return consumer.plus(p.cost), dataset.plus(p.cost), nil
}

// chargeRecord is what a backend remembers of a charge, for idempotency.
type chargeRecord struct {
	Dataset  string `json:"dataset"`
	Consumer string `json:"consumer"`
	Cost     amount `json:"cost"`
	Consumed amount `json:"consumer_after"`
	Total    amount `json:"dataset_after"`
}

// replay answers a charge whose request id was seen before.
func (r *chargeRecord) replay(c *Charge, p plan) (Receipt, error) {
	if r.Dataset != c.Dataset || r.Consumer != c.Consumer || r.Cost != p.cost {
		return Receipt{}, ErrRequestReused
	}
	return Receipt{Balance: Balance{Consumer: r.Consumed.budget(), Dataset: r.Total.budget()}, Replayed: true}, nil
}
