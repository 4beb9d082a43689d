package gateway

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicegw/sluice/anonymize/dp"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
)

// population is a configured population, ready to charge: the accounts a
// release about its people draws on, and what they may spend.
type population struct {
	name       string
	cfg        *PopulationConfig
	accounting dp.Accounting
	start      time.Time // periods are counted from here
}

func newPopulation(name string, cfg *PopulationConfig) *population {
	p := &population{name: name, cfg: cfg, accounting: dp.Accounting(cfg.Accounting)}
	if cfg.Budget.PeriodStart != "" {
		p.start, _ = parsePeriodStart(cfg.Budget.PeriodStart) // validated with the config
	} else {
		p.start = time.Unix(0, 0).UTC()
	}
	return p
}

// populations maps each dataset to the population its privacy unit
// belongs to; a dataset without one is its own, under default_population,
// or has none (no statistics) when that is unset.
func populations(cfg *Config) map[*DatasetConfig]*population {
	named := map[string]*population{}
	for i := range cfg.Populations {
		p := &cfg.Populations[i]
		named[p.Name] = newPopulation(p.Name, p)
	}
	out := map[*DatasetConfig]*population{}
	for i := range cfg.Sources {
		src := &cfg.Sources[i]
		for j := range src.Datasets {
			d := &src.Datasets[j]
			switch {
			case d.Population != "":
				out[d] = named[d.Population]
			case cfg.DefaultPopulation != nil:
				out[d] = newPopulation(src.Name+"/"+d.Name, cfg.DefaultPopulation)
			}
		}
	}
	return out
}

// conversionDelta is the δ at which a zCDP population's ρ converts to
// (ε, δ): half of its δ, the other half being what partition selection
// may spend.
func (p *population) conversionDelta() float64 { return p.cfg.Budget.Delta / 2 }

// period is the budget period in force at t; zero when the budget never
// renews.
type period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

func (p *population) period(t time.Time) period {
	n := time.Duration(p.cfg.Budget.Period)
	if n == 0 {
		return period{}
	}
	k := t.Sub(p.start) / n
	if t.Before(p.start.Add(k * n)) { // before the start, periods count down
		k--
	}
	start := p.start.Add(k * n)
	return period{Start: start.UTC(), End: start.Add(n).UTC()}
}

// charge is where one release is charged: the population's allocation
// for the caller's class, the consumer's account and, when the policy
// caps it, the organisation's, all in the scope of the population and
// its period.
type charge struct {
	pop      *population
	class    string
	period   period
	scope    string
	accounts []state.Account // allocation, consumer, organisation
	// consumerEpsilon and orgEpsilon are the caps as the policy gave
	// them, in ε.
	consumerEpsilon, orgEpsilon float64
}

// The positions of a charge's accounts.
const (
	allocationAccount = iota
	consumerAccount
	orgAccount
)

// newCharge lays out the accounts of a release by principal under the
// decision's limits at time t, or refuses one the population cannot pay
// for in any case.
func (p *population) newCharge(pr *Principal, lim *policy.StatsLimits, t time.Time) (*charge, *Error) {
	alloc, ok := p.cfg.Allocations[lim.Account]
	if !ok {
		return nil, errForbidden(fmt.Sprintf("population %q has no allocation for %q: no statistics are released to that class", p.name, lim.Account))
	}
	c := &charge{pop: p, class: lim.Account, period: p.period(t), consumerEpsilon: lim.ConsumerBudget}
	per := ""
	if !c.period.Start.IsZero() {
		per = c.period.Start.Format(time.RFC3339)
	}
	c.scope = jsonKey(p.name, p.cfg.Accounting, per)
	b := p.cfg.Budget
	share := alloc / b.Epsilon
	// The class's ledger cap; consumer and organisation accounts are
	// capped in δ by their class's, which already binds them.
	var allocCap state.Budget
	capOf := func(eps float64) state.Budget { return state.Budget{Epsilon: eps, Delta: allocCap.Delta} }
	if p.accounting == dp.ZCDP {
		// The allocations share the population's ρ in proportion, so
		// that their sum converts to the budget; the δ left after the
		// conversion's is what partition selection may spend.
		conv := p.conversionDelta()
		allocCap = state.Budget{Epsilon: dp.RhoForEpsilon(b.Epsilon, conv) * share, Delta: conv * share}
		capOf = func(eps float64) state.Budget {
			return state.Budget{Epsilon: dp.RhoForEpsilon(eps, conv), Delta: allocCap.Delta}
		}
	} else {
		allocCap = state.Budget{Epsilon: alloc, Delta: b.Delta * share}
	}
	c.accounts = []state.Account{
		{Key: jsonKey("allocation", lim.Account), Cap: allocCap},
		{Key: jsonKey("consumer", pr.Issuer, pr.Org, pr.Subject), Cap: capOf(lim.ConsumerBudget)},
	}
	// A caller without an organisation has no organisation account: its
	// class's allocation is what caps callers who can mint subjects.
	if lim.OrgBudget > 0 && pr.Org != "" {
		c.orgEpsilon = lim.OrgBudget
		c.accounts = append(c.accounts, state.Account{Key: jsonKey("organisation", pr.Issuer, pr.Org), Cap: capOf(lim.OrgBudget)})
	}
	return c, nil
}

