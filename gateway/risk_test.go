package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/anonymize/risk"
	"github.com/sluicegw/sluice/policy"
)

// riskPolicy lets officers explain; "reader" reads visits of 朝阳区 and
// 海淀区, patient pseudonymised, name redacted, the date to the month, 5
// records a response; nobody else reads anything.
const riskPolicy = `package sluice

default decision := {"allow": false, "reason": "no rule grants this access"}

decision := {"allow": true, "reason": "officer: policy explain"} if {
	input.action == "explain"
	"officer" in input.subject.roles
}

decision := {
	"allow": true,
	"reason": "reader: visits of two districts",
	"fields": {
		"visit_id": "drop",
		"patient_id": "pseudonymize",
		"name": "redact",
		"district": "keep",
		"visit_date": {"op": "generalize", "to": "month"},
		"diagnosis": "keep",
	},
	"rows": [{"field": "district", "in": ["朝阳区", "海淀区"]}],
	"params": ["district", "page", "page_size"],
	"max_rows": 5,
} if {
	input.action == "read"
	"reader" in input.subject.roles
}
`

// riskRecords are the upstream's visits: 150 patients, each living in one
// of three districts, with 1 to 4 visits in 2025 and one of four
// diagnoses each time.
func riskRecords() []map[string]any {
	rng := mrand.New(mrand.NewPCG(19, 3))
	districts := []string{"朝阳区", "海淀区", "东城区"}
	diagnoses := []string{"J06.9", "I10", "E11.9", "K29.7"}
	var out []map[string]any
	for p := range 150 {
		district := districts[rng.IntN(3)]
		for range 1 + rng.IntN(4) {
			out = append(out, map[string]any{
				"visit_id":   fmt.Sprintf("V%04d", len(out)+1),
				"patient_id": fmt.Sprintf("P%03d", p),
				"name":       fmt.Sprintf("病人%d", p),
				"district":   district,
				"visit_date": fmt.Sprintf("2025-%02d-%02d", 1+rng.IntN(12), 1+rng.IntN(28)),
				"diagnosis":  diagnoses[rng.IntN(4)],
			})
		}
	}
	return out
}

