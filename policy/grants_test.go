package policy

import (
	"context"
	"testing"
	"time"
)

// underGrant releases what the first grant in input.grants names, and
// names it.
const underGrant = `package sluice
decision := {"allow": true, "reason": "under grant", "fields": input.grants[0].fields, "grant": input.grants[0].id} if count(input.grants) > 0
decision := {"allow": false, "reason": "no grant"} if count(input.grants) == 0`

func TestADecisionNamesItsGrantAndDecisionsDifferByGrant(t *testing.T) {
	set := loadPolicy(t, underGrant)
	ctx := context.Background()
	in := analystRead()
	if d, err := set.Decide(ctx, in); err != nil || d.Allow {
		t.Fatalf("no grant: %+v, %v", d, err)
	}
	for _, g := range []Grant{
		{ID: "grt_a", Fields: map[string]any{"district": "keep"}},
		{ID: "grt_b", Fields: map[string]any{"district": "drop"}},
	} {
		in := analystRead()
		g.ValidUntil = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		in.Grants = []Grant{g}
		d, err := set.Decide(ctx, in)
		if err != nil || !d.Allow || d.Grant != g.ID || d.Fields["district"].Op != g.Fields["district"] {
			t.Errorf("grant %s: %+v, %v — a cached decision of another grant answered?", g.ID, d, err)
		}
	}
}

func TestAGrantThatIsNotAnIDIsMalformed(t *testing.T) {
	set := loadPolicy(t, `package sluice
decision := {"allow": true, "reason": "x", "fields": {}, "grant": 7}`)
	d, err := set.Decide(context.Background(), analystRead())
	if err == nil || d.Allow {
		t.Errorf("decision %+v, err %v: want a malformed deny", d, err)
	}
}
