package dp

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/differential-privacy/go/v3/dpagg"
)

// minThresholdTail is the smallest per-partition tail probability, δ/(2k),
// for which the library's Gaussian thresholding is used (see newSelector).
// The library computes the threshold from 1 − δ/2 in float64, which is off
// by up to 2^-53, so the δ it achieves is off by up to about 2^-53·2k/δ
// relatively: at this tail, 1e-6.
const minThresholdTail = 1e-10

// selectPartitions returns the partitions with units that partition
// selection keeps, sorted by key.
func (a *Aggregator) selectPartitions(units []int64) ([]int32, error) {
	sel, _ := a.q.parts()
	var keep []int32
	for p, n := range units {
		if n == 0 {
			continue
		}
		ok, err := keepPartition(sel, a.q.MaxPartitions, n)
		if err != nil {
			return nil, err
		}
		if ok {
			keep = append(keep, int32(p))
		}
	}
	slices.SortFunc(keep, func(x, y int32) int { return strings.Compare(a.keys[x], a.keys[y]) })
	return keep, nil
}

// keepPartition decides whether to report a partition of n units, for
// units that contribute to at most k partitions, spending l in all.
func keepPartition(l Loss, k int, n int64) (bool, error) {
	s, err := newSelector(l, k)
	if err == nil {
		err = s.IncrementBy(n)
	}
	var keep bool
	if err == nil {
		keep, err = s.ShouldKeepPartition()
	}
	if err != nil {
		return false, fmt.Errorf("dp: partition selection: %w", err)
	}
	return keep, nil
}

// newSelector returns the library's selection of one partition, for units
// that contribute to at most k partitions, spending l in all.
//
// For k > 3 the library thresholds a Gaussian-noised count at the
// (1 − δ/2)^(1/k) quantile, computed in float64. Once δ/(2k) nears 2^-53
// that rounds to the quantile at 1, the threshold is +Inf and its
// conversion to int64 is MinInt64 on amd64, so every partition is kept, a
// single person's included (measured: 200 in 200 at δ = 1e-16, k = 5). For such a δ we ask instead for the selection
// the library makes for k ≤ 3, with k = 1 at (ε/k, δ/k): that mechanism
// divides ε and δ by k first, so this is the per-partition selection it
// would make for k, and a unit's k partitions compose to (ε, δ).
func newSelector(l Loss, k int) (*dpagg.PreAggSelectPartition, error) {
	opt := &dpagg.PreAggSelectPartitionOptions{Epsilon: l.Epsilon, Delta: l.Delta, MaxPartitionsContributed: int64(k)}
	if k > 3 && l.Delta/float64(2*k) < minThresholdTail {
		opt = &dpagg.PreAggSelectPartitionOptions{Epsilon: l.Epsilon / float64(k), Delta: l.Delta / float64(k), MaxPartitionsContributed: 1}
	}
	return dpagg.NewPreAggSelectPartition(opt)
}
