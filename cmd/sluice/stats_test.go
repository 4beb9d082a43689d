package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/demo"
)

// idNumber matches a resident identity number.
var idNumber = regexp.MustCompile(`\d{17}[\dX]`)

// statsAnswer is a statistics response as a caller reads it.
type statsAnswer struct {
	Source     string  `json:"source"`
	Dataset    string  `json:"dataset"`
	Metric     string  `json:"metric"`
	Epsilon    float64 `json:"epsilon"`
	Delta      float64 `json:"delta"`
	Mechanism  string  `json:"mechanism"`
	Selection  string  `json:"partition_selection"`
	Partitions []struct {
		Key   *string    `json:"key"`
		Value float64    `json:"value"`
		CI95  [2]float64 `json:"ci95"`
	} `json:"partitions"`
	Accounting string `json:"accounting"`
	Account    struct {
		Population, Allocation string
	} `json:"account"`
	Spent     budget `json:"spent"`
	Remaining struct {
		Consumer     budget  `json:"consumer"`
		Organisation *budget `json:"organisation"`
	} `json:"remaining"`
	Cached bool `json:"cached"`
}

type budget struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

func (b budget) is(eps float64) bool { return math.Abs(b.Epsilon-eps) < 1e-9 }

// stats asks the demo gateway for a release and decodes it.
func (d *demoRun) stats(t *testing.T, role, path string) (statsAnswer, response) {
	t.Helper()
	r := get(t, d.manifest.Gateway+path, d.manifest.Tokens[role])
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: status %d: %s", role, path, r.status, r.body)
	}
	var a statsAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, r.body)
	}
	return a, r
}

// audited returns the audit record of a response.
func (d *demoRun) audited(t *testing.T, r response) map[string]any {
	t.Helper()
	return recordFor(t, filepath.Join(d.dir, "audit"), r.header.Get("X-Request-Id"))
}

// spentIn is the ε an audit record says was charged.
func spentIn(ev map[string]any) float64 {
	o, _ := ev["obligations"].(map[string]any)
	f, _ := o["epsilon_spent"].(float64)
	return f
}

// TestStatsReleaseCachedRepeatAndExhaustedBudget is the README's
// walkthrough: the public role counts visits by district, asks again and
// gets the same answer for free, then spends its budget of ε = 5 and is
// refused.
func TestStatsReleaseCachedRepeatAndExhaustedBudget(t *testing.T) {
	d := startDemo(t, t.TempDir())
	const count = "/v1/health/visits/stats?metric=count&group_by=district&epsilon=0.5"

	first, r := d.stats(t, "public", count)
	if len(first.Partitions) != len(demo.Districts) {
		t.Fatalf("%d partitions, want one per district (%d)", len(first.Partitions), len(demo.Districts))
	}
	for i, p := range first.Partitions {
		if p.Key == nil || *p.Key != demo.Districts[i].Name || p.CI95[1] < p.CI95[0] {
			t.Errorf("partition %d: %+v", i, p)
		}
	}
	if first.Mechanism != "laplace" || first.Selection != "public_domain" || first.Cached ||
		!first.Spent.is(0.5) || !first.Remaining.Consumer.is(4.5) || first.Remaining.Organisation != nil ||
		first.Accounting != "pure" || first.Account.Population != "residents" || first.Account.Allocation != "public" {
		t.Errorf("release: %+v", first)
	}
	if idNumber.Match(r.body) {
		t.Errorf("record-level data in a statistics answer: %s", r.body)
	}
	if ev := d.audited(t, r); ev["action"] != "stats" || ev["decision"] != "allow" || ev["epsilon_requested"] != 0.5 || spentIn(ev) != 0.5 {
		t.Errorf("audit record %v", ev)
	}

	// Averaging repeated queries gains nothing: the repeat is the same
	// answer, and free.
	for range 3 {
		again, r := d.stats(t, "public", count)
		if diff := cmp.Diff(first.Partitions, again.Partitions); diff != "" {
			t.Errorf("a repeated query got a new answer (-first +again):\n%s", diff)
		}
		if !again.Cached || again.Spent != (budget{}) || !again.Remaining.Consumer.is(4.5) {
			t.Errorf("repeat: cached %v, spent %+v, remaining %+v", again.Cached, again.Spent, again.Remaining)
		}
		if ev := d.audited(t, r); spentIn(ev) != 0 {
			t.Errorf("a cached answer was audited as spending %v", spentIn(ev))
		}
	}

	// Nine more questions spend 4.05 of the 4.5 left.
	for i := 1; i <= 9; i++ {
		d.stats(t, "public", fmt.Sprintf("/v1/health/visits/stats?metric=count&epsilon=0.%d", 50-i))
	}
	r = get(t, d.manifest.Gateway+"/v1/health/visits/stats?metric=sum&field=cost&group_by=district&epsilon=0.5", d.manifest.Tokens["public"])
	expectError(t, r, http.StatusForbidden, "privacy_budget_exhausted")
	if !strings.Contains(string(r.body), "your account on population residents has ε=0.45 left") {
		t.Errorf("the refusal does not say what is left: %s", r.body)
	}
	if ev := d.audited(t, r); ev["decision"] != "deny" || ev["epsilon_requested"] != 0.5 || ev["code"] != "privacy_budget_exhausted" {
		t.Errorf("audit record of the refusal %v", ev)
	}
	last, _ := d.stats(t, "public", "/v1/health/visits/stats?metric=sum&field=cost&group_by=district&epsilon=0.45")
	if !last.Remaining.Consumer.is(0) {
		t.Errorf("remaining %+v, want ε 0", last.Remaining.Consumer)
	}
	expectError(t, get(t, d.manifest.Gateway+"/v1/health/visits/stats?metric=count&epsilon=0.01", d.manifest.Tokens["public"]),
		http.StatusForbidden, "privacy_budget_exhausted")
	// An answer already released stays free to repeat.
	if again, _ := d.stats(t, "public", count); !again.Cached {
		t.Error("an exhausted budget refused a cached answer")
	}
}

func TestStatsBudgetSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	const q = "/v1/civil/assistance/stats?metric=mean&field=monthly_allowance&group_by=district&epsilon=1"
	d := startDemo(t, dir)
	before, _ := d.stats(t, "analyst", q)
	if !before.Remaining.Consumer.is(9) {
		t.Fatalf("remaining %+v after spending 1 of 10", before.Remaining.Consumer)
	}
	if err := d.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}

	d = startDemo(t, dir)
	again, _ := d.stats(t, "analyst", q)
	if !again.Cached || !again.Remaining.Consumer.is(9) || !cmp.Equal(before.Partitions, again.Partitions) {
		t.Errorf("after a restart: cached %v, remaining %+v; the answer survives and costs nothing", again.Cached, again.Remaining)
	}
	next, _ := d.stats(t, "analyst", strings.Replace(q, "epsilon=1", "epsilon=0.9", 1))
	if !next.Remaining.Consumer.is(8.1) {
		t.Errorf("after a restart the ledger forgot: remaining %+v", next.Remaining)
	}
}

func TestStatsAttacksAreRefusedAndAudited(t *testing.T) {
	d := startDemo(t, t.TempDir())
	for _, tc := range []struct {
		name, role, path string
		epsilon          float64
	}{
		{"epsilon above the public maximum", "public", "/v1/health/visits/stats?metric=count&group_by=district&epsilon=0.6", 0.6},
		{"epsilon above the analyst maximum", "analyst", "/v1/civil/assistance/stats?metric=count&epsilon=1.5", 1.5},
		{"analyst statistics on the dataset it reads", "analyst", "/v1/health/visits/stats?metric=count&epsilon=0.1", 0.1},
		{"public grouping by another field", "public", "/v1/police/residents/stats?metric=count&group_by=gender&epsilon=0.1", 0.1},
		{"grouping by the privacy unit", "researcher", "/v1/health/visits/stats?metric=count&group_by=patient_id&epsilon=0.1", 0.1},
		{"public mean", "public", "/v1/health/visits/stats?metric=mean&field=cost&epsilon=0.1", 0.1},
		{"public filter", "public", "/v1/health/visits/stats?metric=count&epsilon=0.1&district=" + url.QueryEscape("朝阳区"), 0.1},
		{"sum of an unbounded field", "analyst", "/v1/police/residents/stats?metric=sum&field=birth_date&epsilon=0.1", 0.1},
		{"caseworker", "caseworker", "/v1/civil/assistance/stats?metric=count&epsilon=0.1", 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, d.manifest.Gateway+tc.path, d.manifest.Tokens[tc.role])
			expectError(t, r, http.StatusForbidden, "forbidden")
			ev := d.audited(t, r)
			if ev["action"] != "stats" || ev["decision"] != "deny" || ev["epsilon_requested"] != tc.epsilon || spentIn(ev) != 0 {
				t.Errorf("audit record %v", ev)
			}
		})
	}
	// An ε the noise cannot honour is a bad request, refused before anything.
	r := get(t, d.manifest.Gateway+"/v1/health/visits/stats?metric=count&epsilon=1e-300", d.manifest.Tokens["researcher"])
	expectError(t, r, http.StatusBadRequest, "bad_request")
	if ev := d.audited(t, r); ev["epsilon_requested"] != 1e-300 || spentIn(ev) != 0 {
		t.Errorf("audit record %v", ev)
	}
	// Nothing was spent by any of them.
	a, _ := d.stats(t, "analyst", "/v1/police/residents/stats?metric=count&epsilon=0.1")
	if !a.Remaining.Consumer.is(9.9) {
		t.Errorf("remaining %+v after refusals and one release of 0.1", a.Remaining)
	}
	res, _ := d.stats(t, "researcher", "/v1/health/visits/stats?metric=count&epsilon=0.1")
	if r := res; !r.Remaining.Consumer.is(9.9) || r.Remaining.Organisation == nil || !r.Remaining.Organisation.is(14.9) ||
		r.Account.Allocation != "researcher" {
		t.Errorf("researcher answer: account %+v, remaining %+v", r.Account, r.Remaining)
	}
}

func TestStatsSelectRarePartitionsPrivately(t *testing.T) {
	d := startDemo(t, t.TempDir())
	patients := map[string]map[string]bool{} // diagnosis → its patients
	for page := 1; ; page++ {
		recs := d.upstreamRecords(t, "health", fmt.Sprintf("/visits?page_size=1000&page=%d", page))
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			dx := r["diagnosis"].(string)
			if patients[dx] == nil {
				patients[dx] = map[string]bool{}
			}
			patients[dx][r["patient_id"].(string)] = true
		}
	}
	a, _ := d.stats(t, "researcher", "/v1/health/visits/stats?metric=count&group_by=diagnosis&epsilon=1")
	if a.Selection != "private_selection" || a.Spent != (budget{Epsilon: 1, Delta: 1e-7}) || len(a.Partitions) == 0 {
		t.Fatalf("selection %q, spent %+v, %d partitions", a.Selection, a.Spent, len(a.Partitions))
	}
	for _, p := range a.Partitions {
		// Each diagnosis of one or two patients shows with probability
		// below 1e-5.
		if p.Key == nil || len(patients[*p.Key]) <= 2 {
			t.Errorf("partition %+v released: it has %d patients", p, len(patients[*p.Key]))
		}
	}
}
