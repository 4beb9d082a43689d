package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/usage"
	"github.com/sluicegw/sluice/webhook"
)

// usageGateway is a gateway with the shipped policies over a visits
// upstream of several patients, each replica with a real trail on disk,
// over a real usage index and a hub.
type usageGateway struct {
	srv    *Server // the first replica
	srvs   []*Server
	dirs   []string // each replica's trail
	secret []byte
	cfg    *Config
	set    *policy.Set
	idx    usage.Index
	store  hub.Store
	// visits are the upstream's records, by visit_id.
	visits []map[string]any
	// clock, when set, is the replicas' clock.
	clock atomic.Pointer[time.Time]
}

// now is the replicas' clock.
func (g *usageGateway) now() time.Time {
	if c := g.clock.Load(); c != nil {
		return *c
	}
	return time.Now()
}

// The patients of usageVisits: V1 and V3 are the first's, V2 the second's.
const (
	patientA = "110105199001011234"
	patientB = "110105198502023456"
)

var usageVisits = []map[string]any{
	{"visit_id": "V1", "patient_id": patientA, "patient_name": "张三", "district": "朝阳区", "hospital": "朝阳医院",
		"diagnosis": "I10", "visit_date": "2026-03-17", "cost": 345},
	{"visit_id": "V2", "patient_id": patientB, "patient_name": "李四", "district": "海淀区", "hospital": "海淀医院",
		"diagnosis": "J45", "visit_date": "2026-04-02", "cost": 120},
	{"visit_id": "V3", "patient_id": patientA, "patient_name": "张三", "district": "朝阳区", "hospital": "朝阳医院",
		"diagnosis": "E11", "visit_date": "2026-05-09", "cost": 80},
}

// newUsageGateway is one gateway, its usage index a bbolt file in its
// trail's directory, its hub in memory.
func newUsageGateway(t testing.TB) *usageGateway {
	t.Helper()
	g := newUsageFixture(t, nil)
	b, err := usage.OpenBolt(filepath.Join(g.cfg.Path(g.cfg.Audit.Dir), UsageIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	g.idx, g.store = b, hub.NewMemory()
	g.startReplicas(t, 1)
	return g
}

// newUsageFixture writes the configuration over a visits upstream
// (usageVisits, or upstream when set), with extra files (name, content,
// ...; "sluice.yaml" is appended to the configuration); no replica runs
// yet.
func newUsageFixture(t testing.TB, upstream http.HandlerFunc, extra ...string) *usageGateway {
	t.Helper()
	g := &usageGateway{secret: make([]byte, 32), visits: usageVisits}
	rand.Read(g.secret)
	if upstream == nil {
		upstream = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if id, ok := strings.CutPrefix(r.URL.Path, "/visits/"); ok {
				for _, v := range g.visits {
					if v["visit_id"] == id {
						json.NewEncoder(w).Encode(map[string]any{"items": []any{v}})
						return
					}
				}
				http.NotFound(w, r)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"items": g.visits, "page": 1, "page_size": 20})
		}
	}
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	policies, err := filepath.Abs("../policies")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"hs.key": g.secret}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i] != "sluice.yaml" {
			files[extra[i]] = []byte(extra[i+1])
		}
	}
	files["sluice.yaml"] = []byte(strings.Replace(hsHealth(up.URL), "policy: {dir: policies}", "policy: {dir: "+policies+"}", 1) + `      - name: visits
        path: /visits
        id_field: visit_id
        privacy_unit: patient_id
        filters: {district: district}
        fields:
          visit_id: {type: string, level: L2}
          patient_id: {type: id_cn, level: L4}
          patient_name: {type: name_cn, level: L4}
          district: {type: string, level: L1}
          hospital: {type: string, level: L1}
          diagnosis: {type: icd10, level: L3}
          visit_date: {type: date, level: L3}
          cost: {type: integer, level: L2}
` + yamlOf(extra))
	g.cfg, g.set = loadFixture(t, files)
	return g
}

// yamlOf is the configuration extra adds: its "sluice.yaml" entry.
func yamlOf(extra []string) string {
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i] == "sluice.yaml" {
			return extra[i+1]
		}
	}
	return ""
}

