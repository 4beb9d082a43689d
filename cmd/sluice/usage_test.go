package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/gateway"
	usageidx "github.com/sluicegw/sluice/usage"
)

// The proof of "who used my data": after many releases by several roles,
// the citizen's report lists exactly the releases whose bodies held their
// records — each release checked against the department's raw records, by
// the record ids the release carried in clear — none missing, none extra.
// Rebuilding the index from the trail gives the same answer, so does the
// command line, and the trail holds no raw ID.
func TestTheCitizensUsageIsExactlyTheReleasesThatHeldTheirRecords(t *testing.T) {
	dir := t.TempDir()
	d := startDemo(t, dir)
	gw, tok, citizen := d.manifest.Gateway, d.manifest.Tokens, d.manifest.CitizenID

	// The raw records, straight from the departments: whose each record is.
	visitOf, caseOf := map[string]string{}, map[string]string{}
	for _, r := range d.allUpstream(t, "health", "/visits") {
		visitOf[r["visit_id"].(string)] = r["patient_id"].(string)
	}
	for _, r := range d.allUpstream(t, "civil", "/assistance") {
		caseOf[r["case_id"].(string)] = r["id_number"].(string)
	}

	// The researcher is granted visit ids and districts, and reads every
	// page; the caseworker reads her district's cases and looks one up.
	req := wantJSON(t, send(t, "POST", gw+"/v1/requests", `{"dataset":"health/visits","fields":["visit_id","district"],
		"purpose":"research","legal_basis":"Statistics Law art. 7","justification":"usage test","valid_until":"2099-01-01T00:00:00Z"}`,
		"Authorization", "Bearer "+tok["researcher"]), http.StatusCreated)
	wantJSON(t, send(t, "POST", gw+"/v1/requests/"+req["id"].(string)+"/decision",
		`{"decision":"approve","conditions":{"fields":{"visit_id":"keep","district":"keep"}}}`,
		"Authorization", "Bearer "+tok["steward_health"]), http.StatusOK)

	want := map[string]bool{} // request ids of releases holding the citizen
	releases := 0
	check := func(r response, idField string, owner map[string]string) int {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("read: %d %s", r.status, r.body)
		}
		items := r.items(t)
		held := false
		for _, it := range items {
			id, _ := it[idField].(string)
			who, ok := owner[id]
			if !ok {
				t.Fatalf("released %s %q is not a raw record", idField, id)
			}
			held = held || who == citizen
		}
		if len(items) > 0 {
			releases++
			if held {
				want[r.header.Get("X-Request-Id")] = true
			}
		}
		return len(items)
	}
	for page := 1; ; page++ {
		r := fetch(t, fmt.Sprintf("%s/v1/health/visits?page=%d&page_size=200", gw, page), tok["researcher"], "Sluice-Purpose", "research")
		if check(r, "visit_id", visitOf) == 0 {
			break
		}
	}
	for page := 1; page <= 3; page++ {
		check(fetch(t, fmt.Sprintf("%s/v1/civil/assistance?page=%d&page_size=50", gw, page), tok["caseworker"]), "case_id", caseOf)
	}
	for caseID, who := range caseOf {
		if who == citizen {
			// Outside her district a lookup is refused (and releases
			// nothing); inside, it is a release holding the citizen.
			r := fetch(t, gw+"/v1/civil/assistance/"+caseID, tok["caseworker"])
			if r.status == http.StatusOK {
				check(r, "case_id", caseOf)
			}
		}
	}
	if len(want) == 0 || releases < 10 {
		t.Fatalf("%d releases, %d holding the citizen: the test proves nothing", releases, len(want))
	}

	got := func(rels []string) map[string]bool {
		m := map[string]bool{}
		for _, id := range rels {
			m[id] = true
		}
		return m
	}
	var rep struct {
		Trail    struct{ Verified bool }
		Releases []struct {
			RequestID string `json:"request_id"`
			Dept      string
			Subject   string
			Fields    map[string]string
		}
	}
	r := fetch(t, gw+"/v1/me/usage", tok["citizen"])
	if r.status != http.StatusOK || json.Unmarshal(r.body, &rep) != nil {
		t.Fatalf("/v1/me/usage: %d %s", r.status, r.body)
	}
	var ids []string
	for _, rel := range rep.Releases {
		ids = append(ids, rel.RequestID)
		if rel.Subject != "" || rel.Dept == "" || len(rel.Fields) == 0 {
			t.Errorf("release %+v: the officer is named, or the department or fields are missing", rel)
		}
	}
	if !mapsEqual(got(ids), want) {
		t.Fatalf("the citizen's usage lists %d releases, the raw releases say %d:\n got %v\nwant %v", len(ids), len(want), ids, want)
	}
	if !rep.Trail.Verified {
		t.Error("the usage does not say the trail verified")
	}
	// The auditor's view names who asked.
	ar := fetch(t, gw+"/audit/v1/usage?subject="+citizen, tok["auditor"])
	if ar.status != http.StatusOK || !bytes.Contains(ar.body, []byte(`"subject":"`)) {
		t.Errorf("/audit/v1/usage: %d %s", ar.status, ar.body)
	}

	// The trail holds no raw ID: not the citizen's, nor any other.
	trail := trailBytes(t, filepath.Join(dir, "audit"))
	if strings.Contains(trail, citizen) {
		t.Error("the trail holds the citizen's ID number in clear")
	}
	n := 0
	for _, who := range visitOf {
		if n++; n > 200 {
			break
		}
		if strings.Contains(trail, who) {
			t.Fatalf("the trail holds a patient's ID number in clear")
		}
	}

	// Stopped, the index is rebuilt from the trail and answers the same;
	// so does the command line, which reads the trail itself.
	if err := d.stop(t); err != nil {
		t.Logf("demo stopped: %v", err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"audit", "reindex", "--dir", dir}, &out, &errb); err != nil {
		t.Fatalf("reindex: %v\n%s", err, errb.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"audit", "usage", "--dir", dir, "--subject", citizen, "--json"}, &out, &errb); err != nil {
		t.Fatalf("audit usage: %v\n%s", err, errb.String())
	}
	var cli struct {
		Verified bool
		Releases []usageidx.Release
	}
	if err := json.Unmarshal(out.Bytes(), &cli); err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, rel := range cli.Releases {
		ids = append(ids, rel.RequestID)
	}
	if !mapsEqual(got(ids), want) || !cli.Verified {
		t.Errorf("sluice audit usage lists %v (verified %v), want %v", ids, cli.Verified, want)
	}
	idx, err := usageidx.OpenBolt(filepath.Join(dir, "audit", "usage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	h, err := trailHasher("test", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := idx.ByUnit(context.Background(), h.Unit(citizen), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, rel := range rebuilt {
		ids = append(ids, rel.RequestID)
	}
	if !mapsEqual(got(ids), want) {
		t.Errorf("the rebuilt index lists %v, want %v", ids, want)
	}
}

