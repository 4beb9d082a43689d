package dp

import (
	"math"
	"strings"
	"testing"
)

func TestCheckEpsilonRefusesWhatLiesOutsideItsRange(t *testing.T) {
	for _, eps := range []float64{0, math.Copysign(0, -1), -1, -MinEpsilon, math.NaN(), math.Inf(1), math.Inf(-1), 1e-300,
		math.SmallestNonzeroFloat64, math.Nextafter(MinEpsilon, 0), MinEpsilon / 2, math.Nextafter(MaxEpsilon, math.Inf(1)), 101, 1e12} {
		err := CheckEpsilon(eps)
		if err == nil {
			t.Errorf("CheckEpsilon(%v) accepted it", eps)
			continue
		}
		if !strings.Contains(err.Error(), "epsilon must be between 1e-06 and 100") {
			t.Errorf("CheckEpsilon(%v) = %q: the message does not state the range", eps, err)
		}
	}
	for _, eps := range []float64{MinEpsilon, math.Nextafter(MinEpsilon, 1), 0.1, 1, math.Nextafter(MaxEpsilon, 0), MaxEpsilon} {
		if err := CheckEpsilon(eps); err != nil {
			t.Errorf("CheckEpsilon(%v) = %v, want it accepted", eps, err)
		}
	}
}

func TestEpsilonForRhoIsTheStandardConversion(t *testing.T) {
	// ρ + 2√(ρ ln(1/δ)) = 0.5 + 2√(0.5 · 13.8155…) = 5.7565…
	if got := EpsilonForRho(0.5, 1e-6); math.Abs(got-5.757) > 5e-4 {
		t.Errorf("EpsilonForRho(0.5, 1e-6) = %v, want about 5.757", got)
	}
	if got := EpsilonForRho(0, 1e-6); got != 0 {
		t.Errorf("EpsilonForRho(0, 1e-6) = %v: nothing spent converts to ε = 0", got)
	}
}

func TestRhoForEpsilonInvertsEpsilonForRho(t *testing.T) {
	for _, delta := range []float64{1e-3, 1e-6, 1e-10, 1e-300} {
		for _, rho := range []float64{1e-12, 1e-6, 0.005, 0.5, 1, 30, 5000} {
			eps := EpsilonForRho(rho, delta)
			if got := RhoForEpsilon(eps, delta); math.Abs(got-rho) > 1e-9*rho {
				t.Errorf("RhoForEpsilon(EpsilonForRho(%v, %v) = %v) = %v", rho, delta, eps, got)
			}
		}
		for _, eps := range []float64{MinEpsilon, 0.1, 1, 10, MaxEpsilon} {
			rho := RhoForEpsilon(eps, delta)
			if got := EpsilonForRho(rho, delta); math.Abs(got-eps) > 1e-9*eps {
				t.Errorf("EpsilonForRho(RhoForEpsilon(%v, %v) = %v) = %v", eps, delta, rho, got)
			}
		}
	}
}

// A ledger turns an (ε, δ) budget into ρ with RhoForEpsilon and reports ρ
// spent with EpsilonForRho: the budget must never report as more than it
// was stated as, not even by rounding.
func TestRhoForEpsilonNeverConvertsAboveItsEpsilon(t *testing.T) {
	rng := seeded(11)
	for range 20000 {
		eps := math.Pow(10, -8+11*rng.Float64())
		delta := math.Pow(10, -300*rng.Float64())
		if delta >= 1 {
			continue
		}
		rho := RhoForEpsilon(eps, delta)
		if got := EpsilonForRho(rho, delta); got > eps {
			t.Fatalf("RhoForEpsilon(%v, %v) = %v converts back to %v, more than the budget", eps, delta, rho, got)
		}
		if EpsilonForRho(rho*(1+1e-9), delta) <= eps {
			t.Fatalf("RhoForEpsilon(%v, %v) = %v is not the largest ρ within the budget", eps, delta, rho)
		}
	}
}

func TestConversionsAreNaNOutsideTheirDomain(t *testing.T) {
	for _, tc := range []struct{ x, delta float64 }{
		{-1, 1e-6}, {math.NaN(), 1e-6}, {math.Inf(1), 1e-6}, {1, 0}, {1, 1}, {1, -1e-6}, {1, math.NaN()},
	} {
		if got := EpsilonForRho(tc.x, tc.delta); !math.IsNaN(got) {
			t.Errorf("EpsilonForRho(%v, %v) = %v, want NaN", tc.x, tc.delta, got)
		}
		if got := RhoForEpsilon(tc.x, tc.delta); !math.IsNaN(got) {
			t.Errorf("RhoForEpsilon(%v, %v) = %v, want NaN", tc.x, tc.delta, got)
		}
	}
}

// TestHundredAnswersCostLessUnderZCDP is the comparison the docs make: 100
// answers of ε = 0.1 each spend ε = 10 under pure accounting, while under
// zCDP each Laplace answer costs ρ = ε²/2 = 0.005, 100 of them ρ = 0.5,
// which is (5.76, 1e-6)-DP. A Gaussian count calibrated for (0.1, 1e-6)
// costs less still.
func TestHundredAnswersCostLessUnderZCDP(t *testing.T) {
	const (
		answers = 100
		delta   = 1e-6
	)
	laplace := NoiseQuery{Epsilon: 0.1, MaxPartitions: 1, Sensitivity: 1, Integer: true}
	var pure Loss
	for range answers {
		pure = Compose(pure, laplace.Loss())
	}
	laplace.Accounting = ZCDP
	count := Query{Metric: Count, Epsilon: 0.1, Accounting: ZCDP, NoiseDelta: delta}
	var rhoLaplace, rhoGaussian float64
	for range answers {
		rhoLaplace += laplace.Cost().Rho
		rhoGaussian += count.Cost().Rho
	}
	zcdp := EpsilonForRho(rhoLaplace, delta)
	t.Logf("%d answers of ε = 0.1: pure ε = %.4g; zCDP ρ = %d × %.4g = %.4g → ε = %.4g at δ = %g",
		answers, pure.Epsilon, answers, laplace.Cost().Rho, rhoLaplace, zcdp, delta)
	t.Logf("as Gaussian counts calibrated for (0.1, %g): ρ = %d × %.4g = %.4g → ε = %.4g at δ = %g",
		delta, answers, count.Cost().Rho, rhoGaussian, EpsilonForRho(rhoGaussian, delta), delta)
	if math.Abs(pure.Epsilon-10) > 1e-9 {
		t.Errorf("pure accounting spent ε = %v, want 10", pure.Epsilon)
	}
	if math.Abs(laplace.Cost().Rho-0.005) > 1e-15 || math.Abs(rhoLaplace-0.5) > 1e-12 {
		t.Errorf("zCDP spent ρ = %v (%v each), want 0.5 (0.005 each)", rhoLaplace, laplace.Cost().Rho)
	}
	if math.Abs(zcdp-5.757) > 5e-4 {
		t.Errorf("ρ = 0.5 converts to ε = %v at δ = 1e-6, want about 5.757", zcdp)
	}
	if !(rhoGaussian < rhoLaplace) {
		t.Errorf("Gaussian counts cost ρ = %v, not less than the Laplace answers' %v", rhoGaussian, rhoLaplace)
	}
}
