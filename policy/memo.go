package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
)

// A policy's decisions take few distinct values: one per grant or refusal,
// give or take a name in a reason. Converting one from OPA's values,
// parsing it and compiling its release plan cost about 10 µs and a hundred
// allocations on the shipped policies, so a Set parses each distinct
// decision value once and answers every later evaluation that
// yields an equal value with the same *Decision (shared and read-only, as
// the decision cache's are). Where the decision cache (cache.go) saves the
// evaluation of a repeated input, this saves the parsing of a repeated
// outcome: a new caller, page or second still evaluates, but gets a
// decision already parsed.
//
// Parsing is a pure function of the value, so sharing is exact. At most
// decisionMemoSize values are kept per Set; a policy whose decisions embed
// request data (say, a parameter in a reason) fills it, and further values
// are parsed every time. Malformed decisions are not kept.

const decisionMemoSize = 256

type decisionMemo struct {
	mu     sync.RWMutex
	byHash map[int][]memoEntry
	n      int
}

type memoEntry struct {
	value *ast.Term
	d     *Decision
}

func newDecisionMemo() *decisionMemo {
	return &decisionMemo{byHash: map[int][]memoEntry{}}
}

// parse returns the decision that value denotes.
func (m *decisionMemo) parse(value *ast.Term) (*Decision, error) {
	h := value.Hash()
	m.mu.RLock()
	for _, e := range m.byHash[h] {
		if e.value.Equal(value) {
			m.mu.RUnlock()
			return e.d, nil
		}
	}
	m.mu.RUnlock()

	v, err := ast.JSON(value.Value)
	if err != nil {
		return nil, malformed("%v", err)
	}
	d, err := parseDecision(v)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.byHash[h] {
		if e.value.Equal(value) {
			return e.d, nil // another request parsed it meanwhile
		}
	}
	if m.n < decisionMemoSize {
		m.byHash[h] = append(m.byHash[h], memoEntry{value, d})
		m.n++
	}
	return d, nil
}

// What every evaluation passes besides its input: no metrics (an
// evaluation would otherwise allocate a set of timers it never reports),
// and results left as OPA values for the memo to look up instead of
// converted to Go maps first.
var (
	evalNoMetrics = rego.EvalMetrics(metrics.NoOp())
	evalKeepTerms = rego.EvalGenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil })
)