// startReplicas starts n gateways over g's configuration, index and hub,
// each with a trail of its own (replicas r0, r1, ... when n > 1).
func (g *usageGateway) startReplicas(t testing.TB, n int) {
	t.Helper()
	for i := range n {
		cfg := *g.cfg
		if n > 1 {
			cfg.Audit.Dir = filepath.Join(t.TempDir(), "audit")
			cfg.Audit.Replica = fmt.Sprintf("r%d", i)
		}
		if tt, ok := t.(*testing.T); ok {
			specTests.Store(&cfg, tt) // its answers are checked against openapi.json too
		}
		dir := cfg.Path(cfg.Audit.Dir)
		trail, err := audit.Open(dir, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { trail.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		srv, err := New(ctx, &cfg, Deps{Audit: trail, Policies: policy.NewEngine(g.set), Logger: slog.New(slog.DiscardHandler),
			Hub: g.store, Usage: g.idx, Now: g.now})
		if err != nil {
			t.Fatal(err)
		}
		g.srvs, g.dirs = append(g.srvs, srv), append(g.dirs, dir)
	}
	g.srv = g.srvs[0]
}

func (g *usageGateway) token(t testing.TB, sub, dept string, roles []string, claims ...any) string {
	t.Helper()
	c := jwt.MapClaims{"iss": "test-idp", "aud": "sluice", "sub": sub, "roles": roles,
		"iat": g.now().Add(-time.Hour).Unix(), "exp": g.now().Add(time.Hour).Unix()}
	if dept != "" {
		c["dept"] = dept
	}
	for i := 0; i+1 < len(claims); i += 2 {
		c[claims[i].(string)] = claims[i+1]
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// granted has dept's researcher ask for health/visits with fields
// (default visit_id, district and diagnosis), and the health steward
// approve it as asked; it returns the researcher's token.
func (g *usageGateway) granted(t testing.TB, sub, dept string, fields ...string) string {
	t.Helper()
	tok := g.token(t, sub, dept, []string{"researcher"})
	steward := g.token(t, "sam", "health", []string{"steward"})
	if fields == nil {
		fields = []string{"visit_id", "district", "diagnosis"}
	}
	keep := map[string]any{}
	for _, f := range fields {
		keep[f] = "keep"
	}
	in := map[string]any{"dataset": "health/visits", "fields": fields,
		"purpose": "research", "legal_basis": "Statistics Law art. 7", "justification": "cohort study",
		"valid_until": g.now().Add(90 * 24 * time.Hour).UTC().Format(time.RFC3339)}
	w := call(t, g.srv, "POST", "/v1/requests", tok, in)
	var req hub.Request
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &req) != nil {
		t.Fatalf("request: %d %s", w.Code, w.Body)
	}
	w = call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", steward,
		map[string]any{"decision": "approve", "conditions": map[string]any{"fields": keep}})
	if w.Code != http.StatusOK {
		t.Fatalf("approval: %d %s", w.Code, w.Body)
	}
	for _, srv := range g.srvs {
		if err := srv.grants.refresh(context.Background(), g.store, g.now()); err != nil {
			t.Fatal(err)
		}
	}
	return tok
}

// recordsPage is a records answer with its disputed marks.
type recordsPage struct {
	Items    []map[string]any `json:"items"`
	Disputed []disputedMark   `json:"disputed"`
}

func (g *usageGateway) read(t *testing.T, tok string) recordsPage {
	t.Helper()
	w := call(t, g.srv, "GET", "/v1/health/visits", tok, nil, PurposeHeader, "research")
	if w.Code != http.StatusOK {
		t.Fatalf("read: %d %s", w.Code, w.Body)
	}
	var p recordsPage
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// The whole path of an objection: two departments receive a record; one
// objects to it; the record is marked disputed in both departments' next
// releases; the owning steward accepts and corrects it; both departments
// get a notice, acknowledge it, and the objection shows who did. The
// claim and reasons never reach the trail in clear, and the trail records
// each step.
func TestAnObjectionReachesEveryDepartmentThatReceivedTheRecord(t *testing.T) {
	g := newUsageGateway(t)
	rita := g.granted(t, "rita", "stats-bureau")
	pete := g.granted(t, "pete", "planning")
	steward := g.token(t, "sam", "health", []string{"steward"})
	for _, tok := range []string{rita, pete} {
		if p := g.read(t, tok); len(p.Items) != 3 || p.Disputed != nil {
			t.Fatalf("first read: %+v", p)
		}
	}

	// A department that never received the record cannot object to it.
	never := g.token(t, "nora", "transport", []string{"researcher"})
	claim := map[string]any{"dataset": "health/visits", "record_id": "V1", "field": "diagnosis",
		"claim": "the patient was diagnosed with I15, not I10 (secret detail)"}
	if w := call(t, g.srv, "POST", "/v1/objections", never, claim); w.Code != http.StatusForbidden {
		t.Fatalf("an objection by a department that never received the record: %d %s", w.Code, w.Body)
	}
	o := decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections", rita, claim), http.StatusCreated)
	if o.State != hub.Filed || o.Owner != "health" || o.Filer.As != hub.AsRecipient || o.Claim == "" {
		t.Fatalf("filed %+v", o)
	}

	// Marked in both departments' next releases, by position and by id
	// (they receive visit_id in clear).
	for _, tok := range []string{rita, pete} {
		p := g.read(t, tok)
		want := []disputedMark{{Item: 0, RecordID: "V1", Field: "diagnosis", Objection: o.ID}}
		if !slices.Equal(p.Disputed, want) {
			t.Errorf("disputed %+v, want %+v", p.Disputed, want)
		}
	}
	// The release's outcome record counts them.
	if n := g.lastRelease(t).Released.Disputed; n != 1 {
		t.Errorf("the outcome record counts %d disputed records, want 1", n)
	}

	// The filer and the steward read it with its claim; the other
	// department does not see it at all.
	if w := call(t, g.srv, "GET", "/v1/objections/"+o.ID, pete, nil); w.Code != http.StatusNotFound {
		t.Errorf("another department reads the objection: %d", w.Code)
	}
	got := decodeAs[hub.Objection](t, call(t, g.srv, "GET", "/v1/objections/"+o.ID, steward, nil), http.StatusOK)
	if got.Claim != claim["claim"] {
		t.Errorf("the steward reads claim %q", got.Claim)
	}
	// The filer never decides; a correction needs a reason.
	if w := call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", rita, map[string]any{"decision": "accept"}); w.Code != http.StatusForbidden {
		t.Errorf("the filer decided: %d %s", w.Code, w.Body)
	}
	decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", steward, map[string]any{"decision": "accept"}), http.StatusOK)
	if w := call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", steward, map[string]any{"decision": "corrected"}); w.Code != http.StatusBadRequest {
		t.Errorf("a correction without a reason: %d %s", w.Code, w.Body)
	}
	done := decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", steward,
		map[string]any{"decision": "corrected", "reason": "record fixed to I15"}), http.StatusOK)
	slices.Sort(done.Recipients)
	if done.State != hub.Corrected || !slices.Equal(done.Recipients, []string{"planning", "stats-bureau"}) {
		t.Fatalf("corrected %+v", done)
	}
	// No longer disputed.
	if p := g.read(t, rita); p.Disputed != nil {
		t.Errorf("a corrected record is still marked: %+v", p.Disputed)
	}

	// Each department has one notice, acknowledges it once.
	for _, tok := range []string{rita, pete} {
		ns := decodeAs[struct{ Notices []hub.Notice }](t, call(t, g.srv, "GET", "/v1/notices", tok, nil), http.StatusOK)
		if len(ns.Notices) != 1 || ns.Notices[0].RecordID != "V1" || ns.Notices[0].State != hub.Pending {
			t.Fatalf("notices %+v", ns.Notices)
		}
		id := ns.Notices[0].ID
		if w := call(t, g.srv, "POST", "/v1/notices/"+id+"/ack", steward, nil); w.Code != http.StatusNotFound {
			t.Errorf("another department acknowledged a notice: %d", w.Code)
		}
		decodeAs[hub.Notice](t, call(t, g.srv, "POST", "/v1/notices/"+id+"/ack", tok, nil), http.StatusOK)
		if w := call(t, g.srv, "POST", "/v1/notices/"+id+"/ack", tok, nil); w.Code != http.StatusConflict {
			t.Errorf("a second acknowledgement: %d", w.Code)
		}
	}
	got = decodeAs[hub.Objection](t, call(t, g.srv, "GET", "/v1/objections/"+o.ID, steward, nil), http.StatusOK)
	var acked []string
	for _, a := range got.Acks {
		acked = append(acked, a.Dept)
	}
	slices.Sort(acked)
	if !slices.Equal(acked, []string{"planning", "stats-bureau"}) {
		t.Errorf("acknowledged by %v", acked)
	}

	// The trail: each step, and no free text in clear.
	raw := g.trailBytes(t)
	for _, secret := range []string{"secret detail", "record fixed", patientA, patientB} {
		if strings.Contains(raw, secret) {
			t.Errorf("the trail holds %q in clear", secret)
		}
	}
	for _, step := range []string{`"action":"objection.file"`, `"action":"objection.decide"`, `"action":"notice.notify"`, `"action":"notice.ack"`} {
		if !strings.Contains(raw, step) {
			t.Errorf("the trail has no %s", step)
		}
	}
}