// wantJSON is r's JSON object, which must have come with status.
func wantJSON(t *testing.T, r response, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r.json(t)
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// allUpstream is every record of a demo dataset, read page by page from
// the department.
func (d *demoRun) allUpstream(t *testing.T, dept, path string) []map[string]any {
	t.Helper()
	var all []map[string]any
	for page := 1; ; page++ {
		items := d.upstreamRecords(t, dept, fmt.Sprintf("%s?page=%d&page_size=1000", path, page))
		if len(items) == 0 {
			return all
		}
		all = append(all, items...)
	}
}

// A release too large for one record names a person in a names record and
// again in its outcome; the command line lists that release once, by its
// outcome, as the index does.
func TestAuditUsageListsALargeReleaseOnce(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("a key of the gateway's, 32 bytes!")
	if err := os.WriteFile(filepath.Join(dir, "hmac.key"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := gateway.TrailHasher(secret)
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const subject = "110101199003077777"
	me, other := h.Unit(subject), h.Unit("110101199003070000")
	ctx := context.Background()
	for _, ev := range []*audit.Event{
		{Phase: audit.PhaseDecision},
		{Phase: audit.PhaseNames, Released: &audit.Released{Units: []string{me, other}, Part: 1}},
		{Phase: audit.PhaseNames, Released: &audit.Released{Units: []string{other, me}, Part: 2}},
		{Phase: audit.PhaseOutcome, Status: 200, Rows: 3, Released: &audit.Released{Units: []string{me}, Parts: 2}},
	} {
		ev.RequestID, ev.Action, ev.Decision, ev.Method, ev.Path = "large", "read", "allow", "GET", "/v1/health/visits"
		ev.Org, ev.Source, ev.Dataset = "stats", "health", "visits"
		if err := trail.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := trail.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"audit", "usage", "--dir", dir, "--subject", subject, "--json"}, &out, &errb); err != nil {
		t.Fatalf("audit usage: %v\n%s", err, errb.String())
	}
	var rep struct {
		Verified bool
		Releases []usageidx.Release
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if !rep.Verified || len(rep.Releases) != 1 || rep.Releases[0].Part != 0 || rep.Releases[0].Rows != 3 {
		t.Fatalf("want the trail verified and the release once, by its outcome: %s", out.String())
	}
}
