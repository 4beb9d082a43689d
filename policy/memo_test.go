package policy

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestEqualDecisionsAreParsedOnce: two inputs the decision cache tells
// apart (another second) that the policy answers with the same decision get
// the same parsed *Decision, plan included; a different decision value
// gets its own, with its own content.
func TestEqualDecisionsAreParsedOnce(t *testing.T) {
	set := load(t, "../policies")
	ctx := context.Background()
	at := func(second int, purpose string) *Decision {
		t.Helper()
		in := analystRead()
		in.Time = in.Time.Add(time.Duration(second) * time.Second)
		in.Purpose = purpose
		d, err := set.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first, second := at(0, "public-health"), at(1, "public-health")
	if _, misses := set.CacheStats(); misses != 2 {
		t.Fatalf("%d evaluations, want 2 (each second is its own input)", misses)
	}
	if !first.Allow || first.Plan == nil {
		t.Fatalf("analyst read: %+v", first)
	}
	if second != first {
		t.Error("the same decision value was parsed again")
	}
	other := at(0, "statistics") // not a purpose the analyst may read for
	if other == first || other.Allow || other.Reason == first.Reason {
		t.Errorf("a different decision was answered with the first: %+v", other)
	}
	if set.memo.n != 2 {
		t.Errorf("memo holds %d values, want 2", set.memo.n)
	}
}

// TestDecisionMemoIsBounded: a policy whose every decision differs (it
// echoes a parameter) fills the memo to its bound and no further, and
// every decision is still its own.
func TestDecisionMemoIsBounded(t *testing.T) {
	set := loadPolicy(t, `package sluice
decision := {"allow": true, "reason": input.request.params.page[0], "fields": {"a": "keep"}}
`)
	for i := range decisionMemoSize + 50 {
		in := analystRead()
		in.Request.Params = map[string][]string{"page": {fmt.Sprint(i)}}
		d, err := set.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Reason != fmt.Sprint(i) {
			t.Fatalf("page %d answered with reason %q", i, d.Reason)
		}
	}
	if set.memo.n != decisionMemoSize {
		t.Errorf("memo holds %d values, want its bound %d", set.memo.n, decisionMemoSize)
	}
}

// TestMalformedDecisionsAreNotMemoised: a malformed decision is refused
// each time it is made, and never kept.
func TestMalformedDecisionsAreNotMemoised(t *testing.T) {
	set := loadPolicy(t, `package sluice
decision := {"allow": true, "fields": {"a": "keep"}, "max_row": 5}
`)
	for range 2 {
		d, err := set.evaluate(context.Background(), analystRead())
		if err == nil || d.Allow {
			t.Fatalf("malformed decision: %+v, %v; want a deny and an error", d, err)
		}
	}
	if set.memo.n != 0 {
		t.Errorf("memo holds %d values, want 0", set.memo.n)
	}
}

// TestPreparedSubjectDecidesAsAPlainOne: a prepared subject yields the same
// document, cache key and decision as the same subject unprepared, and its
// copies share one conversion of the claims.
func TestPreparedSubjectDecidesAsAPlainOne(t *testing.T) {
	set := load(t, "../policies")
	plain := gatewayAnalystRead()
	prepared := gatewayAnalystRead()
	prepared.Subject = prepared.Subject.Prepared()
	copied := *prepared

	pv, err := plain.astValue()
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := plain.key(nil, allParts)
	for _, in := range []*Input{prepared, &copied} {
		v, err := in.astValue()
		if err != nil {
			t.Fatal(err)
		}
		if v.Compare(pv) != 0 {
			t.Errorf("prepared document %v, want %v", v, pv)
		}
		k, ok := in.key(nil, allParts)
		if !ok || string(k) != string(pk) {
			t.Error("a prepared subject has another cache key")
		}
	}
	a, _ := prepared.Subject.claimsTerm()
	b, _ := copied.Subject.claimsTerm()
	if a != b {
		t.Error("copies of a prepared subject converted their claims twice")
	}
	dp, err := set.evaluate(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	dq, err := set.evaluate(context.Background(), prepared)
	if err != nil {
		t.Fatal(err)
	}
	if !dp.Allow || !reflect.DeepEqual(dp, dq) {
		t.Errorf("prepared: %+v, plain: %+v", dq, dp)
	}

	// A claim the key cannot encode still leaves the decision uncached.
	odd := analystRead()
	odd.Subject.Claims = map[string]any{"n": 3}
	odd.Subject = odd.Subject.Prepared()
	if _, ok := odd.key(nil, allParts); ok {
		t.Error("a prepared int claim was given a key")
	}
}
