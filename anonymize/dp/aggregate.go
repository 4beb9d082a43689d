package dp

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"
)

// Metric is what a release computes per partition.
type Metric string

// The metrics.
const (
	// Count is the number of privacy units with a record in the partition.
	Count Metric = "count"
	// Sum adds up, over the units in the partition, each unit's sum of its
	// values there, clamped to the bounds.
	Sum Metric = "sum"
	// Mean averages, over the units in the partition, each unit's sum of
	// its values there, clamped to the bounds.
	Mean Metric = "mean"
)

// Confidence is the level of the confidence intervals a release reports.
const Confidence = 0.95

// Selection says how a release chose the partitions it reports.
const (
	// SelectionNone: an ungrouped release reports the one total.
	SelectionNone = "none"
	// SelectionPublic: every value of a public domain is reported.
	SelectionPublic = "public_domain"
	// SelectionPrivate: partitions were selected with PreAggSelectPartition.
	SelectionPrivate = "private_selection"
)

// maxExact is the largest magnitude below which every integer is a float64.
const maxExact = 1 << 53

// maxPartitionsPerUnit bounds MaxPartitions. Partition selection for a tiny
// δ (see newSelector) has the library compute, as an int64, a crossover
// count of about (k/ε)·ln(k/δ) units for k = MaxPartitions; at this bound
// it stays below 2^51 for every ε and δ a release accepts.
const maxPartitionsPerUnit = 1 << 20

// Query describes a release of record-level data.
type Query struct {
	Metric Metric
	// Epsilon is the ε of the whole release, partition selection included;
	// see CheckEpsilon.
	Epsilon float64
	// Delta is the δ of partition selection: at least MinDelta when the
	// release selects partitions, 0 otherwise.
	Delta float64
	// Accounting is the accountant the release is charged under; "" is
	// Pure. It chooses the noise: Laplace under Pure, Gaussian under ZCDP.
	Accounting Accounting
	// NoiseDelta is the δ the Gaussian noise of a ZCDP release is
	// calibrated for, with the aggregation's ε: in [MinDelta, 1) under
	// ZCDP, 0 under Pure. It sets σ and is part of the release's own
	// (ε, δ)-DP Loss, but a ZCDP account is charged ρ for that σ, not δ.
	NoiseDelta float64
	// Grouped releases one value per partition; an ungrouped release has
	// the single partition "" (the total).
	Grouped bool
	// Domain lists the public partitions of a grouped release: each is
	// reported, empty ones included, and records in any other partition
	// are dropped. Nil makes the release select partitions privately.
	Domain []string
	// MaxPartitions is how many partitions one unit contributes to at most
	// (default 1).
	MaxPartitions int
	// Lower and Upper bound a unit's sum in a partition (sum and mean).
	Lower, Upper float64
	// Integer makes sums exact integer arithmetic (BoundedSumInt64); the
	// bounds must then be integers, and values are added with AddInt.
	Integer bool
}

// SelectsPartitions reports whether the release spends part of its ε, and
// a δ, to select the partitions it reports.
func (q *Query) SelectsPartitions() bool { return q.Grouped && q.Domain == nil }

func (q *Query) zcdp() bool { return q.Accounting == ZCDP }

// partitionsPerUnit is MaxPartitions, or 1 when unset, as NewAggregator
// defaults it.
func (q *Query) partitionsPerUnit() int {
	return max(q.MaxPartitions, 1)
}

// parts splits the release's loss: when it selects partitions, half of ε
// and all of Delta go to selection, the rest, with NoiseDelta, to the
// aggregation.
func (q *Query) parts() (sel, agg Loss) {
	if !q.SelectsPartitions() {
		return Loss{}, Loss{Epsilon: q.Epsilon, Delta: q.NoiseDelta}
	}
	half := q.Epsilon / 2
	return Loss{Epsilon: half, Delta: q.Delta}, Loss{Epsilon: q.Epsilon - half, Delta: q.NoiseDelta}
}

