package anonymize

import (
	"fmt"
	"sort"
	"strings"
)

// Rule is one field's treatment as a decision states it: the operator name
// and its parameters.
type Rule struct {
	Op     string `json:"op"`
	Params Params `json:"params,omitempty"`
}

// ParseRule reads a treatment as Rego produces it: an operator name
// ("keep") or an object with "op" and the operator's parameters
// ({"op": "mask", "keep_last": 4}).
func ParseRule(v any) (Rule, error) {
	switch x := v.(type) {
	case string:
		return Rule{Op: x}, nil
	case map[string]any:
		op, ok := x["op"].(string)
		if !ok {
			return Rule{}, fmt.Errorf(`treatment object needs a string "op"`)
		}
		var p Params
		for k, val := range x {
			if k == "op" {
				continue
			}
			if p == nil {
				p = Params{}
			}
			p[k] = val
		}
		return Rule{Op: op, Params: p}, nil
	}
	return Rule{}, fmt.Errorf("treatment must be an operator name or an object, got %T", v)
}

// Spec is what a decision asks of a release of records.
type Spec struct {
	// Fields maps field paths to treatments. A path names a top-level field
	// ("cost"), a field of an object ("address.city"), or the elements of an
	// array ("tags[]", "contacts[].phone"). Fields not named are dropped.
	Fields map[string]Rule
	// Rows are conditions every released record must meet.
	Rows []Cond
	// Suppress removes records whose count is small; nil removes none.
	Suppress *Suppress
	// MaxRows caps the records released; 0 means no cap. The cap counts
	// records that met the row conditions and survived suppression.
	MaxRows int
}

// Suppress is small-cell suppression for datasets the upstream already
// aggregates (a count of cases per district and diagnosis): a record whose
// CountField is below Below is removed, as Open Diffix and statistical
// offices suppress low counts. A record whose count is missing, not a JSON
// number, or not finite is removed too. The count field itself is released
// only if Fields names it.
type Suppress struct {
	// CountField is the top-level field holding the record's count.
	CountField string `json:"count_field"`
	// Below is the smallest count released; it must be at least 1.
	Below int `json:"below"`
}

// ParseSuppress reads a suppression rule as Rego produces it:
// {"count_field": "cases", "below": 5}. Unknown members are errors.
func ParseSuppress(v any) (*Suppress, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want an object, got %T", v)
	}
	s := &Suppress{}
	for k, val := range m {
		switch k {
		case "count_field":
			if s.CountField, ok = val.(string); !ok {
				return nil, fmt.Errorf("count_field: want a string, got %T", val)
			}
		case "below":
			n, err := Params(m).Int("below", 0)
			if err != nil {
				return nil, err
			}
			s.Below = n
		default:
			return nil, fmt.Errorf("unknown member %q", k)
		}
	}
	if s.CountField == "" {
		return nil, fmt.Errorf("count_field: required")
	}
	if _, ok := m["below"]; !ok {
		return nil, fmt.Errorf("below: required")
	}
	return s, nil
}

// Plan is a compiled Spec. It is immutable and safe for concurrent use.
type Plan struct {
	root     *node
	conds    []*cond
	suppress *Suppress
	maxRows  int
	spec     Spec
}

// node is one level of the compiled field tree.
type node struct {
	name     string
	rule     string   // operator name, for reporting
	op       Operator // nil for containers
	children map[string]*node
	pos      int    // position among its parent's children, for duplicate detection
	member   []byte // the name as a JSON string and a colon, as released
	elem     *node  // array elements
	conds    []int  // row conditions on this (top-level) field
	count    bool   // the (top-level) count field of suppression
}

