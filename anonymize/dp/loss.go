package dp

import "math"

// Loss is a privacy loss (ε, δ).
type Loss struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// Compose is the accountant: the loss of running mechanisms one after the
// other on the same data. It is basic sequential composition, ε's add and
// δ's add, and it is the only composition rule in Sluice: a release's parts
// (partition selection, then aggregation) are composed here, and the budget
// ledger adds the losses of successive releases by the same rule. A tighter
// accountant (zero-concentrated DP, where ρ's add) would replace this
// function and the units the ledger adds up, and nothing else.
func Compose(losses ...Loss) Loss {
	var out Loss
	for _, l := range losses {
		out.Epsilon += l.Epsilon
		out.Delta += l.Delta
	}
	return out
}

// valid reports whether l is a loss a mechanism can run with.
func (l Loss) valid() bool {
	return l.Epsilon > 0 && !math.IsInf(l.Epsilon, 0) && l.Delta >= 0 && l.Delta < 1
}
