package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/gateway"
)

// upstreamAll reads every record of a demo department's dataset, page by
// page, straight from the department.
func (d *demoRun) upstreamAll(t *testing.T, dept, path string) []map[string]any {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var out []map[string]any
	for page := 1; ; page++ {
		items := d.upstreamRecords(t, dept, fmt.Sprintf("%s%spage=%d&page_size=1000", path, sep, page))
		if len(items) == 0 {
			return out
		}
		out = append(out, items...)
	}
}

// distinct counts the distinct values of field in records, through f.
func distinct(records []map[string]any, field string, f func(any) any) int {
	seen := map[any]bool{}
	for _, r := range records {
		seen[f(r[field])] = true
	}
	return len(seen)
}

func same(v any) any { return v }

// riskJSON runs sluice policy risk --json and decodes its report.
func riskJSON(t *testing.T, args ...string) *gateway.RiskReport {
	t.Helper()
	out, errOut, err := runCmd(t, append([]string{"policy", "risk", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("policy risk %v: %v\n%s", args, err, errOut)
	}
	var rep gateway.RiskReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("policy risk --json is not a report: %v\n%s", err, out)
	}
	return &rep
}

// qiDistinct maps each quasi-identifier of a report to its distinct
// values.
func qiDistinct(rep *gateway.RiskReport) map[string]int {
	out := map[string]int{}
	for _, q := range rep.QuasiIdentifiers {
		out[q.Field] = q.Distinct
	}
	return out
}

func TestPolicyRiskOnTheDemo(t *testing.T) {
	d := startDemo(t, t.TempDir())

	t.Run("analyst on health/visits", func(t *testing.T) {
		rep := riskJSON(t, "--dir", d.dir, "--role", "analyst", "--dataset", "health/visits")
		raw := d.upstreamAll(t, "health", "/visits")
		if rep.Report == nil || !rep.Decision.Allow || rep.Subject.ID != "alice" || rep.Subject.Dept != "health" {
			t.Fatalf("report %+v, want alice's allowed view with figures", rep)
		}
		// Every page of the view, not the decision's 1000 a response.
		if rep.Records != len(raw) || len(raw) < 10000 {
			t.Errorf("records %d, want the upstream's %d", rep.Records, len(raw))
		}
		// Worked out from the raw visits by hand: classes on district,
		// hospital, month and 2,000-yuan cost band, counted in patients.
		month := func(v any) any { return v.(string)[:7] }
		band := func(v any) any { lo := int(v.(float64)) / 2000 * 2000; return fmt.Sprintf("%d-%d", lo, lo+1999) }
		type class struct {
			patients, diagnoses map[any]bool
			records             int
		}
		classes := map[string]*class{}
		for _, v := range raw {
			k := fmt.Sprint(v["district"], "/", v["hospital"], "/", month(v["visit_date"]), "/", band(v["cost"]))
			c := classes[k]
			if c == nil {
				c = &class{patients: map[any]bool{}, diagnoses: map[any]bool{}}
				classes[k] = c
			}
			c.records++
			c.patients[v["patient_id"]] = true
			c.diagnoses[v["diagnosis"]] = true
		}
		unique, withheld := 0, 0
		for _, c := range classes {
			if len(c.patients) == 1 {
				unique += c.records
			}
			if len(c.patients) < 5 || len(c.diagnoses) < 3 {
				withheld += c.records
			}
		}
		if rep.Unique != unique || rep.Classes.Count != len(classes) || rep.MinK != 1 {
			t.Errorf("unique %d, classes %d, min_k %d; by hand %d, %d, 1", rep.Unique, rep.Classes.Count, rep.MinK, unique, len(classes))
		}
		if dec := rep.Decision; dec.MinK != 5 || dec.MinL != 3 || dec.Withheld != withheld || withheld == 0 || withheld > len(raw)/5 {
			t.Errorf("decision %+v; want min_k 5, min_l 3 withholding %d (some, under a fifth)", dec, withheld)
		}
		want := map[string]int{
			"district": distinct(raw, "district", same), "hospital": distinct(raw, "hospital", same),
			"visit_date": distinct(raw, "visit_date", month), "cost": distinct(raw, "cost", band),
		}
		if diff := cmp.Diff(want, qiDistinct(rep)); diff != "" {
			t.Errorf("quasi-identifiers' distinct values (-raw +report):\n%s", diff)
		}
		if len(rep.Drivers) != 4 || rep.Drivers[3].UniqueAfter != 0 {
			t.Errorf("drivers %+v, want four, and no unique record once all are dropped", rep.Drivers)
		}
		if len(rep.Sensitive) != 1 || rep.Sensitive[0].Field != "diagnosis" {
			t.Errorf("sensitive %+v, want diagnosis", rep.Sensitive)
		}
	})

	t.Run("caseworker on civil/assistance", func(t *testing.T) {
		rep := riskJSON(t, "--dir", d.dir, "--role", "caseworker", "--dataset", "civil/assistance")
		raw := d.upstreamAll(t, "civil", "/assistance?district="+url.QueryEscape("朝阳区"))
		if rep.Report == nil || rep.Records != len(raw) || len(raw) == 0 {
			t.Fatalf("report %+v, want the %d cases of 朝阳区", rep, len(raw))
		}
		if share := rep.UniqueShare; share < 0.95 || rep.MinK != 1 {
			t.Errorf("unique share %.3f, min_k %d: the masked view should single out nearly everyone", share, rep.MinK)
		}
		got := qiDistinct(rep)
		for field, want := range map[string]int{"case_id": len(raw), "district": 1,
			"household_size": distinct(raw, "household_size", same), "start_date": distinct(raw, "start_date", same)} {
			if got[field] != want {
				t.Errorf("%s: %d distinct values, the upstream has %d", field, got[field], want)
			}
		}
		for _, f := range []string{"id_number", "name", "phone"} {
			if got[f] == 0 {
				t.Errorf("%s (masked, class id) is not a quasi-identifier: %v", f, rep.QuasiIdentifiers)
			}
		}
		if len(rep.Sensitive) != 1 || rep.Sensitive[0].Field != "monthly_allowance" {
			t.Errorf("sensitive %+v, want monthly_allowance", rep.Sensitive)
		}
	})

	t.Run("the table names the figures", func(t *testing.T) {
		out, _, err := runCmd(t, "policy", "risk", "--dir", d.dir, "--role", "caseworker", "--dataset", "civil/assistance")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"decision", "allow: caseworker", "row filters", "district in [朝阳区]", "unique", "min_k",
			"classes", "quasi-identifiers", "mask_id_cn", "drivers", "unique without", "sensitive", "monthly_allowance"} {
			if !strings.Contains(out, want) {
				t.Errorf("the table lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("over HTTP the officer gets the same figures", func(t *testing.T) {
		cli := riskJSON(t, "--dir", d.dir, "--token", d.manifest.Tokens["caseworker"], "--dataset", "civil/assistance")
		r := get(t, d.manifest.Gateway+"/v1/explain/risk?dataset=civil/assistance", d.manifest.Tokens["officer"],
			gateway.ExplainTokenHeader, d.manifest.Tokens["caseworker"])
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/explain/risk: %d %s", r.status, r.body)
		}
		var over gateway.RiskReport
		if err := json.Unmarshal(r.body, &over); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(cli, &over); diff != "" {
			t.Errorf("HTTP report differs from the command line's (-cli +http):\n%s", diff)
		}
		r = get(t, d.manifest.Gateway+"/v1/explain/risk?dataset=civil/assistance", d.manifest.Tokens["caseworker"],
			gateway.ExplainTokenHeader, d.manifest.Tokens["caseworker"])
		expectError(t, r, http.StatusForbidden, "forbidden")
	})

	t.Run("the registrar's view follows office hours", func(t *testing.T) {
		registrar := []string{"--dir", d.dir, "--role", "registrar", "--dept", "police", "--district", "朝阳区",
			"--purpose", "residency-registration", "--dataset", "police/residents"}
		rep := riskJSON(t, append(registrar, "--time", "2026-12-06T10:00:00+08:00")...) // a Sunday
		if rep.Decision.Allow || !strings.Contains(rep.Decision.Reason, "outside office hours") || rep.Report != nil {
			t.Errorf("Sunday: %+v, want the office-hours deny and no figures", rep)
		}
		rep = riskJSON(t, append(registrar, "--time", "2026-12-07T10:00:00+08:00")...) // a Monday
		raw := d.upstreamAll(t, "police", "/residents?district="+url.QueryEscape("朝阳区"))
		if !rep.Decision.Allow || rep.Report == nil || rep.Records != len(raw) {
			t.Fatalf("Monday: %+v, want the %d residents of 朝阳区", rep, len(raw))
		}
		year := func(v any) any { return v.(string)[:4] }
		if got, want := qiDistinct(rep)["birth_date"], distinct(raw, "birth_date", year); got != want {
			t.Errorf("birth_date: %d distinct years, the upstream has %d", got, want)
		}
		if len(rep.Sensitive) != 0 {
			t.Errorf("sensitive %+v, want none: the registrar's view has no sensitive field", rep.Sensitive)
		}
	})

	t.Run("usage errors and refused tokens", func(t *testing.T) {
		cases := []struct {
			args []string
			code int
		}{
			{[]string{"--role", "analyst"}, 2},
			{[]string{"--dataset", "health/visits"}, 2},
			{[]string{"--role", "analyst", "--token", "x", "--dataset", "health/visits"}, 2},
			{[]string{"--token", d.manifest.Tokens["analyst"], "--dept", "health", "--dataset", "health/visits"}, 2},
			{[]string{"--role", "analyst", "--dataset", "health/nothing"}, 2},
			{[]string{"--role", "analyst", "--dataset", "visits"}, 2},
			{[]string{"--role", "analyst", "--dataset", "health/visits", "--time", "yesterday"}, 2},
			{[]string{"--token", d.manifest.Tokens["analyst"] + "x", "--dataset", "health/visits"}, 1},
		}
		for _, c := range cases {
			_, _, err := runCmd(t, append([]string{"policy", "risk", "--dir", d.dir}, c.args...)...)
			if exitCode(err) != c.code {
				t.Errorf("policy risk %v: %v (exit %d), want exit %d", c.args, err, exitCode(err), c.code)
			}
		}
	})
}
