package dp

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/google/differential-privacy/go/v3/noise"
)

// NoiseQuery describes noise added to values an upstream already
// aggregated (rows such as {"district": ..., "visits": 1234}). Without the
// records the gateway cannot bound contributions, so the dataset's owner
// declares the sensitivity: how many rows one person's data reaches and by
// how much it can change one row's value.
type NoiseQuery struct {
	// Epsilon is the ε of the release; see CheckEpsilon.
	Epsilon float64
	// Delta is required with Gaussian noise, at least MinDelta, and must
	// be 0 with Laplace.
	Delta float64
	// Gaussian selects Gaussian noise instead of Laplace.
	Gaussian bool
	// Accounting is the accountant the release is charged under; "" is
	// Pure. It changes the release's Cost, not its noise.
	Accounting Accounting
	// MaxPartitions is how many rows one unit's data reaches (L0).
	MaxPartitions int
	// Sensitivity is how much one unit can change one row's value (L∞).
	Sensitivity float64
	// Integer adds integer noise to integer values; Sensitivity must then
	// be an integer.
	Integer bool
	// Grouped releases one value per domain value; ungrouped releases the
	// total of all rows.
	Grouped bool
	// Domain lists the public partitions of a grouped release; required,
	// since which rows an upstream serves may depend on the data. Rows
	// outside it are dropped, missing ones are reported as noisy zeros.
	Domain []string
}

// sensitivity returns the (L0, L∞) the noise is calibrated with. Rows that
// fall into one partition add up, so one unit may move a single partition
// by MaxPartitions × Sensitivity: calibrating as one partition of that L∞
// covers both that case (for the L2 of Gaussian noise) and the L1 of
// Laplace noise.
func (q *NoiseQuery) sensitivity() (int64, float64) {
	return 1, float64(max(q.MaxPartitions, 1)) * q.Sensitivity
}

// Loss is the release's own (ε, δ)-DP guarantee. What an account is
// charged is [NoiseQuery.Cost].
func (q *NoiseQuery) Loss() Loss { return Loss{Epsilon: q.Epsilon, Delta: q.Delta} }

func (q *NoiseQuery) validate() error {
	if err := q.Accounting.check(); err != nil {
		return err
	}
	if err := CheckEpsilon(q.Epsilon); err != nil {
		return err
	}
	if q.Gaussian && !(q.Delta >= MinDelta && q.Delta < 1) || !q.Gaussian && q.Delta != 0 {
		return fmt.Errorf("delta %v: Gaussian noise needs %v <= δ < 1, Laplace noise δ = 0", q.Delta, MinDelta)
	}
	if q.MaxPartitions < 1 {
		return fmt.Errorf("max partitions %d: want at least 1", q.MaxPartitions)
	}
	_, linf := q.sensitivity()
	if !(q.Sensitivity > 0) || math.IsInf(linf, 0) || (q.Integer && (q.Sensitivity != math.Trunc(q.Sensitivity) || linf > maxExact)) {
		return fmt.Errorf("sensitivity %v: want a positive finite number (an integer for an integer field)", q.Sensitivity)
	}
	if q.Grouped && q.Domain == nil {
		return errors.New("a grouped release of aggregates needs a public domain")
	}
	if !q.Grouped && q.Domain != nil {
		return errors.New("an ungrouped release has no domain")
	}
	return checkDomain(q.Domain)
}

// Noiser adds up aggregated rows per partition and releases them with
// noise, once. It is not safe for concurrent use.
type Noiser struct {
	q        NoiseQuery
	noise    noise.Noise
	keys     []string
	index    map[string]int
	isum     []int64
	fsum     []float64
	released bool
}

// NewNoiser checks q and returns an empty noiser for it. Only
// [Options.Noise] applies.
func NewNoiser(q NoiseQuery, opt Options) (*Noiser, error) {
	if q.MaxPartitions == 0 {
		q.MaxPartitions = 1
	}
	if err := q.validate(); err != nil {
		return nil, fmt.Errorf("dp: %w", err)
	}
	n := &Noiser{q: q, noise: opt.noise(q.Gaussian), keys: []string{""}, index: map[string]int{}}
	if q.Grouped {
		n.keys = slices.Clone(q.Domain)
	}
	for i, k := range n.keys {
		n.index[k] = i
	}
	n.isum, n.fsum = make([]int64, len(n.keys)), make([]float64, len(n.keys))
	// Noise the library refuses for its parameters is refused now, on no
	// data, rather than after the rows were read.
	if len(n.keys) > 0 {
		if _, _, err := n.noised(0); err != nil {
			return nil, fmt.Errorf("dp: %w", err)
		}
	}
	return n, nil
}

func (n *Noiser) slot(partition string) (int, bool) {
	if !n.q.Grouped {
		return 0, true
	}
	i, ok := n.index[partition]
	return i, ok
}

// AddInt adds a row's integer value to its partition.
func (n *Noiser) AddInt(partition string, v int64) {
	if i, ok := n.slot(partition); ok {
		n.isum[i] = addSat(n.isum[i], v)
	}
}

// AddFloat adds a row's value to its partition; NaN adds nothing.
func (n *Noiser) AddFloat(partition string, v float64) {
	if i, ok := n.slot(partition); ok && !math.IsNaN(v) {
		n.fsum[i] += v
	}
}

// Release adds noise to every partition's value.
func (n *Noiser) Release() (*Result, error) {
	if n.released {
		return nil, errors.New("dp: the noiser was released already")
	}
	n.released = true
	res := &Result{Mechanism: mechanism(n.noise), Selection: SelectionNone, Loss: n.q.Loss(), Cost: n.q.Cost()}
	if n.q.Grouped {
		res.Selection = SelectionPublic
	}
	for i, k := range n.keys {
		v, ci, err := n.noised(i)
		if err != nil {
			return nil, fmt.Errorf("dp: partition %q: %w", k, err)
		}
		res.Partitions = append(res.Partitions, Partition{Key: k, Value: v, Low: ci.LowerBound, High: ci.UpperBound})
	}
	return res, nil
}

// noised is partition i's value with noise, and its confidence interval.
func (n *Noiser) noised(i int) (float64, noise.ConfidenceInterval, error) {
	l0, linf := n.q.sensitivity()
	eps, delta := n.q.Epsilon, n.q.Delta
	if n.q.Integer {
		x, err := n.noise.AddNoiseInt64(n.isum[i], l0, int64(linf), eps, delta)
		if err != nil {
			return 0, noise.ConfidenceInterval{}, err
		}
		ci, err := n.noise.ComputeConfidenceIntervalInt64(x, l0, int64(linf), eps, delta, alpha)
		return float64(x), ci, err
	}
	v, err := n.noise.AddNoiseFloat64(n.fsum[i], l0, linf, eps, delta)
	if err != nil {
		return 0, noise.ConfidenceInterval{}, err
	}
	ci, err := n.noise.ComputeConfidenceIntervalFloat64(v, l0, linf, eps, delta, alpha)
	return v, ci, err
}