// Loss is the release's own (ε, δ)-DP guarantee, its parts composed: under
// ZCDP its δ includes NoiseDelta. What an account is charged is [Query.Cost].
func (q *Query) Loss() Loss {
	sel, agg := q.parts()
	if !q.SelectsPartitions() {
		return agg
	}
	return Compose(sel, agg)
}

func (q *Query) validate() error {
	switch q.Metric {
	case Count, Sum, Mean:
	default:
		return fmt.Errorf("unknown metric %q", q.Metric)
	}
	if err := q.Accounting.check(); err != nil {
		return err
	}
	if err := CheckEpsilon(q.Epsilon); err != nil {
		return err
	}
	if q.SelectsPartitions() {
		if !(q.Delta >= MinDelta && q.Delta < 1) {
			return fmt.Errorf("delta %v: selecting partitions needs %v <= δ < 1", q.Delta, MinDelta)
		}
	} else if q.Delta != 0 {
		return fmt.Errorf("delta %v: only a release that selects partitions spends δ", q.Delta)
	}
	if q.zcdp() {
		if !(q.NoiseDelta >= MinDelta && q.NoiseDelta < 1) {
			return fmt.Errorf("noise delta %v: Gaussian noise under zCDP accounting needs %v <= δ < 1", q.NoiseDelta, MinDelta)
		}
	} else if q.NoiseDelta != 0 {
		return fmt.Errorf("noise delta %v: only Gaussian noise under zCDP accounting is calibrated with a δ", q.NoiseDelta)
	}
	if q.MaxPartitions < 1 || q.MaxPartitions > maxPartitionsPerUnit {
		return fmt.Errorf("max partitions %d: want 1 to %d", q.MaxPartitions, maxPartitionsPerUnit)
	}
	if !q.Grouped && q.Domain != nil {
		return errors.New("an ungrouped release has no domain")
	}
	if err := checkDomain(q.Domain); err != nil {
		return err
	}
	if q.Metric == Count {
		return nil
	}
	return checkBounds(q.Metric, q.Lower, q.Upper, q.Integer)
}

func checkDomain(domain []string) error {
	seen := make(map[string]bool, len(domain))
	for _, v := range domain {
		if seen[v] {
			return fmt.Errorf("domain lists %q twice", v)
		}
		seen[v] = true
	}
	return nil
}

func checkBounds(m Metric, lo, hi float64, integer bool) error {
	switch {
	case math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) || lo > hi:
		return fmt.Errorf("bounds [%v, %v]: want finite lower <= upper", lo, hi)
	case integer && (lo != math.Trunc(lo) || hi != math.Trunc(hi) || math.Abs(lo) > maxExact || math.Abs(hi) > maxExact):
		return fmt.Errorf("bounds [%v, %v]: an integer field needs integer bounds", lo, hi)
	case m == Sum && lo == 0 && hi == 0:
		return errors.New("bounds [0, 0]: every sum would be 0")
	case m == Mean && lo == hi:
		return fmt.Errorf("bounds [%v, %v]: a mean needs lower < upper", lo, hi)
	}
	return nil
}

// Options inject the randomness of a release.
type Options struct {
	// Noise is the mechanism's noise; nil means the library's secure
	// noise of the release's kind (Laplace, or Gaussian for a ZCDP or
	// Gaussian release). Anything but noise.Laplace() and noise.Gaussian()
	// is for tests.
	Noise noise.Noise
	// Rand samples the partitions kept of a unit that contributes to too
	// many; nil means a generator seeded from crypto/rand.
	Rand *rand.Rand
}

func (o Options) noise(gaussian bool) noise.Noise {
	switch {
	case o.Noise != nil:
		return o.Noise
	case gaussian:
		return noise.Gaussian()
	}
	return noise.Laplace()
}

func (o Options) rand() *rand.Rand {
	if o.Rand != nil {
		return o.Rand
	}
	var seed [32]byte
	crand.Read(seed[:])
	return rand.New(rand.NewChaCha8(seed))
}