// jsonKey joins parts unambiguously, whatever they hold.
func jsonKey(parts ...string) string {
	b, _ := json.Marshal(parts)
	return string(b)
}

// ledgerCost is what a release adds to the accounts: (ε, δ) under pure
// accounting, (ρ, δ) under zCDP.
func (c *charge) ledgerCost(cost dp.Cost) state.Budget {
	if c.pop.accounting == dp.ZCDP {
		return state.Budget{Epsilon: cost.Rho, Delta: cost.Delta}
	}
	return state.Budget{Epsilon: cost.Epsilon, Delta: cost.Delta}
}

// keys are the account keys, for the ledger's Spent.
func (c *charge) keys() []string {
	out := make([]string, len(c.accounts))
	for i, a := range c.accounts {
		out[i] = a.Key
	}
	return out
}

// statsLeft is what one of the caller's own accounts has left. Under
// zCDP, Rho is authoritative and Epsilon is what remains of the cap in ε
// by the standard conversion.
type statsLeft struct {
	Epsilon float64  `json:"epsilon"`
	Rho     *float64 `json:"rho,omitempty"`
	Delta   float64  `json:"delta"`
	// The account's caps for the period, beside what is left of them.
	EpsilonCap float64  `json:"epsilon_cap"`
	RhoCap     *float64 `json:"rho_cap,omitempty"`
	DeltaCap   float64  `json:"delta_cap"`
}

// statsRemaining is what the caller's own accounts have left; never the
// class's or the population's, which other callers spend too.
type statsRemaining struct {
	Consumer     statsLeft  `json:"consumer"`
	Organisation *statsLeft `json:"organisation,omitempty"`
}

// remaining reads the caller's accounts out of what every account of the
// charge has spent (in the charge's order).
func (c *charge) remaining(spent []state.Budget) statsRemaining {
	left := func(i int, eps float64) statsLeft {
		var s state.Budget
		if i < len(spent) {
			s = spent[i]
		}
		cap := c.accounts[i].Cap
		rest := cap.Minus(s)
		if c.pop.accounting != dp.ZCDP {
			return statsLeft{Epsilon: rest.Epsilon, Delta: rest.Delta, EpsilonCap: cap.Epsilon, DeltaCap: cap.Delta}
		}
		rho, rhoCap := rest.Epsilon, cap.Epsilon
		return statsLeft{Epsilon: max(0, eps-dp.EpsilonForRho(s.Epsilon, c.pop.conversionDelta())), Rho: &rho, Delta: rest.Delta,
			EpsilonCap: eps, RhoCap: &rhoCap, DeltaCap: cap.Delta}
	}
	r := statsRemaining{Consumer: left(consumerAccount, c.consumerEpsilon)}
	if len(c.accounts) > orgAccount {
		o := left(orgAccount, c.orgEpsilon)
		r.Organisation = &o
	}
	return r
}

// statsAccount names what a release was charged to.
type statsAccount struct {
	Population string  `json:"population"`
	Allocation string  `json:"allocation"`
	Period     *period `json:"period,omitempty"`
}

