package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// upstreamRecords fetches records straight from a demo department, as only
// the gateway may.
func (d *demoRun) upstreamRecords(t *testing.T, dept, path string) []map[string]any {
	t.Helper()
	cred, err := os.ReadFile(filepath.Join(d.dir, upstreamFile))
	if err != nil {
		t.Fatal(err)
	}
	r := fetch(t, d.manifest.Upstreams[dept]+path, strings.TrimSpace(string(cred)))
	if r.status != http.StatusOK {
		t.Fatalf("upstream %s%s: %d %s", dept, path, r.status, r.body)
	}
	return r.items(t)
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDemoRoleTable walks DESIGN.md's role table through a demo gateway
// started by run(), comparing what each role gets with the upstream's raw
// records.
func TestDemoRoleTable(t *testing.T) {
	d := startDemo(t, t.TempDir())
	gw, tok := d.manifest.Gateway, d.manifest.Tokens

	t.Run("analyst reads a k-anonymous view of visits: no one's identity, classes of five patients and three diagnoses", func(t *testing.T) {
		// Every visit, to count each class's patients from the raw data.
		var all []map[string]any
		for page := 1; ; page++ {
			items := d.upstreamRecords(t, "health", fmt.Sprintf("/visits?page_size=1000&page=%d", page))
			if len(items) == 0 {
				break
			}
			all = append(all, items...)
		}
		band := func(cost any) string {
			lo := int(cost.(float64)) / 2000 * 2000
			return fmt.Sprintf("%d-%d", lo, lo+1999)
		}
		class := func(district, hospital, month, cost any) string {
			return fmt.Sprint(district, "/", hospital, "/", month, "/", cost)
		}
		patients, diagnoses := map[string]map[any]bool{}, map[string]map[any]bool{}
		for _, v := range all {
			c := class(v["district"], v["hospital"], v["visit_date"].(string)[:7], band(v["cost"]))
			if patients[c] == nil {
				patients[c], diagnoses[c] = map[any]bool{}, map[any]bool{}
			}
			patients[c][v["patient_id"]] = true
			diagnoses[c][v["diagnosis"]] = true
		}
		raw := all[:200]
		r := get(t, gw+"/v1/health/visits?page_size=200", tok["analyst"])
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var body struct {
			Items      []map[string]any `json:"items"`
			Suppressed int              `json:"suppressed"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		// The released records are the raw page's, in order, less those
		// of classes of fewer than five patients or three diagnoses.
		var want []map[string]any
		for _, v := range raw {
			month, cost := v["visit_date"].(string)[:7], band(v["cost"])
			if c := class(v["district"], v["hospital"], month, cost); len(patients[c]) < 5 || len(diagnoses[c]) < 3 {
				continue
			}
			want = append(want, map[string]any{"district": v["district"], "hospital": v["hospital"],
				"diagnosis": v["diagnosis"], "visit_date": month, "cost": cost})
		}
		if diff := cmp.Diff(want, body.Items); diff != "" {
			t.Errorf("released (-want +got):\n%s", diff)
		}
		if body.Suppressed != len(raw)-len(want) || body.Suppressed == 0 || len(want) == 0 {
			t.Errorf("suppressed %d of %d, want %d (and some of each)", body.Suppressed, len(raw), len(raw)-len(want))
		}
		for _, v := range raw {
			for _, f := range []string{"patient_id", "patient_name", "visit_id"} {
				if strings.Contains(string(r.body), v[f].(string)) {
					t.Fatalf("%s %q released", f, v[f])
				}
			}
		}
	})

	t.Run("analyst may filter by district, and cannot look up a visit it is not given the id of", func(t *testing.T) {
		r := get(t, gw+"/v1/health/visits?district=海淀区&page_size=20", tok["analyst"])
		items := r.items(t)
		if r.status != http.StatusOK || len(items) == 0 {
			t.Fatalf("status %d, %d items", r.status, len(items))
		}
		for _, rec := range items {
			if rec["district"] != "海淀区" {
				t.Errorf("district filter leaked %v", rec["district"])
			}
		}
		id := d.upstreamRecords(t, "health", "/visits?page_size=1")[0]["visit_id"].(string)
		expectError(t, get(t, gw+"/v1/health/visits/"+id, tok["analyst"]), http.StatusForbidden, "forbidden")
	})

	t.Run("analyst is refused without the public-health purpose and on other datasets", func(t *testing.T) {
		expectError(t, get(t, gw+"/v1/health/visits", tok["analyst"], PurposeHeaderForTest, "marketing"), http.StatusForbidden, "forbidden")
		expectError(t, get(t, gw+"/v1/police/residents", tok["analyst"]), http.StatusForbidden, "forbidden")
		expectError(t, get(t, gw+"/v1/civil/assistance", tok["analyst"]), http.StatusForbidden, "forbidden")
	})

	t.Run("analyst may not pass parameters the policy does not list", func(t *testing.T) {
		expectError(t, get(t, gw+"/v1/health/visits?patient_id=110105199001011234", tok["analyst"]), http.StatusForbidden, "forbidden")
		expectError(t, get(t, gw+"/v1/health/visits?page=abc", tok["analyst"]), http.StatusBadRequest, "bad_request")
	})

	t.Run("caseworker reads only their district, identifiers masked", func(t *testing.T) {
		raw := map[string]map[string]any{}
		for _, rec := range d.upstreamRecords(t, "civil", "/assistance?district=朝阳区&page_size=1000") {
			raw[rec["case_id"].(string)] = rec
		}
		r := get(t, gw+"/v1/civil/assistance?page_size=200", tok["caseworker"])
		got := r.items(t)
		if r.status != http.StatusOK || len(got) == 0 {
			t.Fatalf("status %d, %d items: %s", r.status, len(got), r.body)
		}
		idMask := regexp.MustCompile(`^\d{6}\*{8}[\dX]{4}$`)
		phoneMask := regexp.MustCompile(`^1\d{2}\*{4}\d{4}$`)
		compound := 0
		for _, rec := range got {
			src, ok := raw[rec["case_id"].(string)]
			if !ok || rec["district"] != "朝阳区" {
				t.Fatalf("record of another district released: %v", rec)
			}
			id, name, phone := rec["id_number"].(string), rec["name"].(string), rec["phone"].(string)
			rawID, rawName, rawPhone := src["id_number"].(string), src["name"].(string), src["phone"].(string)
			if !idMask.MatchString(id) || id[:6] != rawID[:6] || id[14:] != rawID[14:] {
				t.Errorf("id_number %q is not %q masked to 6 + 4", id, rawID)
			}
			if !phoneMask.MatchString(phone) || phone[:3] != rawPhone[:3] || phone[7:] != rawPhone[7:] {
				t.Errorf("phone %q is not %q masked to 3 + 4", phone, rawPhone)
			}
			runes, rawRunes := []rune(name), []rune(rawName)
			keep := 1
			if len(rawRunes) >= 3 && compoundSurnames[string(rawRunes[:2])] {
				keep, compound = 2, compound+1
			}
			// Fixed width: the surname and one star, whatever the given
			// name's length, which would otherwise narrow who it is.
			if len(runes) != keep+1 || string(runes[:keep]) != string(rawRunes[:keep]) || string(runes[keep:]) != "*" {
				t.Errorf("name %q is not %q with only the surname kept, at a fixed width", name, rawName)
			}
			for _, leaked := range []string{rawID, rawPhone, rawName} {
				if strings.Contains(string(r.body), leaked) {
					t.Errorf("raw value %q released", leaked)
				}
			}
			wantKeys := []string{"case_id", "district", "household_size", "id_number", "monthly_allowance", "name", "phone", "start_date"}
			if diff := cmp.Diff(wantKeys, sortedStrings(keys(rec))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		}
		if compound == 0 {
			t.Log("no compound surname among the released names")
		}
		other := get(t, gw+"/v1/civil/assistance?district=海淀区", tok["caseworker"])
		if other.status != http.StatusOK || len(other.items(t)) != 0 {
			t.Errorf("asking for another district: status %d, %d items", other.status, len(other.items(t)))
		}
		if _, hasTotal := other.json(t)["total"]; hasTotal {
			t.Errorf("a total was released although the row filter removed records: %s", other.body)
		}
	})

	t.Run("public, auditor and officer get no records", func(t *testing.T) {
		for _, role := range []string{"public", "auditor", "officer"} {
			for _, ds := range []string{"/v1/health/visits", "/v1/civil/assistance", "/v1/police/residents"} {
				expectError(t, get(t, gw+ds, tok[role]), http.StatusForbidden, "forbidden")
			}
		}
	})

	t.Run("catalog lists what each role may use with each field's treatment", func(t *testing.T) {
		var cat struct {
			Datasets []struct {
				Source, Dataset string
				Read            struct{ Allowed bool }
				Request         *struct{ Href string }
				Fields          []struct {
					Name      string
					Treatment struct{ Op string }
				}
			}
		}
		r := get(t, gw+"/v1/catalog", tok["caseworker"])
		if err := json.Unmarshal(r.body, &cat); err != nil || r.status != http.StatusOK {
			t.Fatalf("catalog: %d %s", r.status, r.body)
		}
		// Its own dataset, and health visits to request (the residents
		// are not shared: not listed to request).
		if len(cat.Datasets) != 2 || cat.Datasets[0].Dataset != "assistance" || !cat.Datasets[0].Read.Allowed ||
			cat.Datasets[1].Dataset != "visits" || cat.Datasets[1].Read.Allowed || cat.Datasets[1].Request == nil {
			t.Fatalf("caseworker catalog: %s", r.body)
		}
		ops := map[string]string{}
		for _, f := range cat.Datasets[0].Fields {
			ops[f.Name] = f.Treatment.Op
		}
		want := map[string]string{"case_id": "keep", "id_number": "mask_id_cn", "name": "mask_name_cn", "phone": "mask_phone_cn",
			"district": "keep", "household_size": "keep", "monthly_allowance": "keep", "start_date": "keep"}
		if diff := cmp.Diff(want, ops); diff != "" {
			t.Errorf("caseworker treatments (-want +got):\n%s", diff)
		}
		r = get(t, gw+"/v1/catalog", tok["auditor"])
		if err := json.Unmarshal(r.body, &cat); err != nil || len(cat.Datasets) != 0 {
			t.Errorf("auditor catalog lists datasets: %s", r.body)
		}
	})

	t.Run("every access is audited and the trail verifies", func(t *testing.T) {
		out, _, err := runCmd(t, "audit", "verify", "--dir", d.dir)
		if err != nil || !strings.HasPrefix(out, "ok: ") {
			t.Fatalf("verify: %v %s", err, out)
		}
		decisions := map[string]int{}
		for _, rec := range auditRecords(t, filepath.Join(d.dir, "audit")) {
			decisions[rec["decision"].(string)]++
			if rec["policy_revision"] == "" {
				t.Errorf("record without policy revision: %v", rec)
			}
		}
		if decisions["allow"] == 0 || decisions["deny"] == 0 {
			t.Errorf("decisions in the trail: %v", decisions)
		}
	})
}

// PurposeHeaderForTest is the purpose header, spelled as a caller would.
const PurposeHeaderForTest = "Sluice-Purpose"

// compoundSurnames mirrors the surnames the demo generates.
var compoundSurnames = map[string]bool{"欧阳": true, "司马": true, "诸葛": true, "上官": true, "东方": true,
	"皇甫": true, "尉迟": true, "公孙": true, "慕容": true, "令狐": true}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestDemoRefusesBadTokens: no token, another key, alg none, expired, wrong
// audience, wrong issuer and no subject all get 401 and are audited.
func TestDemoRefusesBadTokens(t *testing.T) {
	d := startDemo(t, t.TempDir())
	key, err := readSigningKey(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := ed25519GenerateKey()
	now := time.Now()
	analyst := tokenClaims{Subject: "alice", Roles: []string{"analyst"}, Dept: "health", Purpose: "public-health", TTL: time.Hour}
	mustSign := func(tok string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cases := map[string]string{
		"no token":         "",
		"another key":      mustSign(signToken(otherKey, analyst, now)),
		"alg none":         noneToken(t, map[string]any{"iss": demoIssuer, "aud": demoAudience, "sub": "alice", "roles": []string{"analyst"}, "exp": now.Add(time.Hour).Unix()}),
		"expired":          mustSign(signToken(key, analyst, now.Add(-2*time.Hour))),
		"another audience": mustSign(signClaims(key, map[string]any{"iss": demoIssuer, "aud": "someone-else", "sub": "alice", "exp": now.Add(time.Hour).Unix()})),
		"another issuer":   mustSign(signClaims(key, map[string]any{"iss": "evil", "aud": demoAudience, "sub": "alice", "exp": now.Add(time.Hour).Unix()})),
		"no subject":       mustSign(signClaims(key, map[string]any{"iss": demoIssuer, "aud": demoAudience, "exp": now.Add(time.Hour).Unix()})),
		"not yet valid":    mustSign(signToken(key, analyst, now.Add(time.Hour))),
		"garbage":          "not.a.token",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			r := get(t, d.manifest.Gateway+"/v1/health/visits", tok)
			expectError(t, r, http.StatusUnauthorized, "unauthenticated")
			rec := recordFor(t, filepath.Join(d.dir, "audit"), r.header.Get("X-Request-Id"))
			if rec["decision"] != "deny" || rec["status"] != float64(401) {
				t.Errorf("audit record: %v", rec)
			}
		})
	}
	t.Run("a good token from sluice token is accepted", func(t *testing.T) {
		out, _, err := runCmd(t, "token", "--dir", d.dir, "--sub", "alice", "--roles", "analyst", "--dept", "health", "--purpose", "public-health")
		if err != nil {
			t.Fatal(err)
		}
		r := get(t, d.manifest.Gateway+"/v1/health/visits?page_size=1", strings.TrimSpace(out))
		if r.status != http.StatusOK || len(r.items(t)) != 1 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

// TestDemoKeepsKeysTrailAndTokensAcrossRuns: a second run in the same
// directory accepts the first run's tokens and continues its trail.
func TestDemoKeepsKeysTrailAndTokensAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	first := startDemo(t, dir)
	tok := first.manifest.Tokens["analyst"]
	if r := get(t, first.manifest.Gateway+"/v1/health/visits?page_size=1", tok); r.status != http.StatusOK {
		t.Fatalf("first run: %d %s", r.status, r.body)
	}
	if err := first.stop(t); err != nil {
		t.Fatalf("first run ended with %v", err)
	}
	before := len(auditRecords(t, filepath.Join(dir, "audit")))
	second := startDemo(t, dir)
	r := get(t, second.manifest.Gateway+"/v1/health/visits?page_size=1", tok)
	if r.status != http.StatusOK {
		t.Fatalf("the first run's token on the second run: %d %s", r.status, r.body)
	}
	recordFor(t, filepath.Join(dir, "audit"), r.header.Get("X-Request-Id"))
	// A release is two records: its decision and its outcome; the new
	// process builds the analyst's k-anonymity class table first, in a
	// record of its own, and at start looked for the demo's grant (an
	// audited read of the grants) and found it: no second request.
	if after := len(auditRecords(t, filepath.Join(dir, "audit"))); after != before+4 {
		t.Errorf("trail has %d records after one more request, want %d", after, before+4)
	}
	submitted := 0
	for _, rec := range auditRecords(t, filepath.Join(dir, "audit")) {
		if rec["action"] == "request.submit" {
			submitted++
		}
	}
	if submitted != 1 {
		t.Errorf("%d requests submitted over two runs, want the demo's one", submitted)
	}
	if out, _, err := runCmd(t, "audit", "verify", "--dir", dir); err != nil {
		t.Errorf("verify after restart: %v %s", err, out)
	}
}

// The demo starts with one request approved by steward_health, in the
// trail like any other; the analyst reads under its grant.
func TestDemoStartsWithTheAnalystsGrantApproved(t *testing.T) {
	dir := t.TempDir()
	d := startDemo(t, dir)
	gw, tok := d.manifest.Gateway, d.manifest.Tokens
	var grants struct {
		Grants []struct {
			ID, Dept, Dataset, Purpose, State string
			MinK                              int `json:"min_k"`
		}
	}
	r := get(t, gw+"/v1/grants", tok["steward_health"])
	if err := json.Unmarshal(r.body, &grants); err != nil || len(grants.Grants) != 1 {
		t.Fatalf("grants: %d %s", r.status, r.body)
	}
	g := grants.Grants[0]
	if g.Dept != "health" || g.Dataset != "health/visits" || g.Purpose != "public-health" || g.State != "active" || g.MinK != 5 {
		t.Errorf("the demo's grant %+v", g)
	}
	read := get(t, gw+"/v1/health/visits?page_size=3", tok["analyst"])
	if read.status != http.StatusOK {
		t.Fatalf("analyst read: %d %s", read.status, read.body)
	}
	rec := recordFor(t, filepath.Join(dir, "audit"), read.header.Get("X-Request-Id"))
	if rec["grant"] != g.ID {
		t.Errorf("the analyst's release names grant %v, want %s", rec["grant"], g.ID)
	}
	var trail []string
	for _, rec := range auditRecords(t, filepath.Join(dir, "audit")) {
		if ch, ok := rec["change"].(map[string]any); ok {
			trail = append(trail, fmt.Sprint(rec["subject"], " ", rec["action"], " ", ch["from"], "→", ch["to"]))
		}
	}
	want := []string{"alice request.submit →submitted", "sluice grant.issue →active", "sam request.decide submitted→approved"}
	if diff := cmp.Diff(want, trail); diff != "" {
		t.Errorf("hub trail (-want +got):\n%s", diff)
	}
	// The citizen's token names a person in all three datasets.
	if d.manifest.CitizenID == "" || tok["citizen"] == "" {
		t.Errorf("citizen_id %q, citizen token %q", d.manifest.CitizenID, tok["citizen"])
	}
	// Residents are not shared: a request is refused with the basis.
	body := `{"dataset":"police/residents","fields":["district"],"purpose":"research","legal_basis":"x","valid_until":"2030-01-01T00:00:00Z"}`
	req, _ := http.NewRequest("POST", gw+"/v1/requests", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok["researcher"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a request for the residents: %d", resp.StatusCode)
	}
}