// newRiskGateway serves riskPolicy over an upstream of riskRecords at
// /visits (dataset visits, and big with max_records 10) and at /slow,
// whose pages take a second (dataset slow, stats_timeout 200ms).
func newRiskGateway(t *testing.T, records []map[string]any) *statsGateway {
	t.Helper()
	g := &statsGateway{secret: make([]byte, 32), audit: &orderAudit{}}
	rand.Read(g.secret)
	page := func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("page_size"))
		var sel []map[string]any
		for _, rec := range records {
			if d := q["district"]; len(d) > 0 && !slices.Contains(d, rec["district"].(string)) {
				continue
			}
			sel = append(sel, rec)
		}
		items := []map[string]any{}
		if start := (p - 1) * size; p >= 1 && size >= 1 && start < len(sel) {
			items = sel[start:min(start+size, len(sel))]
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"items": items, "page": p, "page_size": size, "total": len(sel)})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/visits", page)
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
		page(w, r)
	})
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)
	fields := `
          visit_id: {type: string, level: L2, class: id}
          patient_id: {type: id_cn, level: L4, class: id}
          name: {type: name_cn, level: L4, class: id}
          district: {type: string, level: L1}
          visit_date: {type: date, level: L3, class: quasi}
          diagnosis: {type: string, level: L3, class: sensitive}
`
	cfg, set := loadFixture(t, map[string][]byte{"hs.key": g.secret, "policies/sluice.rego": []byte(riskPolicy),
		"sluice.yaml": []byte(hsHealth(up.URL) + `      - name: visits
        path: /visits
        filters: {district: district}
        stats_page_size: 50
        privacy_unit: patient_id
        fields:` + fields + `      - name: big
        path: /visits
        max_records: 10
        fields:` + fields + `      - name: slow
        path: /slow
        stats_timeout: 200ms
        fields:` + fields)})
	var err error
	g.srv, err = New(context.Background(), cfg, Deps{Audit: g.audit, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// readerView is the report's figures worked out from the raw records, by
// hand rather than by package risk: the reader's rows, grouped on
// (patient, district, month), with diagnosis sensitive, and each class
// counted in people (distinct patients), not records.
func readerView(records []map[string]any) (want RiskReport, without map[string]int) {
	type key struct{ patient, district, month string }
	var view []key
	diagnoses := map[key]map[string]bool{}
	for _, r := range records {
		d := r["district"].(string)
		if d != "朝阳区" && d != "海淀区" {
			continue
		}
		k := key{r["patient_id"].(string), d, r["visit_date"].(string)[:7]}
		view = append(view, k)
		if diagnoses[k] == nil {
			diagnoses[k] = map[string]bool{}
		}
		diagnoses[k][r["diagnosis"].(string)] = true
	}
	// classes groups the view's records on a projection of their key:
	// per class, its records and its distinct patients.
	type class struct {
		records  int
		patients map[string]bool
	}
	classes := func(project func(key) key) map[key]*class {
		cs := map[key]*class{}
		for _, k := range view {
			c := cs[project(k)]
			if c == nil {
				c = &class{patients: map[string]bool{}}
				cs[project(k)] = c
			}
			c.records++
			c.patients[k.patient] = true
		}
		return cs
	}
	uniqueOn := func(project func(key) key) int {
		unique := 0
		for _, c := range classes(project) {
			if len(c.patients) == 1 {
				unique += c.records
			}
		}
		return unique
	}
	rep := &risk.Report{Records: len(view), Unique: uniqueOn(func(k key) key { return k })}
	all := classes(func(k key) key { return k })
	rep.Classes.Count = len(all)
	l1, l1Records, l := 0, 0, 4
	for k, c := range all {
		if n := len(c.patients); rep.MinK == 0 || n < rep.MinK {
			rep.MinK = n
		}
		l = min(l, len(diagnoses[k]))
		if len(diagnoses[k]) == 1 {
			l1++
			l1Records += c.records
		}
	}
	rep.Sensitive = []risk.Diversity{{Field: "diagnosis", Treatment: "keep", L: l, ClassesWithL1: l1, RecordsWithL1: l1Records}}
	without = map[string]int{
		"patient_id": uniqueOn(func(k key) key { return key{"", k.district, k.month} }),
		"district":   uniqueOn(func(k key) key { return key{k.patient, "", k.month} }),
		"visit_date": uniqueOn(func(k key) key { return key{k.patient, k.district, ""} }),
	}
	return RiskReport{Report: rep}, without
}

func (g *statsGateway) getRisk(t *testing.T, query string, token string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	w := &watchedWriter{ResponseRecorder: httptest.NewRecorder()}
	g.audit.mu.Lock()
	g.audit.w = w
	g.audit.mu.Unlock()
	r := httptest.NewRequest(http.MethodGet, "/v1/explain/risk?"+query, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	g.srv.ServeHTTP(w, r)
	g.audit.mu.Lock()
	defer g.audit.mu.Unlock()
	if len(g.audit.early) > 0 {
		t.Fatalf("bytes reached the caller before the audit record of %v", g.audit.early)
	}
	return w.ResponseRecorder
}

func decodeRisk(t *testing.T, w *httptest.ResponseRecorder) RiskReport {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var rep RiskReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatalf("body: %v\n%s", err, w.Body)
	}
	return rep
}

var asReader = "dataset=health/visits&sub=rex&roles=reader"

func TestRiskReportMatchesTheViewComputedFromTheRawRecords(t *testing.T) {
	records := riskRecords()
	g := newRiskGateway(t, records)
	want, without := readerView(records)
	officer := g.token(t, "oscar", "officer")
	for name, w := range map[string]*httptest.ResponseRecorder{
		"described": g.getRisk(t, asReader, officer),
		"by token":  g.getRisk(t, "dataset=health/visits", officer, ExplainTokenHeader, g.token(t, "rex", "reader")),
	} {
		t.Run(name, func(t *testing.T) {
			got := decodeRisk(t, w)
			if got.Report == nil || !got.Decision.Allow || got.Dataset != "health/visits" || got.Subject.ID != "rex" {
				t.Fatalf("report %+v, want rex's allowed view of health/visits with figures", got)
			}
			// The decision's max_rows is 5 a response; the view is every
			// page of it.
			if got.Records != want.Records || got.Unique != want.Unique || got.MinK != want.MinK ||
				got.Classes.Count != want.Classes.Count {
				t.Errorf("records %d, unique %d, min_k %d, classes %d; computed from the raw records %d, %d, %d, %d",
					got.Records, got.Unique, got.MinK, got.Classes.Count, want.Records, want.Unique, want.MinK, want.Classes.Count)
			}
			if diff := cmp.Diff(want.Sensitive, got.Sensitive); diff != "" {
				t.Errorf("sensitive (-raw +report):\n%s", diff)
			}
			gotWithout := map[string]int{}
			for _, d := range got.Drivers {
				gotWithout[d.Field] = d.UniqueWithout
			}
			if diff := cmp.Diff(without, gotWithout); diff != "" {
				t.Errorf("unique without each field (-raw +report):\n%s", diff)
			}
			var qis []string
			for _, q := range got.QuasiIdentifiers {
				qis = append(qis, fmt.Sprintf("%s %s %s", q.Field, q.Class, q.Treatment))
			}
			wantQIs := []string{"district quasi keep", "patient_id id pseudonymize", `visit_date quasi generalize{"to":"month"}`}
			if diff := cmp.Diff(wantQIs, qis); diff != "" {
				t.Errorf("quasi-identifiers (-want +got):\n%s", diff)
			}
			if !slices.Equal(got.Constant, []string{"name"}) || len(got.Rows) != 1 {
				t.Errorf("constant %v rows %v, want the redacted name and the district filter", got.Constant, got.Rows)
			}
		})
	}
	// Classes count patients: with the patient's pseudonym released, no
	// class holds two, whatever its records; without it, classes mix
	// patients.
	if want.Unique != want.Records || want.MinK != 1 || want.Classes.Count == want.Records {
		t.Fatalf("the fixture should release one-patient classes of several visits: %d unique of %d, %d classes", want.Unique, want.Records, want.Classes.Count)
	}
	if without["patient_id"] >= want.Records {
		t.Fatalf("without the pseudonym, classes should mix patients: %d unique of %d", without["patient_id"], want.Records)
	}
}

func TestRiskReportAnswersInTheDocumentedShape(t *testing.T) {
	g := newRiskGateway(t, riskRecords())
	w := g.getRisk(t, asReader, g.token(t, "oscar", "officer"))
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"dataset", "decision", "records", "unique", "unique_share", "min_k", "quasi_identifiers",
		"drivers", "classes", "sensitive", "subject", "policy_revision"} {
		if _, ok := body[k]; !ok {
			t.Errorf("the report has no %q: %s", k, w.Body)
		}
	}
	if d, _ := body["decision"].(map[string]any); d["allow"] != true || d["reason"] != "reader: visits of two districts" {
		t.Errorf("decision %v, want allow with the policy's reason", body["decision"])
	}
	sizes, _ := body["classes"].(map[string]any)["sizes"].([]any)
	if len(sizes) != 5 {
		t.Errorf("classes.sizes %v, want the five bins", sizes)
	}
}

func TestRiskReportIsForOfficersAndAudited(t *testing.T) {
	g := newRiskGateway(t, riskRecords())
	w := g.getRisk(t, asReader, g.token(t, "oscar", "officer"))
	rep := decodeRisk(t, w)
	ev := g.event(t, w)
	if ev.Action != "explain" || ev.Decision != "allow" || ev.Subject != "oscar" || ev.Source != "health" ||
		ev.Dataset != "visits" || ev.Path != "/v1/explain/risk" || ev.Rows != 0 || ev.PolicyRevision == "" {
		t.Errorf("audit record %+v, want oscar's allowed explain of health/visits releasing no rows", ev)
	}
	if want := fmt.Sprintf("%d records, %d unique, min_k %d", rep.Records, rep.Unique, rep.MinK); !strings.Contains(ev.Reason, want) ||
		!strings.Contains(ev.Reason, "rex [reader]") {
		t.Errorf("audit reason %q, want the assessed caller and %q", ev.Reason, want)
	}
	for _, roles := range [][]string{{"reader"}, {"public"}, {}} {
		w := g.getRisk(t, asReader, g.token(t, "mallory", roles...))
		expectStatsError(t, w, http.StatusForbidden, "forbidden")
		if ev := g.event(t, w); ev.Action != "explain" || ev.Decision != "deny" || ev.Subject != "mallory" {
			t.Errorf("refusal audited as %+v, want mallory's denied explain", ev)
		}
	}
}

func TestRiskReportOfADeniedReadSaysSoWithoutFigures(t *testing.T) {
	g := newRiskGateway(t, riskRecords())
	w := g.getRisk(t, "dataset=health/visits&sub=pat&roles=public", g.token(t, "oscar", "officer"))
	rep := decodeRisk(t, w)
	if rep.Decision.Allow || rep.Decision.Reason != "no rule grants this access" || rep.Report != nil {
		t.Errorf("report %+v, want the deny and its reason, no figures", rep)
	}
	if strings.Contains(w.Body.String(), `"records"`) {
		t.Errorf("a denied view has figures: %s", w.Body)
	}
	if ev := g.event(t, w); !strings.Contains(ev.Reason, "read denied") {
		t.Errorf("audit reason %q, want the assessed read's deny", ev.Reason)
	}
}

func TestRiskReportRefusesWhatItCannotAssess(t *testing.T) {
	g := newRiskGateway(t, riskRecords())
	officer := g.token(t, "oscar", "officer")
	cases := []struct {
		query  string
		token  string
		status int
		code   string
	}{
		{"sub=rex&roles=reader", "", http.StatusBadRequest, "bad_request"},
		{"dataset=visits&sub=rex&roles=reader", "", http.StatusBadRequest, "bad_request"},
		{"dataset=health/nothing&sub=rex&roles=reader", "", http.StatusNotFound, "not_found"},
		{"dataset=health/visits", "", http.StatusBadRequest, "bad_request"},            // whose view?
		{"dataset=health/visits", "not-a-token", http.StatusBadRequest, "bad_request"}, // refused token
		{"dataset=health/big&sub=rex&roles=reader", "", http.StatusRequestEntityTooLarge, "too_large"},
		{"dataset=health/slow&sub=rex&roles=reader", "", http.StatusGatewayTimeout, "upstream_timeout"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			var headers []string
			if c.token != "" {
				headers = []string{ExplainTokenHeader, c.token}
			}
			w := g.getRisk(t, c.query, officer, headers...)
			expectStatsError(t, w, c.status, c.code)
			if ev := g.event(t, w); ev.Action != "explain" || ev.Status != c.status {
				t.Errorf("audit record %+v, want the explain refused with %d", ev, c.status)
			}
		})
	}
}

