package anonymize

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// patientID is the value the scope tests pseudonymise.
const patientID = `"110105194912310021"`

// callerEnv is the Env of a request by subject of org under purpose, at t.
func callerEnv(t *testing.T, keys *Keys, org, subject, purpose string, at time.Time) *Env {
	t.Helper()
	return &Env{Keys: keys, Issuer: testIssuer, Org: org, Consumer: subject, Purpose: purpose, Dataset: "health/visits",
		Now: func() time.Time { return at }}
}

// pseudonymUnder releases patientID through pseudonymize with params.
func pseudonymUnder(t *testing.T, params Params, env *Env) string {
	t.Helper()
	got, fallbacks := releaseOne(t, Rule{Op: "pseudonymize", Params: params}, patientID, env)
	s, ok := got.(string)
	if !ok || fallbacks != 0 || !pseudonymRE.MatchString(s) {
		t.Fatalf("pseudonymize %v released %v with %d fallbacks, want a pseudonym", params, got, fallbacks)
	}
	return s
}

var day = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func TestTwoOrganisationsGetDifferentPseudonymsForOnePerson(t *testing.T) {
	keys := testKeys(t)
	health := callerEnv(t, keys, "health", "alice", "public-health", day)
	for _, tc := range []struct {
		name   string
		params Params
		other  *Env
	}{
		{"default scope", nil, callerEnv(t, keys, "stats-bureau", "rita", "public-health", day)},
		{"default scope, the same subject id", nil, callerEnv(t, keys, "stats-bureau", "alice", "public-health", day)},
		{"org_purpose named", Params{"scope": "org_purpose"}, callerEnv(t, keys, "civil", "alice", "public-health", day)},
		{"consumer scope, the same subject id", Params{"scope": "consumer"}, callerEnv(t, keys, "civil", "alice", "public-health", day)},
		{"dataset scope", Params{"scope": "dataset"}, callerEnv(t, keys, "civil", "carol", "public-health", day)},
		{"rotating, the same period", Params{"rotate": "90d"}, callerEnv(t, keys, "civil", "carol", "public-health", day)},
		{"an organisation of the same name from another issuer", nil,
			func() *Env {
				e := callerEnv(t, keys, "health", "alice", "public-health", day)
				e.Issuer = "https://other-idp.example"
				return e
			}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a, b := pseudonymUnder(t, tc.params, health), pseudonymUnder(t, tc.params, tc.other); a == b {
				t.Errorf("health and %s/%s both got %s", tc.other.Issuer, tc.other.Org, a)
			}
		})
	}
}

func TestOneOrganisationGetsDifferentPseudonymsUnderTwoPurposes(t *testing.T) {
	keys := testKeys(t)
	for _, params := range []Params{nil, {"scope": "consumer"}, {"scope": "dataset"}, {"rotate": "30d"}} {
		a := pseudonymUnder(t, params, callerEnv(t, keys, "health", "alice", "public-health", day))
		b := pseudonymUnder(t, params, callerEnv(t, keys, "health", "alice", "research", day))
		c := pseudonymUnder(t, params, callerEnv(t, keys, "health", "alice", "", day))
		if a == b || a == c || b == c {
			t.Errorf("%v: purposes public-health, research and none got %s, %s, %s; want three pseudonyms", params, a, b, c)
		}
	}
}

func TestOneOrganisationGetsOnePseudonymForOnePurpose(t *testing.T) {
	keys := testKeys(t)
	alice := pseudonymUnder(t, nil, callerEnv(t, keys, "health", "alice", "public-health", day))
	bob := pseudonymUnder(t, nil, callerEnv(t, keys, "health", "bob", "public-health", day.AddDate(3, 0, 0)))
	if alice != bob {
		t.Errorf("two analysts of one organisation and purpose got %s and %s; the default scope is the organisation", alice, bob)
	}
	// The consumer scope is narrower: one caller identity.
	a := pseudonymUnder(t, Params{"scope": "consumer"}, callerEnv(t, keys, "health", "alice", "public-health", day))
	b := pseudonymUnder(t, Params{"scope": "consumer"}, callerEnv(t, keys, "health", "bob", "public-health", day))
	if a == b || a == alice {
		t.Errorf("consumer scope: alice %s, bob %s, organisation %s; want three pseudonyms", a, b, alice)
	}
}

