package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/usage"
)

// smallNames makes a record hold at most n names for the test, so that
// small releases take the path of large ones: the tap spills its names
// and the release writes names records before its outcome.
func smallNames(t *testing.T, n int) {
	was := audit.MaxNames
	audit.MaxNames = n
	t.Cleanup(func() { audit.MaxNames = was })
}

// namesOf gathers what the trail's records of the release id name, and
// checks their shape: names records numbered from 1, before the outcome,
// each within audit.MaxNames and naming each person and record once; the
// outcome counting them.
func namesOf(t *testing.T, events []audit.Event, id string) (units, records map[string]bool, parts int) {
	t.Helper()
	units, records = map[string]bool{}, map[string]bool{}
	outcome := false
	for _, ev := range events {
		if ev.RequestID != id || ev.Phase == audit.PhaseDecision {
			continue
		}
		if outcome {
			t.Fatalf("a %s record of %s after its outcome", ev.Phase, id)
		}
		rel := ev.Released
		if rel == nil {
			t.Fatalf("the %s record of %s names nobody", ev.Phase, id)
		}
		switch ev.Phase {
		case audit.PhaseNames:
			parts++
			if rel.Part != parts || ev.Status != 0 || ev.Decision != "allow" || ev.Action != "read" {
				t.Errorf("names record %d of %s: part %d, status %d, %s %s", parts, id, rel.Part, ev.Status, ev.Action, ev.Decision)
			}
		case audit.PhaseOutcome:
			outcome = true
			if rel.Parts != parts || rel.Part != 0 {
				t.Errorf("the outcome of %s counts %d names records (part %d), %d precede it", id, rel.Parts, rel.Part, parts)
			}
		default:
			t.Fatalf("a record of %s in phase %q", id, ev.Phase)
		}
		if n := len(rel.Units) + len(rel.Records); n > audit.MaxNames {
			t.Errorf("a %s record of %s names %d, more than %d", ev.Phase, id, n, audit.MaxNames)
		}
		for _, l := range [...]struct {
			list []string
			all  map[string]bool
		}{{rel.Units, units}, {rel.Records, records}} {
			if len(slices.Compact(slices.Sorted(slices.Values(l.list)))) != len(l.list) {
				t.Errorf("a %s record of %s names someone twice: %v", ev.Phase, id, l.list)
			}
			for _, h := range l.list {
				l.all[h] = true
			}
		}
	}
	if !outcome {
		t.Fatalf("no outcome record of %s", id)
	}
	return units, records, parts
}

// A release too large for one record names its people in names records
// before its outcome, each bounded; together they name exactly the
// records k-anonymity kept, as a release held in memory does.
func TestALargeReleaseNamesExactlyItsKeptPeopleInBoundedRecords(t *testing.T) {
	// read has a gateway of its own (its own hash key) release the whole
	// view, and checks what its trail names against the kept records.
	read := func(t *testing.T, name string) (parts int) {
		g := newKGateway(t)
		size, _ := rawClasses(g.raw)
		wantUnits, wantRecords := map[string]bool{}, map[string]bool{}
		for _, rec := range g.raw {
			if size[rec["district"].(string)+"/"+rec["band"].(string)] >= 3 {
				wantUnits[g.srv.hasher.Unit(rec["patient_id"].(string))] = true
				wantRecords[g.srv.hasher.Record("health/visits", rec["visit_id"].(string))] = true
			}
		}
		w := g.get(t, "/v1/health/visits?page_size=100", g.token(t, "org-a", "kreader"))
		p := decodeKPage(t, w)
		if *p.Suppressed == 0 || len(p.Items) != len(wantRecords) {
			t.Fatalf("%s: %d released, %d suppressed: want %d and some", name, len(p.Items), *p.Suppressed, len(wantRecords))
		}
		units, records, parts := namesOf(t, g.audit.events, w.Header().Get("X-Request-Id"))
		if !maps.Equal(units, wantUnits) || !maps.Equal(records, wantRecords) {
			t.Errorf("%s: the trail names %d people and %d records; the kept records are %d people's, %d records",
				name, len(units), len(records), len(wantUnits), len(wantRecords))
		}
		return parts
	}
	if parts := read(t, "held"); parts != 0 {
		t.Errorf("held: %d names records, want none", parts)
	}
	smallNames(t, 4)
	if parts := read(t, "spilled"); parts < 4 {
		t.Errorf("spilled: %d names records, want several", parts)
	}
}