// Compile checks a spec and builds its plan. Unknown operators, bad
// parameters, malformed paths and contradictory treatments are errors: a
// decision that asks for them must not be enforced.
func Compile(s Spec) (*Plan, error) {
	p := &Plan{root: &node{}, maxRows: s.MaxRows, spec: s}
	if s.MaxRows < 0 {
		return nil, fmt.Errorf("max_rows: %d is negative", s.MaxRows)
	}
	paths := make([]string, 0, len(s.Fields))
	for path := range s.Fields {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		r := s.Fields[path]
		f, ok := registry[r.Op]
		if !ok {
			return nil, fmt.Errorf("fields.%s: unknown operator %q", path, r.Op)
		}
		op, err := f(r.Params)
		if err != nil {
			return nil, fmt.Errorf("fields.%s: %s: %w", path, r.Op, err)
		}
		if _, isDrop := op.(dropOp); isDrop {
			continue
		}
		leaf, err := p.root.place(path)
		if err != nil {
			return nil, fmt.Errorf("fields.%s: %w", path, err)
		}
		leaf.op, leaf.rule = op, r.Op
	}
	for i, c := range s.Rows {
		cc, err := compileCond(c)
		if err != nil {
			return nil, fmt.Errorf("rows[%d]: %w", i, err)
		}
		p.conds = append(p.conds, cc)
		n := p.root.child(c.Field)
		n.conds = append(n.conds, i)
	}
	if sp := s.Suppress; sp != nil {
		if sp.CountField == "" || strings.ContainsAny(sp.CountField, ".[]") {
			return nil, fmt.Errorf("suppress.count_field: want a top-level field name, got %q", sp.CountField)
		}
		if sp.Below < 1 {
			return nil, fmt.Errorf("suppress.below: want at least 1, got %d", sp.Below)
		}
		c := *sp
		p.suppress = &c
		p.root.child(sp.CountField).count = true
	}
	if err := p.root.check(""); err != nil {
		return nil, err
	}
	return p, nil
}

// place walks path from n, creating nodes, and returns the leaf.
func (n *node) place(path string) (*node, error) {
	if path == "" {
		return nil, fmt.Errorf("empty field path")
	}
	cur := n
	for _, seg := range strings.Split(path, ".") {
		name, arrays := seg, 0
		for strings.HasSuffix(name, "[]") {
			name, arrays = strings.TrimSuffix(name, "[]"), arrays+1
		}
		if name == "" || strings.ContainsAny(name, "[]") {
			return nil, fmt.Errorf("malformed path segment %q", seg)
		}
		if cur.op != nil {
			return nil, fmt.Errorf("%q has a treatment and nested treatments", cur.name)
		}
		cur = cur.child(name)
		for ; arrays > 0; arrays-- {
			if cur.op != nil {
				return nil, fmt.Errorf("%q has a treatment and nested treatments", cur.name)
			}
			if cur.elem == nil {
				cur.elem = &node{name: cur.name + "[]"}
			}
			cur = cur.elem
		}
	}
	if cur.op != nil || len(cur.children) > 0 || cur.elem != nil {
		return nil, fmt.Errorf("conflicting treatments")
	}
	return cur, nil
}

func (n *node) child(name string) *node {
	if c, ok := n.children[name]; ok {
		return c
	}
	if n.children == nil {
		n.children = map[string]*node{}
	}
	c := &node{name: name, pos: len(n.children), member: append(appendString(nil, name), ':')}
	n.children[name] = c
	return c
}

// check rejects a node that is both a leaf and a container.
func (n *node) check(path string) error {
	if n.op != nil && (len(n.children) > 0 || n.elem != nil) {
		return fmt.Errorf("fields.%s: has a treatment and nested treatments", path)
	}
	for name, c := range n.children {
		if err := c.check(strings.TrimPrefix(path+"."+name, ".")); err != nil {
			return err
		}
	}
	if n.elem != nil {
		return n.elem.check(path + "[]")
	}
	return nil
}

// Treatments returns the operator for each named field path, drops excluded,
// for audit and catalog.
func (p *Plan) Treatments() map[string]string {
	out := make(map[string]string, len(p.spec.Fields))
	for path, r := range p.spec.Fields {
		if r.Op != "drop" {
			out[path] = r.Op
		}
	}
	return out
}

// Spec returns the spec the plan was compiled from.
func (p *Plan) Spec() Spec { return p.spec }

// Releases reports whether the plan releases the top-level field name
// untouched ("keep").
func (p *Plan) Releases(name string) bool {
	n, ok := p.root.children[name]
	return ok && n.rule == "keep"
}

// RowFilters describes the row conditions, then small-cell suppression, in
// readable form.
func (p *Plan) RowFilters() []string {
	out := make([]string, len(p.conds), len(p.conds)+1)
	for i, c := range p.conds {
		out[i] = c.String()
	}
	if p.suppress != nil {
		out = append(out, fmt.Sprintf("%s >= %d (smaller counts suppressed)", p.suppress.CountField, p.suppress.Below))
	}
	return out
}

// HasRowFilter reports whether records are filtered or suppressed.
func (p *Plan) HasRowFilter() bool { return len(p.conds) > 0 || p.suppress != nil }

// Suppression returns the plan's small-cell suppression, nil for none.
func (p *Plan) Suppression() *Suppress {
	if p.suppress == nil {
		return nil
	}
	c := *p.suppress
	return &c
}

// MaxRows returns the cap on released records; 0 means none.
func (p *Plan) MaxRows() int { return p.maxRows }