func TestRotationKeepsPseudonymsWithinAPeriodAndChangesThemAfter(t *testing.T) {
	keys := testKeys(t)
	const period = 90 * 24 * time.Hour
	start := time.Unix(230*int64(period/time.Second), 0).UTC() // the start of the period day falls in
	at := func(subject string, tm time.Time) string {
		return pseudonymUnder(t, Params{"rotate": "90d"}, callerEnv(t, keys, "health", subject, "public-health", tm))
	}
	first := at("alice", start)
	for _, tm := range []time.Time{day, start.Add(period - time.Second)} {
		if got := at("bob", tm); got != first {
			t.Errorf("at %s: %s, want %s as at %s (same organisation, same period)", tm, got, first, start)
		}
	}
	before, after := at("alice", start.Add(-time.Second)), at("alice", start.Add(period))
	if before == first || after == first || before == after {
		t.Errorf("periods 229, 230, 231 gave %s, %s, %s; want three pseudonyms", before, first, after)
	}
	if unrotated := pseudonymUnder(t, nil, callerEnv(t, keys, "health", "alice", "public-health", start)); unrotated == first {
		t.Errorf("the rotating and the unrotating scope share pseudonym %s", first)
	}
	// Two rotation lengths are two pseudonym spaces, even in periods of
	// the same index.
	a := pseudonymUnder(t, Params{"rotate": "24h"}, callerEnv(t, keys, "health", "alice", "public-health", time.Unix(0, 0)))
	b := pseudonymUnder(t, Params{"rotate": "1d"}, callerEnv(t, keys, "health", "alice", "public-health", time.Unix(0, 0)))
	c := pseudonymUnder(t, Params{"rotate": "2d"}, callerEnv(t, keys, "health", "alice", "public-health", time.Unix(0, 0)))
	if a != b || a == c {
		t.Errorf("24h %s, 1d %s, 2d %s: want 24h and 1d equal, 2d different", a, b, c)
	}
	// Periods before the epoch count down, not towards zero.
	if x, y := pseudonymUnder(t, Params{"rotate": "1d"}, callerEnv(t, keys, "health", "alice", "public-health", time.Unix(-1, 0))),
		pseudonymUnder(t, Params{"rotate": "1d"}, callerEnv(t, keys, "health", "alice", "public-health", time.Unix(1, 0))); x == y {
		t.Errorf("the seconds either side of the epoch share pseudonym %s", x)
	}
}

