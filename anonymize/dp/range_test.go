package dp

import (
	"fmt"
	"math"
	"testing"
)

// epsilonsInRange are ε's across [MinEpsilon, MaxEpsilon]: both ends and
// their neighbours inside, every half decade between, and random ones.
func epsilonsInRange() []float64 {
	eps := []float64{MinEpsilon, math.Nextafter(MinEpsilon, 1), math.Nextafter(MaxEpsilon, 0), MaxEpsilon}
	for e := -5.5; e < 2; e += 0.5 {
		eps = append(eps, math.Pow(10, e))
	}
	rng := seeded(5)
	for range 6 {
		eps = append(eps, math.Pow(10, -6+8*rng.Float64()))
	}
	return eps
}

// deltasInRange are δ's in [MinDelta, 1e-3]; the smallest make the library's
// Gaussian thresholding of partitions unusable (see newSelector).
var deltasInRange = []float64{1e-3, 1e-6, 1e-9, 1e-12, 1e-17, 1e-100, MinDelta}

// TestEveryEpsilonInRangeSetsUpAndReleases is the property that lets a
// caller check parameters before it reads data: for every ε CheckEpsilon
// accepts and every δ in [MinDelta, 1e-3], for every metric, layout, bound
// on partitions per unit and accountant, setting up a release succeeds and
// so does releasing it. Both ends of the ε range meet every δ; the other ε's
// take the δ's in turn.
func TestEveryEpsilonInRangeSetsUpAndReleases(t *testing.T) {
	metrics := []Query{
		{Metric: Count},
		{Metric: Sum, Lower: -50, Upper: 5000, Integer: true},
		{Metric: Sum, Lower: -0.5, Upper: 2.5},
		{Metric: Mean, Lower: 0, Upper: 100, Integer: true},
		{Metric: Mean, Lower: -1, Upper: 1},
	}
	layouts := []struct {
		name    string
		grouped bool
		domain  []string
	}{
		{"ungrouped", false, nil},
		{"public domain", true, []string{"a", "b", "c"}},
		{"private selection", true, nil},
	}
	var cases []Query
	for _, m := range metrics {
		for _, l := range layouts {
			for _, k := range []int{1, 5} {
				for _, acc := range []Accounting{Pure, ZCDP} {
					q := m
					q.Grouped, q.Domain, q.MaxPartitions, q.Accounting = l.grouped, l.domain, k, acc
					cases = append(cases, q)
				}
			}
		}
	}
	turn := 0
	for _, eps := range epsilonsInRange() {
		if err := CheckEpsilon(eps); err != nil {
			t.Fatalf("the test's ε %v: %v", eps, err)
		}
		deltas := deltasInRange
		if eps != MinEpsilon && eps != MaxEpsilon {
			turn++
			deltas = deltasInRange[turn%len(deltasInRange):][:1]
		}
		for _, delta := range deltas {
			for _, q := range cases {
				q.Epsilon = eps
				if q.SelectsPartitions() {
					q.Delta = delta
				}
				if q.Accounting == ZCDP {
					q.NoiseDelta = delta
				}
				checkReleases(t, q)
			}
			for _, q := range noiseCases() {
				q.Epsilon = eps
				if q.Gaussian {
					q.Delta = delta
				}
				checkNoiserReleases(t, q)
			}
		}
	}
}

func noiseCases() []NoiseQuery {
	var out []NoiseQuery
	for _, gaussian := range []bool{false, true} {
		for _, integer := range []bool{false, true} {
			for _, domain := range [][]string{nil, {"a", "b"}} {
				for _, acc := range []Accounting{Pure, ZCDP} {
					out = append(out, NoiseQuery{Gaussian: gaussian, MaxPartitions: 5, Sensitivity: 100, Integer: integer,
						Grouped: domain != nil, Domain: domain, Accounting: acc})
				}
			}
		}
	}
	return out
}

// checkReleases sets up q, feeds it 40 units in up to three partitions each
// (one outside the public domain) with values beyond the bounds, and
// releases it.
func checkReleases(t *testing.T, q Query) {
	t.Helper()
	a, err := NewAggregator(q, Options{Rand: seeded(1)})
	if err != nil {
		t.Fatalf("NewAggregator(%+v): %v", q, err)
	}
	parts := []string{"a", "b", "c", "d"}
	for u := range 40 {
		unit := fmt.Sprint("u", u)
		for j := range 1 + u%3 {
			p := parts[(u+j)%len(parts)]
			switch {
			case q.Metric == Count:
				a.Add(unit, p)
			case q.Integer:
				a.AddInt(unit, p, int64(300*u-1000))
			default:
				a.AddFloat(unit, p, 0.1*float64(u)-1.5)
			}
		}
	}
	r, err := a.Release()
	if err != nil {
		t.Fatalf("Release of %+v: %v", q, err)
	}
	want := -1 // selected partitions: any number
	switch {
	case !q.Grouped:
		want = 1
	case q.Domain != nil:
		want = len(q.Domain)
	}
	if want >= 0 && len(r.Partitions) != want {
		t.Errorf("%+v: %d partitions, want %d", q, len(r.Partitions), want)
	}
	for _, p := range r.Partitions {
		if math.IsNaN(p.Value) || math.IsNaN(p.Low) || math.IsNaN(p.High) {
			t.Errorf("%+v: partition %+v", q, p)
		}
	}
	checkCost(t, q.Accounting, r.Cost, q.Epsilon)
}

func checkNoiserReleases(t *testing.T, q NoiseQuery) {
	t.Helper()
	n, err := NewNoiser(q, Options{})
	if err != nil {
		t.Fatalf("NewNoiser(%+v): %v", q, err)
	}
	n.AddInt("a", 1000)
	n.AddFloat("a", 1000)
	r, err := n.Release()
	if err != nil {
		t.Fatalf("Release of %+v: %v", q, err)
	}
	for _, p := range r.Partitions {
		if math.IsNaN(p.Value) || math.IsNaN(p.Low) || math.IsNaN(p.High) {
			t.Errorf("%+v: partition %+v", q, p)
		}
	}
	checkCost(t, q.Accounting, r.Cost, q.Epsilon)
}

func checkCost(t *testing.T, acc Accounting, c Cost, eps float64) {
	t.Helper()
	ok := c.Epsilon == eps && c.Delta >= 0 && c.Delta < 1
	if acc == ZCDP {
		ok = ok && c.Rho > 0 && !math.IsInf(c.Rho, 0)
	} else {
		ok = ok && c.Rho == 0
	}
	if !ok {
		t.Errorf("%s release of ε = %v costs %+v", acc, eps, c)
	}
}