// mechanism names a noise for a release.
func mechanism(n noise.Noise) string {
	switch n {
	case noise.Laplace():
		return "laplace"
	case noise.Gaussian():
		return "gaussian"
	}
	return fmt.Sprint(n)
}

// Result is a release: the noisy value of each partition reported.
type Result struct {
	// Mechanism names the noise: "laplace" or "gaussian".
	Mechanism string
	// Selection says how the partitions were chosen (Selection*).
	Selection string
	// Loss is the release's own (ε, δ)-DP guarantee.
	Loss Loss
	// Cost is what the release added to its account.
	Cost Cost
	// Partitions in domain order, or sorted by key when selected.
	Partitions []Partition
}

// Partition is one reported group.
type Partition struct {
	Key string
	// Value is the noisy statistic. Counts and integer sums are integers;
	// a noisy count may be negative (clamping at 0 would bias it).
	Value float64
	// Low and High bound the Confidence interval of the true value, as the
	// library derives it from the noise alone.
	Low, High float64
}

// Aggregator collects record-level contributions and releases them once.
// It is not safe for concurrent use.
type Aggregator struct {
	q        Query
	noise    noise.Noise
	rng      *rand.Rand
	index    map[string]int32 // partition key → position in keys
	keys     []string
	open     bool // partitions are discovered from the data
	units    map[string]*unitAcc
	order    []*unitAcc // units in order of first record, so sampling is reproducible
	released bool
}

// unitAcc is one privacy unit's contributions, one per partition.
type unitAcc struct {
	c   []contrib
	idx map[int32]int32 // partition → position in c, once c is long
}

type contrib struct {
	part int32
	isum int64
	fsum float64
}