// lastRelease is the newest release outcome record in g's trail.
func (g *usageGateway) lastRelease(t *testing.T) audit.Event {
	t.Helper()
	for rec, err := range audit.Scan(context.Background(), g.dirs[0], audit.Query{Action: "read", Newest: true}) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Phase == audit.PhaseOutcome {
			return rec.Event
		}
	}
	t.Fatal("no release in the trail")
	return audit.Event{}
}

// trailBytes are the trail's segments, concatenated.
func (g *usageGateway) trailBytes(t *testing.T) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(g.dirs[0], "trail-*.jsonl"))
	var b strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

// A citizen objects to a record about them, and to no other; and asks
// why a release of their data was made, which goes to the department
// that received it.
func TestACitizenObjectsToTheirOwnRecordsAndAsksWhy(t *testing.T) {
	g := newUsageGateway(t)
	rita := g.granted(t, "rita", "stats-bureau")
	g.read(t, rita)
	zhang := g.token(t, "zhang", "", []string{"citizen"}, "id_number", patientA)
	li := g.token(t, "li", "", []string{"citizen"}, "id_number", patientB)

	in := map[string]any{"dataset": "health/visits", "record_id": "V3", "claim": "I was never at this hospital"}
	o := decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections", zhang, in), http.StatusCreated)
	if o.Filer.As != hub.AsDataSubject || o.Filer.Dept != "" {
		t.Errorf("filed as %+v", o.Filer)
	}
	if w := call(t, g.srv, "POST", "/v1/objections", li, in); w.Code != http.StatusForbidden {
		t.Errorf("a citizen objected to another's record: %d %s", w.Code, w.Body)
	}
	in["record_id"] = "V404"
	if w := call(t, g.srv, "POST", "/v1/objections", zhang, in); w.Code != http.StatusForbidden {
		t.Errorf("an objection to a record the department does not hold: %d %s", w.Code, w.Body)
	}

	rep := decodeAs[usageReport](t, call(t, g.srv, "GET", "/v1/me/usage", zhang, nil), http.StatusOK)
	if len(rep.Releases) != 1 || rep.Releases[0].Dept != "stats-bureau" || rep.Releases[0].Subject != "" || !rep.Trail.Verified {
		t.Fatalf("usage %+v", rep)
	}
	why := decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections", zhang,
		map[string]any{"release": rep.Releases[0].RequestID, "claim": "why did a statistics bureau need my diagnosis?"}), http.StatusCreated)
	if why.Owner != "stats-bureau" || why.Release != rep.Releases[0].RequestID || why.Dataset != "health/visits" {
		t.Errorf("asked %+v", why)
	}
	// Only about a release that held their data.
	wang := g.token(t, "wang", "", []string{"citizen"}, "id_number", "110105197001010000")
	if w := call(t, g.srv, "POST", "/v1/objections", wang, map[string]any{"release": rep.Releases[0].RequestID, "claim": "why?"}); w.Code != http.StatusNotFound {
		t.Errorf("asked about a release of another's data: %d %s", w.Code, w.Body)
	}
	// The department that received it answers; its steward sees it.
	bureau := g.token(t, "bo", "stats-bureau", []string{"steward"})
	decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections/"+why.ID+"/decision", bureau, map[string]any{"decision": "accept"}), http.StatusOK)
	mine := decodeAs[struct{ Objections []hub.Objection }](t, call(t, g.srv, "GET", "/v1/objections", zhang, nil), http.StatusOK)
	if len(mine.Objections) != 2 {
		t.Errorf("the citizen sees %d objections, want their 2", len(mine.Objections))
	}
}

