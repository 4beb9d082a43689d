package dp

import (
	"math"
	"testing"

	"github.com/google/differential-privacy/go/v3/noise"
	"github.com/google/go-cmp/cmp"
)

func mustNoiser(t testing.TB, q NoiseQuery, opt Options) *Noiser {
	t.Helper()
	n, err := NewNoiser(q, opt)
	if err != nil {
		t.Fatalf("NewNoiser(%+v): %v", q, err)
	}
	return n
}

func TestNoiserReportsEveryDomainValueAndDropsOthers(t *testing.T) {
	n := mustNoiser(t, NoiseQuery{Epsilon: 1, MaxPartitions: 1, Sensitivity: 1, Integer: true, Grouped: true,
		Domain: []string{"a", "b"}}, Options{Noise: exact{}})
	n.AddInt("a", 5)
	n.AddInt("a", 7) // rows of one partition add up
	n.AddInt("c", 100)
	r, err := n.Release()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]float64{"a": 12, "b": 0}, values(r)); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if r.Selection != SelectionPublic {
		t.Errorf("selection %q, want %q", r.Selection, SelectionPublic)
	}
}

// TestNoiserCalibratesToTheDeclaredSensitivity checks the variance of the
// noise on 4,000 releases against the declared sensitivity: Laplace with
// scale L0·L∞/ε (kurtosis 6) and Gaussian with the library's σ for
// L2 = L0·L∞ (kurtosis 3). Each check fails with probability 5e-7.
func TestNoiserCalibratesToTheDeclaredSensitivity(t *testing.T) {
	const (
		releases = 4000
		l0, linf = 2, 10.0
		epsilon  = 1.0
	)
	b := l0 * linf / epsilon
	sigma := noise.SigmaForGaussian(1, l0*linf, epsilon, 1e-5)
	for _, tc := range []struct {
		name          string
		q             NoiseQuery
		sigma2, kappa float64
	}{
		{"laplace", NoiseQuery{Epsilon: epsilon, MaxPartitions: l0, Sensitivity: linf}, 2 * b * b, 6},
		{"gaussian", NoiseQuery{Epsilon: epsilon, Delta: 1e-5, Gaussian: true, MaxPartitions: l0, Sensitivity: linf}, sigma * sigma, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			samples := make([]float64, releases)
			for i := range samples {
				n := mustNoiser(t, tc.q, Options{})
				n.AddFloat("", 1000)
				r, err := n.Release()
				if err != nil {
					t.Fatal(err)
				}
				samples[i] = r.Partitions[0].Value - 1000
				if r.Mechanism != tc.name {
					t.Fatalf("mechanism %q", r.Mechanism)
				}
			}
			_, variance := meanAndVariance(samples)
			lo, hi := varianceBounds(releases, tc.sigma2, tc.kappa, 2.5e-7)
			if variance < lo || variance > hi {
				t.Errorf("noise variance %.1f outside [%.1f, %.1f] around %.1f", variance, lo, hi, tc.sigma2)
			}
		})
	}
}

func TestNewNoiserRefusesWhatItCannotCalibrate(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    NoiseQuery
	}{
		{"no sensitivity", NoiseQuery{Epsilon: 1}},
		{"infinite sensitivity", NoiseQuery{Epsilon: 1, Sensitivity: math.Inf(1)}},
		{"fractional integer sensitivity", NoiseQuery{Epsilon: 1, Sensitivity: 0.5, Integer: true}},
		{"gaussian without delta", NoiseQuery{Epsilon: 1, Sensitivity: 1, Gaussian: true}},
		{"laplace with delta", NoiseQuery{Epsilon: 1, Delta: 1e-6, Sensitivity: 1}},
		{"grouped without domain", NoiseQuery{Epsilon: 1, Sensitivity: 1, Grouped: true}},
		{"no epsilon", NoiseQuery{Sensitivity: 1}},
		{"epsilon above the range", NoiseQuery{Epsilon: 1e12, Sensitivity: 1}},
		{"gaussian delta below MinDelta", NoiseQuery{Epsilon: 1, Delta: 1e-310, Gaussian: true, Sensitivity: 1}},
		{"unknown accounting", NoiseQuery{Epsilon: 1, Sensitivity: 1, Accounting: "rdp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewNoiser(tc.q, Options{}); err == nil {
				t.Errorf("NewNoiser(%+v) succeeded", tc.q)
			}
		})
	}
}
