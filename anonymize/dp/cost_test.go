package dp

import (
	"fmt"
	"math"
	"testing"

	"github.com/google/differential-privacy/go/v3/noise"
)

func TestPureCostIsTheLoss(t *testing.T) {
	for _, q := range []Query{
		{Metric: Count, Epsilon: 0.5},
		{Metric: Mean, Epsilon: 0.3, Delta: 1e-6, Grouped: true, Lower: 0, Upper: 10, Accounting: Pure},
	} {
		l := q.Loss()
		if got, want := q.Cost(), (Cost{Epsilon: l.Epsilon, Delta: l.Delta}); got != want {
			t.Errorf("%+v: Cost() = %+v, want %+v", q, got, want)
		}
	}
	n := NoiseQuery{Epsilon: 0.5, Delta: 1e-6, Gaussian: true, MaxPartitions: 2, Sensitivity: 3}
	if got, want := n.Cost(), (Cost{Epsilon: 0.5, Delta: 1e-6}); got != want {
		t.Errorf("%+v: Cost() = %+v, want %+v", n, got, want)
	}
}

// gaussianRho is the zCDP of the library's Gaussian noise for (L0, L∞, ε, δ):
// Δ2²/(2σ²) with Δ2 = L∞·√L0 and σ as the library computes it.
func gaussianRho(l0 int64, linf, eps, delta float64) float64 {
	sigma := noise.SigmaForGaussian(l0, linf, eps, delta)
	return linf * linf * float64(l0) / (2 * sigma * sigma)
}

// TestZCDPCostIsTheRhoOfTheLibrarysSigma recomputes each release's ρ from
// the sensitivities the library's aggregations pass to their noise (read in
// dpagg's count.go, sum.go and mean.go): a count's L∞ is 1, a sum's the
// larger magnitude of its bounds, and a mean is a count and a sum of
// distances from the bounds' midpoint, each with half of ε and of δ.
func TestZCDPCostIsTheRhoOfTheLibrarysSigma(t *testing.T) {
	const (
		eps, noiseDelta, selDelta = 0.8, 1e-7, 1e-6
	)
	for _, k := range []int64{1, 5} {
		for _, selects := range []bool{false, true} {
			agg, selRho, delta := eps, 0.0, 0.0
			if selects {
				agg, selRho, delta = eps/2, (eps/2)*(eps/2)/2, selDelta
			}
			for _, tc := range []struct {
				name string
				q    Query
				rho  float64
			}{
				{"count", Query{Metric: Count}, gaussianRho(k, 1, agg, noiseDelta)},
				{"integer sum", Query{Metric: Sum, Lower: -50, Upper: 5000, Integer: true}, gaussianRho(k, 5000, agg, noiseDelta)},
				{"sum", Query{Metric: Sum, Lower: -7.5, Upper: 2}, gaussianRho(k, 7.5, agg, noiseDelta)},
				{"mean", Query{Metric: Mean, Lower: 10, Upper: 110},
					gaussianRho(k, 1, agg/2, noiseDelta/2) + gaussianRho(k, 50, agg/2, noiseDelta/2)},
			} {
				t.Run(fmt.Sprintf("%s/k=%d/selection=%v", tc.name, k, selects), func(t *testing.T) {
					q := tc.q
					q.Epsilon, q.MaxPartitions, q.Accounting, q.NoiseDelta = eps, int(k), ZCDP, noiseDelta
					if selects {
						q.Grouped, q.Delta = true, selDelta
					}
					got := q.Cost()
					want := Cost{Epsilon: eps, Rho: selRho + tc.rho, Delta: delta}
					if got.Epsilon != want.Epsilon || got.Delta != want.Delta || math.Abs(got.Rho-want.Rho) > 1e-12*want.Rho {
						t.Errorf("Cost() = %+v, want %+v", got, want)
					}
					if _, err := NewAggregator(q, Options{}); err != nil {
						t.Errorf("NewAggregator: %v", err)
					}
				})
			}
		}
	}
}