// With replicas the usage index is shared (Redis): releases made on any
// of three replicas, each with its own trail, are found by every one,
// and so is who received a record (an objection filed on one replica
// for a release made on another).
func TestEveryReplicaAnswersForTheReleasesOfAll(t *testing.T) {
	srv := redistest.Start(t)
	g := newUsageFixture(t, nil)
	idx, err := usage.NewRedis(srv.Client(), "usage-replicas")
	if err != nil {
		t.Fatal(err)
	}
	g.idx, g.store = idx, hub.NewMemory()
	g.startReplicas(t, 3)
	rita := g.granted(t, "rita", "stats-bureau")
	var made []string
	for i, srv := range g.srvs {
		w := call(t, srv, "GET", "/v1/health/visits", rita, nil, PurposeHeader, "research")
		if w.Code != http.StatusOK {
			t.Fatalf("replica %d: %d %s", i, w.Code, w.Body)
		}
		made = append(made, w.Header().Get("X-Request-Id"))
	}
	// Each replica adds its releases to the shared index as they are
	// made, and answers for its own at once; another's within moments.
	zhang := g.token(t, "zhang", "", []string{"citizen"}, "id_number", patientA)
	for i, srv := range g.srvs {
		var got []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			rep := decodeAs[usageReport](t, call(t, srv, "GET", "/v1/me/usage", zhang, nil), http.StatusOK)
			got = got[:0]
			for _, r := range rep.Releases {
				got = append(got, r.RequestID)
			}
			if slices.Equal(got, made) || time.Now().After(deadline) {
				break
			}
		}
		if !slices.Equal(got, made) {
			t.Errorf("replica %d answers %v, want the releases of all three %v", i, got, made)
		}
	}
	// Filed on the third replica, about a record released by all three.
	o := decodeAs[hub.Objection](t, call(t, g.srvs[2], "POST", "/v1/objections", rita,
		map[string]any{"dataset": "health/visits", "record_id": "V2", "claim": "wrong district"}), http.StatusCreated)
	if o.State != hub.Filed {
		t.Errorf("filed %+v", o)
	}
}

