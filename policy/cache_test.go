package policy

import (
	"context"
	"fmt"
	"math/bits"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// variants returns inputs that differ from analystRead in one part of the
// document each.
func variants() map[string]*Input {
	field, group, other := "cost", "district", "hospital"
	mod := func(f func(in *Input)) *Input { in := analystRead(); f(in); return in }
	return map[string]*Input{
		"base":              analystRead(),
		"subject id":        mod(func(in *Input) { in.Subject.ID = "bob" }),
		"second role":       mod(func(in *Input) { in.Subject.Roles = append(in.Subject.Roles, "public") }),
		"role split":        mod(func(in *Input) { in.Subject.Roles = []string{"ana", "lyst"} }),
		"dept":              mod(func(in *Input) { in.Subject.Dept = "civil" }),
		"district":          mod(func(in *Input) { in.Subject.District = "朝阳区" }),
		"claim":             mod(func(in *Input) { in.Subject.Claims = map[string]any{"level": 3.0} }),
		"claim value":       mod(func(in *Input) { in.Subject.Claims = map[string]any{"level": 4.0} }),
		"claim as string":   mod(func(in *Input) { in.Subject.Claims = map[string]any{"level": "3"} }),
		"claim list":        mod(func(in *Input) { in.Subject.Claims = map[string]any{"g": []any{"a", "b"}} }),
		"claim nested":      mod(func(in *Input) { in.Subject.Claims = map[string]any{"g": map[string]any{"a": "b"}} }),
		"claim bool":        mod(func(in *Input) { in.Subject.Claims = map[string]any{"g": true} }),
		"claim null":        mod(func(in *Input) { in.Subject.Claims = map[string]any{"g": nil} }),
		"purpose":           mod(func(in *Input) { in.Purpose = "research" }),
		"justification":     mod(func(in *Input) { in.Justification = "patient collapsed" }),
		"action":            mod(func(in *Input) { in.Action = "lookup" }),
		"no resource":       mod(func(in *Input) { in.Resource = nil }),
		"source":            mod(func(in *Input) { in.Resource.Source = "civil" }),
		"dataset":           mod(func(in *Input) { in.Resource.Dataset = "residents" }),
		"classification":    mod(func(in *Input) { in.Resource.Classification = "L4" }),
		"field level":       mod(func(in *Input) { in.Resource.Fields["patient_id"] = FieldInfo{Type: "id_cn", Level: "L3"} }),
		"field type":        mod(func(in *Input) { in.Resource.Fields["patient_id"] = FieldInfo{Type: "string", Level: "L4"} }),
		"extra field":       mod(func(in *Input) { in.Resource.Fields["cost"] = FieldInfo{Type: "integer"} }),
		"method":            mod(func(in *Input) { in.Request.Method = "HEAD" }),
		"path":              mod(func(in *Input) { in.Request.Path = "/v1/health/visits/V1" }),
		"param value":       mod(func(in *Input) { in.Request.Params["page"] = []string{"3"} }),
		"param repeated":    mod(func(in *Input) { in.Request.Params["page"] = []string{"2", "2"} }),
		"param name":        mod(func(in *Input) { in.Request.Params = map[string][]string{"pag": {"e2"}} }),
		"second param":      mod(func(in *Input) { in.Request.Params["district"] = []string{"朝阳区"} }),
		"stats":             mod(func(in *Input) { in.Stats = &StatsQuery{Metric: "count", Epsilon: 1} }),
		"stats metric":      mod(func(in *Input) { in.Stats = &StatsQuery{Metric: "sum", Epsilon: 1} }),
		"stats epsilon":     mod(func(in *Input) { in.Stats = &StatsQuery{Metric: "count", Epsilon: 0.5} }),
		"stats field":       mod(func(in *Input) { in.Stats = &StatsQuery{Metric: "count", Field: &field, Epsilon: 1} }),
		"stats group":       mod(func(in *Input) { in.Stats = &StatsQuery{Metric: "count", GroupBy: &group, Epsilon: 1} }),
		"stats other group": mod(func(in *Input) { in.Stats = &StatsQuery{Metric: "count", GroupBy: &other, Epsilon: 1} }),
		"next second":       mod(func(in *Input) { in.Time = in.Time.Add(time.Second) }),
	}
}

// TestCachedDecisionsAnswerOnlyTheirOwnInput: a set answering from its
// cache gives every input the decision evaluation gives it. Each variant
// changes one part of the input document; under a policy that echoes its
// input, a decision served for the wrong input would show it.
func TestCachedDecisionsAnswerOnlyTheirOwnInput(t *testing.T) {
	set := loadPolicy(t, echoPolicy+"\nt := input.time\n")
	if set.cache == nil || set.cache.reads != allParts {
		t.Fatalf("an echo policy reads its whole input and must be keyed by all of it; cache = %+v", set.cache)
	}
	ctx := context.Background()
	ins := variants()
	for round := range 3 { // the first evaluates, the others hit
		for name, in := range ins {
			got, err := set.Decide(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := set.evaluate(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Reason != want.Reason {
				t.Fatalf("round %d, %s: cached decision is for\n%s\nwant\n%s", round, name, got.Reason, want.Reason)
			}
		}
	}
	hits, misses := set.CacheStats()
	if misses != int64(len(ins)) || hits != 2*int64(len(ins)) {
		t.Errorf("hits, misses = %d, %d; want %d, %d", hits, misses, 2*len(ins), len(ins))
	}

	// The same document built afresh, maps filled in another order, hits.
	in := analystRead()
	in.Resource.Fields = map[string]FieldInfo{"b": {Type: "x"}, "a": {Type: "y"}}
	in.Subject.Claims = map[string]any{"z": 1.0, "y": []string{"p"}}
	set.Decide(ctx, in)
	again := analystRead()
	again.Resource.Fields = map[string]FieldInfo{"a": {Type: "y"}, "b": {Type: "x"}}
	again.Subject.Claims = map[string]any{"y": []any{"p"}, "z": 1.0}
	_, misses = set.CacheStats()
	set.Decide(ctx, again)
	if _, m := set.CacheStats(); m != misses {
		t.Error("the same input document built afresh was evaluated again, not answered from the cache")
	}
}

// TestInputKeysDifferWhenDocumentsDo: two inputs share a cache key only
// when they give the policy the same document.
func TestInputKeysDifferWhenDocumentsDo(t *testing.T) {
	keys := map[string]string{}
	for name, in := range variants() {
		key, ok := in.key(nil, allParts)
		if !ok {
			t.Fatalf("%s: not cacheable", name)
		}
		if prev, dup := keys[string(key)]; dup {
			t.Errorf("%s and %s share a cache key", name, prev)
		}
		keys[string(key)] = name
	}
	// Without time, the time is not part of the key, and nothing else is lost.
	base, _ := analystRead().key(nil, allParts&^partTime)
	later := analystRead()
	later.Time = later.Time.Add(time.Hour)
	if k, _ := later.key(nil, allParts&^partTime); string(k) != string(base) {
		t.Error("a key without time changed with the time")
	}
	// The document's time is RFC 3339 seconds: within a second, the key is
	// the same, as is the document.
	sub := analystRead()
	sub.Time = sub.Time.Add(999 * time.Millisecond)
	a, _ := analystRead().key(nil, allParts)
	b, _ := sub.key(nil, allParts)
	av, _ := analystRead().astValue()
	bv, _ := sub.astValue()
	if string(a) != string(b) || av.Compare(bv) != 0 {
		t.Error("inputs within the same second should have the same key and the same document")
	}
	// A claim of a type the key does not know is not cached.
	odd := analystRead()
	odd.Subject.Claims = map[string]any{"n": 3}
	if _, ok := odd.key(nil, allParts); ok {
		t.Error("an int claim (not a JSON-decoded type) was given a key")
	}
}

// TestDecisionCacheFollowsTheTimeThePolicyReads: a time-of-day rule is
// decided afresh when the second changes and answered from the cache
// within one.
func TestDecisionCacheFollowsTheTimeThePolicyReads(t *testing.T) {
	set := loadPolicy(t, `package sluice
even if (time.parse_rfc3339_ns(input.time) / 1000000000) % 2 == 0
decision := {"allow": true, "fields": {}} if even
decision := {"allow": false, "reason": "odd second"} if not even
`)
	ctx := context.Background()
	in := analystRead() // at an even second
	at := func(d time.Duration) *Decision {
		t.Helper()
		c := *in
		c.Time = in.Time.Add(d)
		dec, err := set.Decide(ctx, &c)
		if err != nil {
			t.Fatal(err)
		}
		return dec
	}
	first := at(0)
	if !first.Allow {
		t.Fatalf("even second: %+v", first)
	}
	_, misses := set.CacheStats()
	if d := at(500 * time.Millisecond); d != first {
		t.Errorf("the same second: %+v", d)
	}
	if _, m := set.CacheStats(); m != misses {
		t.Error("the same second was evaluated again")
	}
	if d := at(time.Second); d.Allow {
		t.Error("the next (odd) second was answered with the even second's allow")
	}
	// Two seconds on, the decision is the first one's again, and evaluated
	// again (the same parsed value from the set's memo, not the cache).
	_, misses = set.CacheStats()
	if d := at(2 * time.Second); !d.Allow {
		t.Errorf("two seconds on: %+v", d)
	}
	if _, m := set.CacheStats(); m != misses+1 {
		t.Errorf("two seconds on: %d evaluations, want 1", m-misses)
	}
}

// TestNonDeterministicPoliciesAreNotCached: a set whose decision may
// depend on more than its input (the clock, the network, randomness)
// evaluates every time.
func TestNonDeterministicPoliciesAreNotCached(t *testing.T) {
	for name, rego := range map[string]string{
		"time.now_ns": `package sluice
decision := {"allow": false, "reason": sprintf("%d", [time.now_ns()])}`,
		"rand.intn in a function": `package sluice
f(x) := rand.intn("k", x)
decision := {"allow": false, "reason": sprintf("%d", [f(1000000)])}`,
		"uuid.rfc4122 in a comprehension": `package sluice
ids := [uuid.rfc4122(x) | some x in ["a"]]
decision := {"allow": false, "reason": ids[0]}`,
	} {
		t.Run(name, func(t *testing.T) {
			set := loadPolicy(t, rego)
			if set.cache != nil {
				t.Fatal("a non-deterministic set got a decision cache")
			}
			in := analystRead()
			a, err := set.Decide(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := set.Decide(context.Background(), in)
			if a == b {
				t.Error("the same decision object was returned twice")
			}
		})
	}
}

// TestKeyHoldsTheInputMembersAModuleCanRead: inspect finds which members
// of the input a module may read; a use of input it cannot follow counts
// as reading them all.
func TestKeyHoldsTheInputMembersAModuleCanRead(t *testing.T) {
	for rego, want := range map[string]inputParts{
		`allow if input.subject.id == "alice"`:                               partSubject,
		`allow if input.request.params.page[0] == "2"`:                       partRequest,
		`allow if input.time > "2026"`:                                       partTime,
		`allow if { input.action == "read"; input.resource.dataset == "v" }`: partAction | partResource,
		`allow if input.stats.epsilon < 1`:                                   partStats,
		`allow if { input.purpose == "p"; count(input.justification) > 9 }`:  partPurpose | partJustification,
		`allow if count([x | some x in [1]]) == 1`:                           0,
		`allow if { x := input; x.time > "2026" }`:                           allParts,
		`allow if { some k; input[k] == "2026" }`:                            allParts,
		`allow if { k := "time"; input[k] > "2026" }`:                        allParts,
		`allow if walk(input, [_, "2026"])`:                                  allParts,
		`allow if object.get(input, "time", "") > "2026"`:                    allParts,
		`allow if input.other == 1`:                                          allParts,
		`allow if input[input.action] == 1`:                                  allParts,
		`import input.time as t
allow if t > "2026"`: partTime,
		`allow if data.x with input.time as "2027"`: partTime,
	} {
		m := ast.MustParseModuleWithOpts("package sluice\n"+rego, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if nondet, got := inspect(m); got != want || nondet {
			t.Errorf("%s: reads %08b (non-deterministic %v), want %08b", rego, got, nondet, want)
		}
	}
	if len(inputMembers) != bits.OnesCount(uint(allParts)) {
		t.Errorf("%d input members named, %d parts", len(inputMembers), bits.OnesCount(uint(allParts)))
	}
}

// TestMembersThePolicyCannotReadShareADecision: the shipped policies never
// read input.request (nor input.stats: the gateway checks a statistics
// query against the limits a decision sets), so every page of a dataset, asked by one caller in
// one second, is one decision; a policy that reads the page is asked for
// each page.
func TestMembersThePolicyCannotReadShareADecision(t *testing.T) {
	ctx := context.Background()
	shipped := load(t, "../policies")
	if want := allParts &^ (partRequest | partStats); shipped.cache.reads != want {
		t.Fatalf("the shipped policies read %08b, want %08b", shipped.cache.reads, want)
	}
	byPage := loadPolicy(t, `package sluice
decision := {"allow": false, "reason": input.request.params.page[0]}`)
	for _, page := range []string{"1", "2", "3"} {
		in := analystRead()
		in.Request.Params = map[string][]string{"page": {page}}
		d, err := shipped.Decide(ctx, in)
		if err != nil || !d.Allow {
			t.Fatalf("page %s: %+v, %v", page, d, err)
		}
		if d, _ := byPage.Decide(ctx, in); d.Reason != page {
			t.Errorf("page %s answered for page %q", page, d.Reason)
		}
	}
	if hits, misses := shipped.CacheStats(); hits != 2 || misses != 1 {
		t.Errorf("shipped: hits, misses = %d, %d; want 2, 1", hits, misses)
	}
	if hits, misses := byPage.CacheStats(); hits != 0 || misses != 3 {
		t.Errorf("by page: hits, misses = %d, %d; want 0, 3", hits, misses)
	}
}

// TestDecisionCacheHoldsABoundedNumberOfDecisions: a time-reading set
// keeps only the current and previous second's decisions; any set keeps at
// most two generations of decisionCacheSize.
func TestDecisionCacheHoldsABoundedNumberOfDecisions(t *testing.T) {
	ctx := context.Background()
	size := func(s *Set) int {
		s.cache.mu.Lock()
		defer s.cache.mu.Unlock()
		return len(s.cache.cur) + len(s.cache.old)
	}
	timed := loadPolicy(t, echoPolicy)
	in := analystRead()
	for sec := range 600 {
		c := *in
		c.Time = in.Time.Add(time.Duration(sec) * time.Second)
		if _, err := timed.Decide(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	if n := size(timed); n != 2 {
		t.Errorf("after 600 seconds of one request each, the cache holds %d decisions, want 2", n)
	}
	last := *in
	last.Time = in.Time.Add(599 * time.Second)
	hits, _ := timed.CacheStats()
	timed.Decide(ctx, &last)
	if h, _ := timed.CacheStats(); h != hits+1 {
		t.Error("the current second's decision was not kept")
	}

	untimed := loadPolicy(t, `package sluice
decision := {"allow": false, "reason": input.request.path}`)
	if untimed.cache.reads&partTime != 0 {
		t.Fatal("a set that never reads input.time keys by time")
	}
	for i := range 3 * decisionCacheSize {
		c := *in
		c.Request.Path = fmt.Sprintf("/v1/health/visits/%d", i)
		d, err := untimed.Decide(ctx, &c)
		if err != nil || d.Reason != c.Request.Path {
			t.Fatalf("%d: %+v, %v", i, d, err)
		}
	}
	if n := size(untimed); n > 2*decisionCacheSize {
		t.Errorf("the cache holds %d decisions, more than two generations of %d", n, decisionCacheSize)
	}
}