// An Env serving two releases either side of a period's end must not keep
// the first period's key: the release would link to the period before.
func TestRotationFollowsTheClockOfEachRelease(t *testing.T) {
	keys := testKeys(t)
	now := time.Unix(231*90*86400-1, 0)
	env := callerEnv(t, keys, "health", "alice", "public-health", now)
	env.Now = func() time.Time { return now }
	p := mustCompile(t, Spec{Fields: map[string]Rule{"f": {Op: "pseudonymize", Params: Params{"rotate": "90d"}}}})
	release := func() string {
		var out bytes.Buffer
		if _, err := p.Transform(&out, strings.NewReader(`{"items":[{"f":`+patientID+`}]}`), itemsShape, env, Limits{}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	before := release()
	now = now.Add(time.Second)
	after := release()
	fresh := pseudonymUnder(t, Params{"rotate": "90d"}, callerEnv(t, keys, "health", "alice", "public-health", now))
	if before == after || !strings.Contains(after, fresh) {
		t.Errorf("before the period's end %s, after %s; want the new period's %s", before, after, fresh)
	}
}

func TestANamedSharedScopeLinksAcrossOrganisations(t *testing.T) {
	keys := testKeys(t)
	fusion := Params{"scope": "shared:fusion-2027"}
	health := callerEnv(t, keys, "health", "alice", "public-health", day)
	stats := callerEnv(t, keys, "stats-bureau", "rita", "research", day.AddDate(1, 0, 0))
	stats.Issuer, stats.Dataset = "https://other-idp.example", "civil/assistance"
	a, b := pseudonymUnder(t, fusion, health), pseudonymUnder(t, fusion, stats)
	if a != b {
		t.Errorf("shared:fusion-2027 gave health %s and the statistics bureau %s; want one pseudonym", a, b)
	}
	if other := pseudonymUnder(t, Params{"scope": "shared:fusion-2028"}, health); other == a {
		t.Errorf("shared scopes fusion-2027 and fusion-2028 share pseudonym %s", a)
	}
	for _, params := range []Params{nil, {"scope": "global"}, {"scope": "dataset"}} {
		if p := pseudonymUnder(t, params, health); p == a {
			t.Errorf("%v and the shared scope share pseudonym %s", params, p)
		}
	}
	rotating := Params{"scope": "shared:fusion-2027", "rotate": "90d"}
	if x, y := pseudonymUnder(t, rotating, health), pseudonymUnder(t, rotating, callerEnv(t, keys, "civil", "carol", "x", day)); x != y || x == a {
		t.Errorf("rotating shared scope: %s and %s (unrotated %s); want equal to each other, not to the unrotated", x, y, a)
	}
}

// A token that names no organisation is an organisation of its own: such
// callers must not share a pseudonym space because they all lack a claim.
func TestCallersWithoutAnOrganisationDoNotSharePseudonyms(t *testing.T) {
	keys := testKeys(t)
	bob := pseudonymUnder(t, nil, callerEnv(t, keys, "", "bob", "public-health", day))
	carol := pseudonymUnder(t, nil, callerEnv(t, keys, "", "carol", "public-health", day))
	// An organisation named as a subject is not that subject.
	org := pseudonymUnder(t, nil, callerEnv(t, keys, "bob", "someone", "public-health", day))
	if bob == carol || bob == org {
		t.Errorf("bob %s, carol %s (no organisation), organisation bob %s; want three pseudonyms", bob, carol, org)
	}
}

// The parts of a scope are length-prefixed in its derivation label, so no
// choice of claim values moves a boundary between them.
func TestClaimValuesCannotForgeAnotherScope(t *testing.T) {
	keys := testKeys(t)
	pairs := [][2]*Env{
		{callerEnv(t, keys, "health", "a", "x/1:y", day), callerEnv(t, keys, "health/1:x", "a", "y", day)},
		{callerEnv(t, keys, "health/13:public-health", "a", "", day), callerEnv(t, keys, "health", "a", "public-health", day)},
		{callerEnv(t, keys, "health", "a", "p@rotate=7776000,period=230", day), callerEnv(t, keys, "health", "a", "p", day)},
	}
	for _, pair := range pairs {
		params := Params{}
		if strings.Contains(pair[0].Purpose, "@rotate") {
			params["rotate"] = "90d"
		}
		if a, b := pseudonymUnder(t, nil, pair[0]), pseudonymUnder(t, params, pair[1]); a == b {
			t.Errorf("org %q purpose %q and org %q purpose %q share pseudonym %s", pair[0].Org, pair[0].Purpose, pair[1].Org, pair[1].Purpose, a)
		}
	}
}

func TestMalformedPseudonymParametersAreRejected(t *testing.T) {
	for _, params := range []Params{
		{"scope": "org"},
		{"scope": "world"},
		{"scope": "Consumer"},
		{"scope": ""},
		{"scope": 1},
		{"scope": "shared"},
		{"scope": "shared:"},
		{"scope": "shared:Fusion"},
		{"scope": "shared:fusion 2027"},
		{"scope": "shared:-fusion"},
		{"scope": "shared:" + strings.Repeat("a", 65)},
		{"scope": "Shared:fusion"},
		{"rotate": ""},
		{"rotate": "90"},
		{"rotate": 90},
		{"rotate": "0d"},
		{"rotate": "-1d"},
		{"rotate": "090d"},
		{"rotate": "1.5d"},
		{"rotate": "30m"},
		{"rotate": "1w"},
		{"rotate": "90D"},
		{"rotate": " 90d"},
		{"rotate": "36501d"},
		{"rotate": "876001h"},
		{"rotate": "99999999999999999999d"},
		{"rotate": nil},
		{"scope": "dataset", "rotate": "soon"},
		{"salt": "x"},
	} {
		if p, err := Compile(Spec{Fields: map[string]Rule{"f": {Op: "pseudonymize", Params: params}}}); err == nil {
			t.Errorf("pseudonymize %v compiled to %v, want an error", params, p.Treatments())
		} else if !strings.Contains(err.Error(), "fields.f: pseudonymize") {
			t.Errorf("pseudonymize %v: error %q does not name the field and operator", params, err)
		}
	}
	for _, params := range []Params{
		{"scope": "shared:a"}, {"scope": "shared:fusion-2027.v2_x"}, {"scope": "shared:" + strings.Repeat("a", 64)},
		{"rotate": "1h"}, {"rotate": "36500d"}, {"rotate": "876000h"}, {"scope": "global", "rotate": "365d"},
	} {
		if _, err := Compile(Spec{Fields: map[string]Rule{"f": {Op: "pseudonymize", Params: params}}}); err != nil {
			t.Errorf("pseudonymize %v: %v", params, err)
		}
	}
}