// NewAggregator checks q and returns an empty aggregator for it.
func NewAggregator(q Query, opt Options) (*Aggregator, error) {
	if q.MaxPartitions == 0 {
		q.MaxPartitions = 1
	}
	if err := q.validate(); err != nil {
		return nil, fmt.Errorf("dp: %w", err)
	}
	n := opt.noise(q.zcdp())
	switch {
	case !q.zcdp() && n == noise.Gaussian():
		return nil, errors.New("dp: under pure accounting record-level releases use Laplace noise (δ goes to partition selection)")
	case q.zcdp() && n == noise.Laplace():
		return nil, errors.New("dp: under zCDP accounting record-level releases use Gaussian noise, whose ρ the account is charged")
	}
	a := &Aggregator{q: q, noise: n, rng: opt.rand(), index: map[string]int32{}, units: map[string]*unitAcc{}}
	switch {
	case !q.Grouped:
		a.keys = []string{""}
	case q.Domain != nil:
		a.keys = slices.Clone(q.Domain)
	default:
		a.open = true
	}
	for i, k := range a.keys {
		a.index[k] = int32(i)
	}
	// The library checks the parameters it will be called with when an
	// aggregation is set up, and partition selection when it runs; doing
	// both once now, on no data, means a release cannot fail for its
	// parameters after the data was read.
	if _, err := a.newAcc(); err != nil {
		return nil, err
	}
	if q.SelectsPartitions() {
		sel, _ := q.parts()
		if _, err := keepPartition(sel, q.MaxPartitions, 1); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Add records that unit has a record in partition; for counts.
func (a *Aggregator) Add(unit, partition string) { a.add(unit, partition) }

// AddInt adds v to unit's sum in partition; for integer sums and means.
// Sums saturate rather than wrap.
func (a *Aggregator) AddInt(unit, partition string, v int64) {
	if c := a.add(unit, partition); c != nil {
		c.isum = addSat(c.isum, v)
	}
}

// AddFloat adds v to unit's sum in partition; for sums and means of
// non-integer fields. NaN is not a value and contributes nothing.
func (a *Aggregator) AddFloat(unit, partition string, v float64) {
	if math.IsNaN(v) {
		return
	}
	if c := a.add(unit, partition); c != nil {
		c.fsum += v
	}
}

func (a *Aggregator) add(unit, partition string) *contrib {
	if !a.q.Grouped {
		partition = ""
	}
	p, ok := a.index[partition]
	if !ok {
		if !a.open {
			return nil // outside the public domain
		}
		p = int32(len(a.keys))
		a.keys = append(a.keys, partition)
		a.index[partition] = p
	}
	u := a.units[unit]
	if u == nil {
		u = &unitAcc{}
		a.units[unit] = u
		a.order = append(a.order, u)
	}
	return u.at(p)
}

// at returns the unit's contribution to partition p, adding it if new.
func (u *unitAcc) at(p int32) *contrib {
	if u.idx != nil {
		if i, ok := u.idx[p]; ok {
			return &u.c[i]
		}
	} else {
		for i := range u.c {
			if u.c[i].part == p {
				return &u.c[i]
			}
		}
	}
	u.c = append(u.c, contrib{part: p})
	i := int32(len(u.c) - 1)
	switch {
	case u.idx != nil:
		u.idx[p] = i
	case len(u.c) > 8:
		// A unit in many partitions: index them, so adding stays O(1).
		u.idx = make(map[int32]int32, len(u.c))
		for j, c := range u.c {
			u.idx[c.part] = int32(j)
		}
	}
	return &u.c[i]
}

func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// Release bounds every unit's contribution, chooses the partitions to
// report and adds noise. It may be called once.
func (a *Aggregator) Release() (*Result, error) {
	if a.released {
		return nil, errors.New("dp: the aggregator was released already")
	}
	a.released = true
	bounded, err := a.bound()
	if err != nil {
		return nil, err
	}
	res := &Result{Mechanism: mechanism(a.noise), Loss: a.q.Loss(), Cost: a.q.Cost(), Selection: SelectionNone}
	var report []int32
	switch {
	case a.q.SelectsPartitions():
		res.Selection = SelectionPrivate
		if report, err = a.selectPartitions(bounded.units); err != nil {
			return nil, err
		}
	default:
		if a.q.Grouped {
			res.Selection = SelectionPublic
		}
		report = make([]int32, 0, len(a.keys))
		for p := range a.keys {
			report = append(report, int32(p))
		}
	}
	res.Partitions = make([]Partition, 0, len(report))
	for _, p := range report {
		acc := bounded.accs[p]
		if acc == nil {
			if acc, err = a.newAcc(); err != nil {
				return nil, err
			}
		}
		v, ci, err := acc.result()
		if err != nil {
			return nil, fmt.Errorf("dp: partition %q: %w", a.keys[p], err)
		}
		res.Partitions = append(res.Partitions, Partition{Key: a.keys[p], Value: v, Low: ci.LowerBound, High: ci.UpperBound})
	}
	return res, nil
}

// boundedData is the data after contribution bounding: per partition, the
// number of units and the library aggregator fed with their contributions.
type boundedData struct {
	units []int64
	accs  []acc
}

// bound applies contribution bounding: a unit in more than MaxPartitions
// partitions keeps a uniformly random MaxPartitions of them; each kept
// contribution (one per unit and partition) goes to the partition's
// aggregator, which clamps it.
func (a *Aggregator) bound() (*boundedData, error) {
	b := &boundedData{units: make([]int64, len(a.keys)), accs: make([]acc, len(a.keys))}
	k := a.q.MaxPartitions
	for _, u := range a.order {
		cs := u.c
		if len(cs) > k {
			// The first k of a partial Fisher–Yates shuffle are a uniform
			// sample without replacement.
			for i := 0; i < k; i++ {
				j := i + a.rng.IntN(len(cs)-i)
				cs[i], cs[j] = cs[j], cs[i]
			}
			cs = cs[:k]
		}
		for _, c := range cs {
			b.units[c.part]++
			if b.accs[c.part] == nil {
				acc, err := a.newAcc()
				if err != nil {
					return nil, err
				}
				b.accs[c.part] = acc
			}
			if err := b.accs[c.part].add(c); err != nil {
				return nil, fmt.Errorf("dp: %w", err)
			}
		}
	}
	return b, nil
}

// acc is one partition's library aggregator.
type acc interface {
	add(c contrib) error
	result() (float64, noise.ConfidenceInterval, error)
}

// newAcc returns a partition's aggregator. Query.gaussianCalls mirrors the
// arguments these aggregations pass to their noise, to charge ZCDP releases
// for it: a change here is a change there.
func (a *Aggregator) newAcc() (acc, error) {
	_, agg := a.q.parts()
	k := int64(a.q.MaxPartitions)
	var (
		out acc
		err error
	)
	switch {
	case a.q.Metric == Count:
		var c *dpagg.Count
		c, err = dpagg.NewCount(&dpagg.CountOptions{Epsilon: agg.Epsilon, Delta: agg.Delta, MaxPartitionsContributed: k, Noise: a.noise})
		out = countAcc{c}
	case a.q.Metric == Sum && a.q.Integer:
		var s *dpagg.BoundedSumInt64
		s, err = dpagg.NewBoundedSumInt64(&dpagg.BoundedSumInt64Options{Epsilon: agg.Epsilon, Delta: agg.Delta, MaxPartitionsContributed: k,
			Lower: int64(a.q.Lower), Upper: int64(a.q.Upper), Noise: a.noise})
		out = intSumAcc{s}
	case a.q.Metric == Sum:
		var s *dpagg.BoundedSumFloat64
		s, err = dpagg.NewBoundedSumFloat64(&dpagg.BoundedSumFloat64Options{Epsilon: agg.Epsilon, Delta: agg.Delta, MaxPartitionsContributed: k,
			Lower: a.q.Lower, Upper: a.q.Upper, Noise: a.noise})
		out = floatSumAcc{s}
	default:
		var m *dpagg.BoundedMean
		m, err = dpagg.NewBoundedMean(&dpagg.BoundedMeanOptions{Epsilon: agg.Epsilon, Delta: agg.Delta, MaxPartitionsContributed: k,
			MaxContributionsPerPartition: 1, Lower: a.q.Lower, Upper: a.q.Upper, Noise: a.noise})
		out = meanAcc{m, a.q.Integer}
	}
	if err != nil {
		return nil, fmt.Errorf("dp: %w", err)
	}
	return out, nil
}

// alpha is the error probability of the confidence intervals.
const alpha = 1 - Confidence

type countAcc struct{ c *dpagg.Count }

func (x countAcc) add(contrib) error { return x.c.Increment() }
func (x countAcc) result() (float64, noise.ConfidenceInterval, error) {
	v, err := x.c.Result()
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	ci, err := x.c.ComputeConfidenceInterval(alpha)
	return float64(v), ci, err
}

type intSumAcc struct{ s *dpagg.BoundedSumInt64 }

func (x intSumAcc) add(c contrib) error { return x.s.Add(c.isum) }
func (x intSumAcc) result() (float64, noise.ConfidenceInterval, error) {
	v, err := x.s.Result()
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	ci, err := x.s.ComputeConfidenceInterval(alpha)
	return float64(v), ci, err
}

type floatSumAcc struct{ s *dpagg.BoundedSumFloat64 }

func (x floatSumAcc) add(c contrib) error { return x.s.Add(c.fsum) }
func (x floatSumAcc) result() (float64, noise.ConfidenceInterval, error) {
	v, err := x.s.Result()
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	ci, err := x.s.ComputeConfidenceInterval(alpha)
	return v, ci, err
}

type meanAcc struct {
	m       *dpagg.BoundedMean
	integer bool
}

func (x meanAcc) add(c contrib) error {
	if x.integer {
		return x.m.Add(float64(c.isum))
	}
	return x.m.Add(c.fsum)
}

func (x meanAcc) result() (float64, noise.ConfidenceInterval, error) {
	v, err := x.m.Result()
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	ci, err := x.m.ComputeConfidenceInterval(alpha)
	return v, ci, err
}