// A correction is pushed to a department's webhook as well: signed with
// its secret (the receiver's webhook.Verify accepts it), retried when the
// department's service fails, and every attempt is in the trail.
func TestACorrectionIsPushedToTheDepartmentsWebhookSignedAndRetried(t *testing.T) {
	secret := []byte(strings.Repeat("s", 40))
	got := make(chan []byte, 4)
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // down at first
			return
		}
		if err := webhook.Verify(secret, r.Header, body, time.Now(), 0); err != nil || r.Header.Get("Authorization") != "" {
			t.Errorf("delivery: %v, Authorization %q", err, r.Header.Get("Authorization"))
		}
		got <- body
	}))
	defer hook.Close()
	g := newUsageFixture(t, nil, "wh.key", string(secret), "sluice.yaml", `hub:
  webhooks:
    - {dept: stats-bureau, url: "`+hook.URL+`", secret_file: wh.key}
`)
	b, err := usage.OpenBolt(filepath.Join(g.cfg.Path(g.cfg.Audit.Dir), UsageIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	g.idx, g.store = b, hub.NewMemory()
	g.startReplicas(t, 1)
	g.srv.webhooks.sender = webhook.New(webhook.Options{Record: g.srv.recordDelivery, Backoff: func(int) time.Duration { return time.Millisecond }})
	rita := g.granted(t, "rita", "stats-bureau")
	steward := g.token(t, "sam", "health", []string{"steward"})
	g.read(t, rita)
	o := decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections", rita,
		map[string]any{"dataset": "health/visits", "record_id": "V2", "claim": "wrong district"}), http.StatusCreated)
	decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", steward, map[string]any{"decision": "accept"}), http.StatusOK)
	decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", steward,
		map[string]any{"decision": "corrected", "reason": "district fixed"}), http.StatusOK)
	var ev struct {
		Type   string
		Notice hub.Notice
	}
	select {
	case body := <-got:
		if err := json.Unmarshal(body, &ev); err != nil || ev.Type != "notice.sent" || ev.Notice.RecordID != "V2" || ev.Notice.Dept != "stats-bureau" {
			t.Fatalf("pushed %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		raw := g.trailBytes(t)
		if strings.Count(raw, `"action":"notice.deliver"`) == 2 && strings.Contains(raw, `"object":"`+ev.Notice.ID+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trail does not record both attempts:\n%s", raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A hostile or broken department cannot make a release escape the usage
// index: a record without its privacy unit, or naming it twice (a decoy
// beside the person), is not released at all.
func TestARecordWhoseOwnerCannotBeToldIsNotReleased(t *testing.T) {
	for name, body := range map[string]string{
		"no privacy unit": `{"items":[{"visit_id":"V1","district":"朝阳区","diagnosis":"I10"}]}`,
		"null unit":       `{"items":[{"visit_id":"V1","patient_id":null,"district":"朝阳区"}]}`,
		"two units":       `{"items":[{"visit_id":"V1","patient_id":"` + patientA + `","patient_id":"110105190001010000","district":"朝阳区"}]}`,
		"escaped repeat":  `{"items":[{"visit_id":"V1","patient_id":"` + patientA + `","patient\u005fid":"110105190001010000"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			g := newUsageFixture(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, body)
			})
			b, err := usage.OpenBolt(filepath.Join(g.cfg.Path(g.cfg.Audit.Dir), UsageIndexFile))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			g.idx, g.store = b, hub.NewMemory()
			g.startReplicas(t, 1)
			rita := g.granted(t, "rita", "stats-bureau")
			w := call(t, g.srv, "GET", "/v1/health/visits", rita, nil, PurposeHeader, "research")
			if w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), "V1") {
				t.Fatalf("released %d %s, want 502 and nothing", w.Code, w.Body)
			}
			if rel := g.lastRelease(t); rel.Status != http.StatusBadGateway || rel.Released != nil {
				t.Errorf("the trail says %d, released %+v", rel.Status, rel.Released)
			}
		})
	}
}

// A notice tells a department no more of the record than it was given:
// one that received the records without their ids learns of the
// correction by the releases that carried the record, not by its id.
func TestANoticeNamesTheRecordOnlyToThoseWhoReceivedItsID(t *testing.T) {
	g := newUsageGateway(t)
	rita := g.granted(t, "rita", "stats-bureau")
	pete := g.granted(t, "pete", "planning", "district", "diagnosis")
	steward := g.token(t, "sam", "health", []string{"steward"})
	g.read(t, rita)
	w := call(t, g.srv, "GET", "/v1/health/visits", pete, nil, PurposeHeader, "research")
	peteRead := w.Header().Get("X-Request-Id")
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "V1") {
		t.Fatalf("planning's read: %d %s", w.Code, w.Body)
	}
	// Its marks name the record by position only.
	o := decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections", rita,
		map[string]any{"dataset": "health/visits", "record_id": "V1", "claim": "wrong"}), http.StatusCreated)
	if p := g.read(t, pete); p.Disputed == nil || p.Disputed[0].RecordID != "" {
		t.Errorf("planning's marks %+v: want the record by position only", p.Disputed)
	}
	decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", steward, map[string]any{"decision": "accept"}), http.StatusOK)
	decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", steward,
		map[string]any{"decision": "corrected", "reason": "fixed"}), http.StatusOK)
	type view struct {
		RecordID string `json:"record_id"`
		Releases []string
	}
	got := decodeAs[struct{ Notices []view }](t, call(t, g.srv, "GET", "/v1/notices", pete, nil), http.StatusOK)
	if len(got.Notices) != 1 || got.Notices[0].RecordID != "" || !slices.Contains(got.Notices[0].Releases, peteRead) {
		t.Errorf("planning's notice %+v: want no record id, and its release %s", got.Notices, peteRead)
	}
	got = decodeAs[struct{ Notices []view }](t, call(t, g.srv, "GET", "/v1/notices", rita, nil), http.StatusOK)
	if len(got.Notices) != 1 || got.Notices[0].RecordID != "V1" {
		t.Errorf("the bureau's notice %+v: want the record by its id", got.Notices)
	}
}

// An objection nobody accepts in time goes to the coordinator: the
// gateway's clock escalates it (a record of the trail, by the system),
// and the coordinator then decides it as the steward would have.
func TestAnOverdueObjectionIsEscalatedToTheCoordinator(t *testing.T) {
	g := newUsageGateway(t)
	rita := g.granted(t, "rita", "stats-bureau")
	g.read(t, rita)
	o := decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections", rita,
		map[string]any{"dataset": "health/visits", "record_id": "V2", "claim": "wrong district"}), http.StatusCreated)
	cora := g.token(t, "cora", "", []string{"coordinator"})
	if w := call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", cora, map[string]any{"decision": "accept"}); w.Code != http.StatusForbidden && w.Code != http.StatusConflict {
		t.Fatalf("the coordinator decided before the objection was overdue: %d %s", w.Code, w.Body)
	}
	late := o.Due.Add(time.Hour)
	g.clock.Store(&late)
	g.srv.sweep(context.Background())
	cora = g.token(t, "cora", "", []string{"coordinator"})
	got := decodeAs[hub.Objection](t, call(t, g.srv, "GET", "/v1/objections/"+o.ID, cora, nil), http.StatusOK)
	if got.State != hub.Escalated {
		t.Fatalf("overdue objection is %s, want escalated", got.State)
	}
	decodeAs[hub.Objection](t, call(t, g.srv, "POST", "/v1/objections/"+o.ID+"/decision", cora, map[string]any{"decision": "accept"}), http.StatusOK)
	if !strings.Contains(g.trailBytes(t), `"action":"objection.escalate"`) {
		t.Error("the escalation is not in the trail")
	}
}

// Who may read whose usage: a citizen their own (found by the token's
// id_number, never by a parameter), an auditor anyone's by subject, and no
// one else; the question never reaches the trail in clear.
func TestUsageIsReadByThePersonOrAnAuditorOnly(t *testing.T) {
	g := newUsageGateway(t)
	rita := g.granted(t, "rita", "stats-bureau")
	g.read(t, rita)
	zhang := g.token(t, "zhang", "", []string{"citizen"}, "id_number", patientA)
	auditor := g.token(t, "audrey", "", []string{"auditor"})
	for name, tc := range map[string]struct {
		path, tok string
		status    int
	}{
		"a department's officer":           {"/v1/me/usage", rita, http.StatusForbidden},
		"a citizen token without a person": {"/v1/me/usage", g.token(t, "x", "", []string{"citizen"}), http.StatusForbidden},
		"someone else's, by parameter":     {"/v1/me/usage?subject=" + patientB, zhang, http.StatusBadRequest},
		"a period backwards":               {"/v1/me/usage?since=2026-12-01&until=2026-11-01", zhang, http.StatusBadRequest},
		"a malformed time":                 {"/v1/me/usage?since=yesterday", zhang, http.StatusBadRequest},
		"the auditors' route":              {"/audit/v1/usage?subject=" + patientA, zhang, http.StatusForbidden},
		"an auditor without a subject":     {"/audit/v1/usage", auditor, http.StatusBadRequest},
	} {
		if w := call(t, g.srv, "GET", tc.path, tc.tok, nil); w.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", name, w.Code, w.Body, tc.status)
		}
	}
	rep := decodeAs[usageReport](t, call(t, g.srv, "GET", "/audit/v1/usage?subject="+patientA, auditor, nil), http.StatusOK)
	if len(rep.Releases) != 1 || rep.Releases[0].Subject != "rita" {
		t.Errorf("the auditor's answer %+v: want the release, naming who asked", rep.Releases)
	}
	if rep := decodeAs[usageReport](t, call(t, g.srv, "GET", "/v1/me/usage?since=2000-01-01&until=2001-01-01", zhang, nil), http.StatusOK); len(rep.Releases) != 0 {
		t.Errorf("a period before any release lists %d", len(rep.Releases))
	}
	if strings.Contains(g.trailBytes(t), patientA) {
		t.Error("the trail holds the person's ID number in clear")
	}
}