func (c *charge) account() statsAccount {
	a := statsAccount{Population: c.pop.name, Allocation: c.class}
	if !c.period.Start.IsZero() {
		per := c.period
		a.Period = &per
	}
	return a
}

// guarantee says in words what the population's budget promises.
func (c *charge) guarantee() string {
	b := c.pop.cfg.Budget
	per := "over all releases, for good (the budget does not renew)"
	if !c.period.Start.IsZero() {
		per = fmt.Sprintf("over all releases in each period of %s (this one %s to %s)",
			time.Duration(b.Period), c.period.Start.Format(time.DateOnly), c.period.End.Format(time.DateOnly))
	}
	if c.pop.accounting == dp.ZCDP {
		return fmt.Sprintf("each person of population %s: zCDP ρ ≤ %.4g, so (ε = %g, δ = %g)-DP, %s, whoever asks",
			c.pop.name, dp.RhoForEpsilon(b.Epsilon, c.pop.conversionDelta()), b.Epsilon, b.Delta, per)
	}
	return fmt.Sprintf("each person of population %s: (ε = %g, δ = %g)-DP %s, whoever asks", c.pop.name, b.Epsilon, b.Delta, per)
}

// exhausted says why a charge was refused: which of the caller's
// accounts is short and what it has left, or that the class's allocation
// cannot pay, without saying what other callers spent.
func (c *charge) exhausted(ex *state.ExhaustedError, cost dp.Cost) *Error {
	need := fmt.Sprintf("ε=%g", cost.Epsilon)
	if c.pop.accounting == dp.ZCDP {
		need = fmt.Sprintf("ρ=%g (ε=%g)", cost.Rho, cost.Epsilon)
	}
	r := c.remaining(ex.Spent)
	b := &BudgetRefusal{Population: c.pop.name, Needed: c.spent(&cost)}
	var msg string
	switch ex.Account {
	case c.accounts[consumerAccount].Key:
		b.Account, b.Left = "consumer", &r.Consumer
		msg = fmt.Sprintf("your account on population %s has ε=%g left", c.pop.name, r.Consumer.Epsilon)
	case c.accounts[allocationAccount].Key:
		// The allocation is shared with the caller's whole class: what
		// others left of it is theirs to know, not the caller's.
		b.Account = "allocation"
		msg = fmt.Sprintf("the %q allocation of population %s cannot pay for it", c.class, c.pop.name)
	default:
		b.Account, b.Left = "organisation", r.Organisation
		msg = fmt.Sprintf("your organisation's account on population %s has ε=%g left", c.pop.name, r.Organisation.Epsilon)
	}
	if !c.period.Start.IsZero() {
		renews := c.period.End.UTC()
		b.Renews = &renews
		msg += "; budgets renew at " + c.period.End.Format(time.RFC3339)
	}
	e := errBudgetExhausted(fmt.Sprintf("privacy budget exhausted: this release needs %s; %s. Repeating an earlier query costs nothing", need, msg))
	e.budget = b
	return e
}

// BudgetRefusal is the structured part of a privacy_budget_exhausted
// error, beside its code and message: which account refused (consumer, organisation or allocation),
// what the release needed, what that account has left of its caps (not
// for an allocation, which the caller's whole class shares), and when
// budgets renew.
type BudgetRefusal struct {
	Account    string     `json:"account"`
	Population string     `json:"population"`
	Needed     statsSpent `json:"needed"`
	Left       *statsLeft `json:"left,omitempty"`
	Renews     *time.Time `json:"renews,omitempty"`
}

// statsSpent is what one request charged; Rho under zCDP accounting.
type statsSpent struct {
	Epsilon float64  `json:"epsilon"`
	Rho     *float64 `json:"rho,omitempty"`
	Delta   float64  `json:"delta"`
}

// spent states cost as an answer does; nil (a cached answer) is nothing.
func (c *charge) spent(cost *dp.Cost) statsSpent {
	var out statsSpent
	if cost != nil {
		out = statsSpent{Epsilon: cost.Epsilon, Delta: cost.Delta}
	}
	if c.pop.accounting == dp.ZCDP {
		rho := 0.0
		if cost != nil {
			rho = cost.Rho
		}
		out.Rho = &rho
	}
	return out
}
