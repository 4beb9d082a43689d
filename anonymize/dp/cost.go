package dp

import (
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/noise"
)

// Accounting names the accountant a release is charged under.
type Accounting string

// The accountants.
const (
	// Pure adds up (ε, δ) by basic composition; record-level releases add
	// Laplace noise.
	Pure Accounting = "pure"
	// ZCDP adds up ρ of zero-concentrated DP (Bun & Steinke 2016), which
	// composes more tightly; record-level releases add Gaussian noise. The
	// account's (ε, δ) is reported through [EpsilonForRho].
	ZCDP Accounting = "zcdp"
)

func (a Accounting) check() error {
	switch a {
	case "", Pure, ZCDP:
		return nil
	}
	return fmt.Errorf("unknown accounting %q: want %q or %q", a, Pure, ZCDP)
}

// Cost is what one release adds to an account: (ε, δ) under Pure; (ρ, δ)
// under ZCDP, where δ is the approximate-zCDP part (partition selection's
// δ); Epsilon always carries the release's own (ε, δ)-DP ε.
type Cost struct {
	Epsilon float64 `json:"epsilon"`
	Rho     float64 `json:"rho,omitempty"`
	Delta   float64 `json:"delta"`
}

// gaussianCall is one kind of Gaussian noise addition a release makes: the
// sensitivities and the (ε, δ) the library passes to its noise, from which
// it computes σ with noise.SigmaForGaussian.
type gaussianCall struct {
	l0         int64
	lInf       float64
	eps, delta float64
}

// rho is the zCDP of the noise: Gaussian noise of standard deviation σ on a
// value of L2 sensitivity Δ2 = L∞·√L0 is Δ2²/(2σ²)-zCDP, whatever (ε, δ) σ
// was calibrated for. σ is the library's own, so ρ is exact for the noise
// actually added (SigmaForGaussian's binary search is deterministic).
func (c gaussianCall) rho() float64 {
	l2 := c.lInf * math.Sqrt(float64(c.l0))
	sigma := noise.SigmaForGaussian(c.l0, c.lInf, c.eps, c.delta)
	return l2 * l2 / (2 * sigma * sigma)
}

// gaussianCalls lists the kinds of noise addition of one partition under
// ZCDP, with the arguments the library passes (dpagg at v3.0.0):
//   - Count: L0 = MaxPartitions, L∞ = 1, the aggregation's (ε, δ).
//   - Sum: L0 = MaxPartitions, L∞ = max(|Lower|, |Upper|), the same (ε, δ).
//   - Mean: a count and a sum of each value's distance from the bounds'
//     midpoint, each with half the aggregation's ε and half its δ; the
//     count has L∞ = 1, the sum L∞ = Upper − midpoint, as BoundedMean
//     computes them.
//
// One kind is one term of the release's ρ, not one per partition: a unit
// contributes to at most MaxPartitions partitions, each by at most L∞, so
// the vector of all the partitions' values moves by at most L∞·√L0 in L2,
// and Gaussian noise of σ on every partition is Δ2²/(2σ²)-zCDP for the
// whole vector. That is what L0 = MaxPartitions in the library's
// calibration already accounts for.
func (q *Query) gaussianCalls() []gaussianCall {
	_, agg := q.parts()
	k := int64(q.partitionsPerUnit())
	switch q.Metric {
	case Count:
		return []gaussianCall{{k, 1, agg.Epsilon, agg.Delta}}
	case Sum:
		return []gaussianCall{{k, math.Max(math.Abs(q.Lower), math.Abs(q.Upper)), agg.Epsilon, agg.Delta}}
	}
	mid := q.Lower + (q.Upper-q.Lower)/2
	eps, delta := agg.Epsilon/2, agg.Delta/2
	return []gaussianCall{{k, 1, eps, delta}, {k, q.Upper - mid, eps, delta}}
}

// Cost is what the release adds to its account. Under Pure it is the
// release's Loss. Under ZCDP ρ is the Gaussian noise's (see gaussianCalls)
// plus ε_sel²/2 for partition selection, an (ε_sel, δ_sel)-DP mechanism and
// so δ_sel-approximately ε_sel²/2-zCDP (Bun & Steinke 2016); δ is δ_sel.
// The δ the noise is calibrated for (NoiseDelta) is not charged: the
// Gaussian noise is ρ-zCDP exactly. The query must be one NewAggregator
// accepts.
func (q *Query) Cost() Cost {
	l := q.Loss()
	if !q.zcdp() {
		return Cost{Epsilon: l.Epsilon, Delta: l.Delta}
	}
	sel, _ := q.parts()
	c := Cost{Epsilon: l.Epsilon, Rho: sel.Epsilon * sel.Epsilon / 2, Delta: sel.Delta}
	for _, g := range q.gaussianCalls() {
		c.Rho += g.rho()
	}
	return c
}

// Cost is what the release adds to its account. Under Pure it is the
// release's Loss. Under ZCDP, Laplace noise, being ε-DP, costs ρ = ε²/2;
// Gaussian noise costs Δ2²/(2σ²) for the σ it is calibrated with, and δ
// is not charged. The query must be one NewNoiser accepts.
func (q *NoiseQuery) Cost() Cost {
	l := q.Loss()
	switch {
	case q.Accounting != ZCDP:
		return Cost{Epsilon: l.Epsilon, Delta: l.Delta}
	case q.Gaussian:
		l0, linf := q.sensitivity()
		return Cost{Epsilon: l.Epsilon, Rho: gaussianCall{l0, linf, q.Epsilon, q.Delta}.rho()}
	}
	return Cost{Epsilon: l.Epsilon, Rho: q.Epsilon * q.Epsilon / 2}
}
