package dp

import (
	"fmt"
	"math"
)

// MinEpsilon and MaxEpsilon bound the ε of one release, checked by
// [CheckEpsilon] before anything is read. The noise of a release gets at
// least a quarter of its ε (a mean's halves, after partition selection took
// half), and MinEpsilon/4 is far above the 2^-50 the library's noise
// refuses below, so nothing the library is asked to do afterwards is
// refused for its ε. Above MaxEpsilon a guarantee of e^ε means nothing.
const (
	MinEpsilon = 1e-6
	MaxEpsilon = 100
)

// MinDelta is the smallest δ a release may select partitions with or
// calibrate Gaussian noise for. The library divides δ (by 2, by
// MaxPartitions) before using it, and a quotient that underflows fails or
// worse: at δ = 5e-324 partition selection's int64 arithmetic overflows.
const MinDelta = 1e-300

// CheckEpsilon reports whether eps is an ε a release may be made with: a
// number in [MinEpsilon, MaxEpsilon]. NaN and ±Inf are not.
func CheckEpsilon(eps float64) error {
	if eps >= MinEpsilon && eps <= MaxEpsilon {
		return nil
	}
	return fmt.Errorf("epsilon %v: epsilon must be between %v and %v", eps, MinEpsilon, MaxEpsilon)
}

// Loss is a privacy loss (ε, δ).
type Loss struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// Compose is basic sequential composition, the pure accountant's rule:
// running mechanisms one after the other on the same data costs the sum of
// their ε's and the sum of their δ's. Under either accountant it composes a
// release's parts (partition selection, then aggregation) into the
// release's own (ε, δ)-DP loss; across releases the ledger adds up Pure
// costs by this rule and ZCDP costs by adding ρ's instead (see [Cost]).
func Compose(losses ...Loss) Loss {
	var out Loss
	for _, l := range losses {
		out.Epsilon += l.Epsilon
		out.Delta += l.Delta
	}
	return out
}

// EpsilonForRho is the ε at which a ρ-zCDP account is (ε, δ)-DP:
// ρ + 2√(ρ ln(1/δ)) (Bun & Steinke 2016, Proposition 1.3). An account that
// is δ′-approximately ρ-zCDP is (ε, δ + δ′)-DP. This is the standard
// conversion, not the tightest one (Canonne, Kamath & Steinke 2020 give a
// tighter, numerically computed one); it is what every answer reports. It
// is NaN unless ρ ≥ 0 and 0 < δ < 1.
func EpsilonForRho(rho, delta float64) float64 {
	if !(rho >= 0 && delta > 0 && delta < 1) || math.IsInf(rho, 0) {
		return math.NaN()
	}
	return rho + 2*math.Sqrt(rho*math.Log(1/delta))
}

// RhoForEpsilon is the inverse of [EpsilonForRho]: the largest ρ whose
// conversion at δ is at most eps, (√(ln(1/δ)+ε) − √ln(1/δ))². It turns a
// budget stated as (ε, δ) into the ρ a ZCDP account may spend. It is NaN
// unless ε ≥ 0 and 0 < δ < 1.
func RhoForEpsilon(eps, delta float64) float64 {
	if !(eps >= 0 && delta > 0 && delta < 1) || math.IsInf(eps, 0) {
		return math.NaN()
	}
	l := math.Log(1 / delta)
	// The same value as the difference of square roots, without the
	// cancellation that loses most digits when ε is small beside ln(1/δ).
	x := eps / (math.Sqrt(l+eps) + math.Sqrt(l))
	rho := x * x
	// Rounding may leave the conversion of rho an ulp above eps; a budget
	// must never convert to more than it was stated as.
	for rho > 0 && EpsilonForRho(rho, delta) > eps {
		rho = math.Nextafter(rho, 0)
	}
	return rho
}
