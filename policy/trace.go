package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// RuleLocation is a rule of a policy set and where it is written.
type RuleLocation struct {
	// Rule is the rule's head as written, without its value: decision,
	// grant["analyst"].
	Rule string `json:"rule"`
	// File is the file the rule is in, relative to the set's directory or
	// bundle root.
	File string `json:"file"`
	// Row is the line the rule starts on, from 1.
	Row int `json:"row"`
}

func (l RuleLocation) String() string { return fmt.Sprintf("%s:%d (%s)", l.File, l.Row, l.Rule) }

// Trace decides in as Decide does, and names the rules the decision came
// from: every rule whose body held during the evaluation and whose value
// is the decision itself, in the order the value passed through them: the
// rule that built it (grant["analyst"]) before the rules that handed it
// on (decision). Functions, such as library helpers, are not named.
//
// Tracing records every step of the evaluation, so Trace is for tools
// (`sluice policy lint`), never for requests; it bypasses the decision
// cache.
func (s *Set) Trace(ctx context.Context, in *Input) (*Decision, []RuleLocation, error) {
	if s == nil {
		return deny("no policy loaded"), nil, errors.New("no policy set is loaded")
	}
	input, err := in.astValue()
	if err != nil {
		return deny("policy input is malformed"), nil, fmt.Errorf("build input: %w", err)
	}
	t := &ruleTracer{}
	rs, err := s.query.Eval(ctx, rego.EvalParsedInput(input), rego.EvalQueryTracer(t), evalNoMetrics, evalKeepTerms)
	d, value, err := s.decisionOf(rs, err)
	if err != nil {
		return d, nil, err
	}
	var from []RuleLocation
	seen := map[*ast.Rule]bool{}
	for _, x := range t.exits {
		if seen[x.rule] || !x.value.Equal(value) {
			continue
		}
		seen[x.rule] = true
		loc := RuleLocation{Rule: headName(x.rule)}
		if l := x.rule.Location; l != nil {
			loc.File, loc.Row = l.File, l.Row
		}
		from = append(from, loc)
	}
	return d, from, nil
}

// headName is a rule's head with every key in brackets, as grants are
// usually written: grant["analyst"], where OPA would print grant.analyst.
func headName(r *ast.Rule) string {
	ref := r.Head.Ref()
	var b strings.Builder
	b.WriteString(ref[0].String())
	for _, t := range ref[1:] {
		b.WriteString("[" + t.String() + "]")
	}
	return b.String()
}

// ruleTracer keeps, for every rule body that held, the value the rule took.
// The value must be read as the event is emitted: the bindings it is read
// from change as the evaluation goes on.
type ruleTracer struct {
	exits []ruleExit
}

type ruleExit struct {
	rule  *ast.Rule
	value *ast.Term
}

var _ topdown.QueryTracer = (*ruleTracer)(nil)

func (*ruleTracer) Enabled() bool               { return true }
func (*ruleTracer) Config() topdown.TraceConfig { return topdown.TraceConfig{} }

func (t *ruleTracer) TraceEvent(e topdown.Event) {
	if e.Op != topdown.ExitOp {
		return
	}
	r, ok := e.Node.(*ast.Rule)
	if !ok || len(r.Head.Args) > 0 {
		return
	}
	v := r.Head.Value
	if v == nil { // a set rule: its value is its key
		v = r.Head.Key
	}
	if v == nil {
		return
	}
	t.exits = append(t.exits, ruleExit{rule: r, value: e.Plug(v)})
}