// A large release is found by every person and record it named, once,
// on the real trail and index, its marks in place; rebuilt from the
// trail, the index answers the same.
func TestALargeReleaseIsFoundByEveryoneItNamedOnce(t *testing.T) {
	smallNames(t, 8)
	g := newUsageGateway(t)
	g.visits = nil
	for i := range 60 {
		g.visits = append(g.visits, map[string]any{"visit_id": fmt.Sprint("V", i), "patient_id": fmt.Sprintf("P%03d", i%30),
			"patient_name": "name", "district": "朝阳区", "hospital": "朝阳医院", "diagnosis": "I10",
			"visit_date": "2026-03-17", "cost": 100})
	}
	tok := g.granted(t, "rita", "stats-bureau")
	first := g.read(t, tok)
	if len(first.Items) != 60 || len(first.Disputed) != 0 {
		t.Fatalf("first read: %d items, %d marks", len(first.Items), len(first.Disputed))
	}
	w := call(t, g.srv, "POST", "/v1/objections", tok, map[string]any{"dataset": "health/visits",
		"record_id": "V41", "field": "diagnosis", "claim": "not this diagnosis"})
	if w.Code != http.StatusCreated {
		t.Fatalf("objection: %d %s", w.Code, w.Body)
	}
	if err := g.srv.grants.refresh(context.Background(), g.store, g.now()); err != nil {
		t.Fatal(err)
	}
	second := g.read(t, tok)
	if len(second.Disputed) != 1 || second.Disputed[0].Item != 41 || second.Disputed[0].RecordID != "V41" {
		t.Errorf("second read's marks %+v, want V41 at item 41", second.Disputed)
	}

	var events []audit.Event
	var ids []string
	for rec, err := range audit.Scan(context.Background(), g.dirs[0], audit.Query{Action: "read"}) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, rec.Event)
		if rec.Phase == audit.PhaseOutcome {
			ids = append(ids, rec.RequestID)
		}
	}
	if len(ids) != 2 {
		t.Fatalf("%d releases in the trail, want 2", len(ids))
	}
	for _, id := range ids {
		units, records, parts := namesOf(t, events, id)
		if len(units) != 30 || len(records) != 60 || parts < 10 {
			t.Errorf("release %s names %d people and %d records in %d names records; want 30, 60 and many", id, len(units), len(records), parts)
		}
	}
	if _, err := audit.Verify(context.Background(), g.dirs[0], audit.VerifyOptions{}); err != nil {
		t.Fatalf("the trail does not verify: %v", err)
	}

	found := func(idx usage.Index) map[string][]string {
		out := map[string][]string{}
		for i := range 30 {
			p := fmt.Sprintf("P%03d", i)
			rels, err := idx.ByUnit(context.Background(), g.srv.hasher.Unit(p), time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rels {
				out[p] = append(out[p], r.RequestID)
			}
		}
		for i := range 60 {
			v := fmt.Sprint("V", i)
			rels, err := idx.ByRecord(context.Background(), "health/visits", g.srv.hasher.Record("health/visits", v))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rels {
				out[v] = append(out[v], r.RequestID)
			}
		}
		return out
	}
	live := found(g.idx)
	for _, key := range slices.Sorted(maps.Keys(live)) {
		if !slices.Equal(live[key], ids) {
			t.Errorf("the index finds %s in %v, want each release once: %v", key, live[key], ids)
		}
	}
	if len(live) != 90 {
		t.Errorf("the index finds %d people and records, want 90", len(live))
	}
	// The auditor's answer lists each release once.
	w = call(t, g.srv, "GET", "/audit/v1/usage?subject=P007", g.token(t, "audrey", "", []string{"auditor"}), nil)
	var answer struct {
		Releases []struct {
			RequestID string `json:"request_id"`
			Rows      int    `json:"rows"`
		} `json:"releases"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &answer) != nil {
		t.Fatalf("auditor's usage: %d %s", w.Code, w.Body)
	}
	var got []string
	for _, r := range answer.Releases {
		got = append(got, r.RequestID)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("P007's usage lists %v, want %v", got, ids)
	}

	rebuilt, err := usage.OpenBolt(filepath.Join(t.TempDir(), "rebuilt.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close()
	if _, err := usage.Rebuild(context.Background(), g.dirs[0], rebuilt, ""); err != nil {
		t.Fatal(err)
	}
	if again := found(rebuilt); !maps.EqualFunc(again, live, slices.Equal) {
		t.Errorf("rebuilt from the trail, the index answers otherwise")
	}
}

// The attack on a large release's names from the trail's side: the trail
// takes the decision record, then refuses a names record (full, or
// failing). The release is not made — a JSON error, none of the records
// — and its outcome says it failed, so no release escapes the usage of
// the people it would have held.
func TestALargeReleaseWhoseNamesTheTrailRefusesReleasesNothing(t *testing.T) {
	smallNames(t, 4)
	g := newKGateway(t)
	g.audit.beginFail, g.audit.failPhase = errors.New("the disk is full"), audit.PhaseNames
	w := g.get(t, "/v1/health/visits?page_size=100", g.token(t, "org-a", "kreader"))
	var body struct {
		Error *struct{ Code string }
		Items []any
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusServiceUnavailable ||
		body.Error == nil || body.Error.Code == "" || body.Items != nil {
		t.Fatalf("status %d, want 503 and a JSON error, nothing released: %.300s", w.Code, w.Body.Bytes())
	}
	id := w.Header().Get("X-Request-Id")
	var phases []string
	for _, ev := range g.audit.events {
		if ev.RequestID == id {
			phases = append(phases, ev.Phase+":"+ev.Decision)
		}
	}
	if !slices.Equal(phases, []string{"decision:allow", "outcome:error"}) {
		t.Errorf("the trail holds %v of the release, want its decision and a failed outcome", phases)
	}
}

// The attack on the spill: the directory the names spill to is gone (a
// spool directory removed under a running gateway, a full disk). The tap
// says so, whether the write fails while records pass or when the names
// are read back, and hands no names record on: the release fails rather
// than name fewer people than it held.
func TestANameSpillThatCannotBeWrittenFailsTheRelease(t *testing.T) {
	h, err := audit.NewHasher([]byte("a key of the tap's, of 32 bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{100, 5000} { // within bufio's 64 KiB, and past it
		tap := &releaseTap{hasher: h, dataset: "health/visits", unit: 0, id: 1, hashRecords: true,
			byUnit: map[string]int32{}, byRecord: map[string]int32{}, maxHeld: 4,
			spillLimit: 64, spillDir: filepath.Join(t.TempDir(), "gone")}
		for i := range n {
			tap.see([]anonymize.Value{
				{Raw: fmt.Appendf(nil, `"P%d"`, i%7), Kind: anonymize.String},
				{Raw: fmt.Appendf(nil, `"V%d"`, i), Kind: anonymize.String},
			})
		}
		parts := 0
		rel, marks, err := tap.result(nil, func(*audit.Released) error { parts++; return nil })
		if err == nil || !strings.Contains(err.Error(), "spilling names") || rel != nil || marks != nil || parts != 0 {
			t.Errorf("%d records: result %v, %v, %d names records, error %v; want only the spill's error", n, rel, marks, parts, err)
		}
		tap.spill.Close()
	}
}