func TestRiskFieldsClassEachReleasedTopLevelField(t *testing.T) {
	ds := &dataset{cfg: &DatasetConfig{Fields: map[string]FieldConfig{
		"id": {Class: "id"}, "dx": {Class: "sensitive"}, "zip": {}, "address": {Class: "id"},
	}}}
	rules := map[string]anonymize.Rule{
		"id": {Op: "mask", Params: anonymize.Params{"keep_last": 4}}, "dx": {Op: "keep"}, "zip": {Op: "keep"},
		"note": {Op: "keep"}, "gone": {Op: "drop"}, "secret": {Op: "replace", Params: anonymize.Params{"value": "x"}},
		"address.city": {Op: "keep"}, "address.street": {Op: "mask_address"},
	}
	fields, constant := riskFields(ds, rules)
	want := []risk.Field{
		{Name: "address", Class: "id", Treatment: "address.city keep, address.street mask_address"},
		{Name: "dx", Class: "sensitive", Treatment: "keep"},
		{Name: "id", Class: "id", Treatment: `mask{"keep_last":4}`},
		{Name: "note", Treatment: "keep"},
		{Name: "zip", Treatment: "keep"},
	}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if !slices.Equal(constant, []string{"secret"}) {
		t.Errorf("constant %v, want secret", constant)
	}
}