func TestNoiseQueryCostUnderZCDP(t *testing.T) {
	eps := 0.4
	laplace := NoiseQuery{Epsilon: eps, MaxPartitions: 3, Sensitivity: 2, Accounting: ZCDP}
	if got, want := laplace.Cost(), (Cost{Epsilon: eps, Rho: eps * eps / 2}); got != want {
		t.Errorf("Laplace noise: Cost() = %+v, want %+v", got, want)
	}
	// The noise is calibrated as one row of L∞ = MaxPartitions × Sensitivity.
	gaussian := NoiseQuery{Epsilon: 0.4, Delta: 1e-6, Gaussian: true, MaxPartitions: 3, Sensitivity: 2, Accounting: ZCDP}
	want := Cost{Epsilon: 0.4, Rho: gaussianRho(1, 6, 0.4, 1e-6)}
	if got := gaussian.Cost(); got.Epsilon != want.Epsilon || got.Delta != 0 || math.Abs(got.Rho-want.Rho) > 1e-12*want.Rho {
		t.Errorf("Gaussian noise: Cost() = %+v, want %+v", got, want)
	}
	n := mustNoiser(t, gaussian, Options{})
	r, err := n.Release()
	if err != nil {
		t.Fatal(err)
	}
	if r.Cost != gaussian.Cost() || r.Loss != (Loss{Epsilon: 0.4, Delta: 1e-6}) || r.Mechanism != "gaussian" {
		t.Errorf("result mechanism %q, loss %+v, cost %+v; want gaussian, the query's loss and %+v", r.Mechanism, r.Loss, r.Cost, gaussian.Cost())
	}
}

func TestZCDPReleaseAddsGaussianNoiseAndCarriesItsCost(t *testing.T) {
	q := Query{Metric: Count, Epsilon: 1, Delta: 1e-6, Grouped: true, Accounting: ZCDP, NoiseDelta: 1e-7}
	a := mustAggregator(t, q, Options{})
	for u := range 500 {
		a.Add(fmt.Sprint("u", u), "crowd")
	}
	r := release(t, a)
	if r.Mechanism != "gaussian" || r.Selection != SelectionPrivate {
		t.Errorf("mechanism %q, selection %q; want gaussian, %s", r.Mechanism, r.Selection, SelectionPrivate)
	}
	if r.Cost != q.Cost() || r.Loss != q.Loss() {
		t.Errorf("result cost %+v loss %+v, want the query's %+v and %+v", r.Cost, r.Loss, q.Cost(), q.Loss())
	}
	if len(r.Partitions) != 1 {
		t.Errorf("partitions %+v: a partition of 500 people is kept", r.Partitions)
	}
}

// TestZCDPCountNoiseHasTheSigmaItsCostClaims releases a count 4,000 times
// with the library's Gaussian noise and checks the noise's variance against
// the σ² = Δ2²/(2ρ) that the charged ρ implies (Δ2 = 1 for a count of one
// partition per unit), plus the 1/12 of rounding the noise to an integer.
// The chi-square bounds are about ±11% and fail with probability 5e-7.
func TestZCDPCountNoiseHasTheSigmaItsCostClaims(t *testing.T) {
	const (
		releases = 4000
		units    = 10
	)
	q := Query{Metric: Count, Epsilon: 0.5, Accounting: ZCDP, NoiseDelta: 1e-5}
	sigma2 := 1 / (2 * q.Cost().Rho)
	samples := make([]float64, releases)
	for i := range samples {
		a := mustAggregator(t, q, Options{})
		for u := range units {
			a.Add(fmt.Sprint("unit", u), "")
		}
		samples[i] = release(t, a).Partitions[0].Value - units
	}
	mean, variance := meanAndVariance(samples)
	lo, hi := varianceBounds(releases, sigma2+1.0/12, 3, 2.5e-7)
	t.Logf("ρ = %.5f implies σ² = %.3f; noise mean %.3f, variance %.3f, bounds [%.3f, %.3f]", q.Cost().Rho, sigma2, mean, variance, lo, hi)
	if variance < lo || variance > hi {
		t.Errorf("noise variance %.3f outside [%.3f, %.3f] around the σ² = %.3f the cost claims", variance, lo, hi, sigma2)
	}
}
