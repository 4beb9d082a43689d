package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/policy"
)

// hubGateway is a gateway with the shipped policies over one visits
// upstream, its hub kept in store (shared by replicas made with
// replica).
type hubGateway struct {
	srv    *Server
	secret []byte
	audit  *orderAudit
	store  hub.Store
	cfg    *Config
	set    *policy.Set
	// clock, when set, is the replicas' clock.
	clock atomic.Pointer[time.Time]
}

const hubVisits = `{"items":[{"visit_id":"V1","patient_id":"110105199001011234","patient_name":"张三","district":"朝阳区",` +
	`"hospital":"朝阳医院","diagnosis":"I10","visit_date":"2026-03-17","cost":345}],"page":1,"page_size":20}`

func newHubGateway(t testing.TB, sharing string) *hubGateway {
	return newHubGatewayOver(t, sharing, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(hubVisits))
	})
}

// newHubGatewayOver is newHubGateway over another visits upstream.
func newHubGatewayOver(t testing.TB, sharing string, upstream http.HandlerFunc) *hubGateway {
	t.Helper()
	g := &hubGateway{secret: make([]byte, 32), audit: &orderAudit{}, store: hub.NewMemory()}
	rand.Read(g.secret)
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	policies, err := filepath.Abs("../policies")
	if err != nil {
		t.Fatal(err)
	}
	g.cfg, g.set = loadFixture(t, map[string][]byte{"hs.key": g.secret,
		"sluice.yaml": []byte(strings.Replace(hsHealth(up.URL), "policy: {dir: policies}", "policy: {dir: "+policies+"}", 1) + `      - name: visits
        path: /visits
        privacy_unit: patient_id
        sharing: ` + sharing + `
        basis: "Health records are not shared outside the health department (a made-up rule)"
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
`)})
	g.srv = g.replica(t)
	return g
}

// replica is another gateway over the same configuration, trail and hub
// store.
func (g *hubGateway) replica(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	now := func() time.Time {
		if c := g.clock.Load(); c != nil {
			return *c
		}
		return time.Now()
	}
	srv, err := New(ctx, g.cfg, Deps{Audit: g.audit, Policies: policy.NewEngine(g.set), Logger: slog.New(slog.DiscardHandler),
		Hub: g.store, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func (g *hubGateway) token(t testing.TB, sub, dept string, roles ...string) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": "test-idp", "aud": "sluice", "sub": sub, "roles": roles,
		"iat": g.tokenTime().Add(-400 * 24 * time.Hour).Unix(), "exp": g.tokenTime().Add(400 * 24 * time.Hour).Unix()}
	if dept != "" {
		claims["dept"] = dept
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call sends method path with body (JSON) as token to srv.
func call(t testing.TB, srv *Server, method, path, token string, body any, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r := httptest.NewRequest(method, path, rd)
	r.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	return w
}

func decodeAs[T any](t *testing.T, w *httptest.ResponseRecorder, status int) T {
	t.Helper()
	var v T
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body: %v: %s", err, w.Body)
	}
	return v
}

func (g *hubGateway) events(object string) []audit.Event {
	g.audit.mu.Lock()
	defer g.audit.mu.Unlock()
	var out []audit.Event
	for _, e := range g.audit.events {
		if e.Object == object || e.Grant == object {
			out = append(out, e)
		}
	}
	return out
}

var visitsRequest = map[string]any{"dataset": "health/visits", "fields": []string{"patient_id", "district", "diagnosis", "visit_date"},
	"purpose": "research", "legal_basis": "Statistics Law art. 7", "justification": "cohort study", "valid_until": "2027-03-31T00:00:00Z"}

// The whole path: a researcher asks, the owning steward approves with
// conditions, the grant is enforced at the gateway exactly as approved
// (the L4 patient ID at its ceiling), every step is in the trail, and a
// revocation stops the next read.
func TestARequestApprovedBecomesAnEnforcedGrant(t *testing.T) {
	g := newHubGateway(t, "conditional")
	rita := g.token(t, "rita", "stats-bureau", "researcher")
	steward := g.token(t, "sam", "health", "steward")
	research := []string{PurposeHeader, "research"}

	if w := call(t, g.srv, "GET", "/v1/health/visits", rita, nil, research...); w.Code != http.StatusForbidden {
		t.Fatalf("before any grant the researcher reads records: %d %s", w.Code, w.Body)
	}
	req := decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests", rita, visitsRequest), http.StatusCreated)
	if req.State != hub.Submitted || !req.Due.After(time.Now()) || req.Owner != "health" {
		t.Fatalf("request %+v", req)
	}
	approval := map[string]any{"decision": "approve", "reason": "within the study's protocol",
		"conditions": map[string]any{"fields": map[string]any{"patient_id": "keep", "district": "keep",
			"visit_date": map[string]any{"op": "generalize", "to": "month"}}, "max_rows": 50}}
	req = decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", steward, approval), http.StatusOK)
	if req.State != hub.Approved || req.Grant == "" {
		t.Fatalf("approved request %+v", req)
	}

	w := call(t, g.srv, "GET", "/v1/health/visits", rita, nil, research...)
	var page struct{ Items []map[string]any }
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &page) != nil || len(page.Items) != 1 {
		t.Fatalf("read under the grant: %d %s", w.Code, w.Body)
	}
	rec := page.Items[0]
	if pid, _ := rec["patient_id"].(string); len(pid) != 32 || rec["district"] != "朝阳区" || rec["visit_date"] != "2026-03" ||
		rec["diagnosis"] != nil || rec["patient_name"] != nil || rec["cost"] != nil {
		t.Errorf("released %v: want the granted fields only, the patient ID pseudonymised (its ceiling), the date to the month", rec)
	}
	evs := g.events(req.Grant)
	var release *audit.Event
	for i := range evs {
		if evs[i].Action == "read" && evs[i].Phase == audit.PhaseOutcome {
			release = &evs[i]
		}
	}
	if release == nil || release.Grant != req.Grant || release.Obligations.MaxRows != 50 {
		t.Fatalf("the release's audit record does not name its grant: %+v", evs)
	}

	// The trail: submit, decide, the grant issued; reasons keyed-hashed.
	var changes []string
	g.audit.mu.Lock()
	all := append([]audit.Event(nil), g.audit.events...)
	g.audit.mu.Unlock()
	for _, e := range all {
		if e.Object != req.ID && e.Object != req.Grant {
			continue
		}
		if e.Change != nil {
			changes = append(changes, e.Action+" "+e.Change.From+"→"+e.Change.To)
		}
		if strings.Contains(e.Reason, "protocol") {
			t.Errorf("a free-text reason in clear in the trail: %q", e.Reason)
		}
	}
	// The grant an approval issues is recorded before the approval's own
	// record, which answers the steward and names the grant.
	want := "request.submit →submitted,grant.issue →active,request.decide submitted→approved"
	if strings.Join(changes, ",") != want {
		t.Errorf("trail changes %q, want %q", strings.Join(changes, ","), want)
	}

	decodeAs[hub.Grant](t, call(t, g.srv, "POST", "/v1/grants/"+req.Grant+"/revoke", steward, map[string]any{"reason": "study ended"}), http.StatusOK)
	if w := call(t, g.srv, "GET", "/v1/health/visits", rita, nil, research...); w.Code != http.StatusForbidden {
		t.Errorf("a revoked grant still releases: %d %s", w.Code, w.Body)
	}
}

func TestNoOneDecidesTheirOwnRequestOrAnotherDepartments(t *testing.T) {
	g := newHubGateway(t, "conditional")
	// A steward of the health department asks for its own department's data.
	sam := g.token(t, "sam", "health", "steward")
	req := decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests", sam, visitsRequest), http.StatusCreated)
	approve := map[string]any{"decision": "approve"}
	if w := call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", sam, approve); w.Code != http.StatusForbidden {
		t.Errorf("self-approval: %d %s", w.Code, w.Body)
	}
	civil := g.token(t, "cid", "civil", "steward")
	if w := call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", civil, approve); w.Code != http.StatusNotFound && w.Code != http.StatusForbidden {
		t.Errorf("another department's steward decided: %d %s", w.Code, w.Body)
	}
	analyst := g.token(t, "alice", "health", "analyst")
	if w := call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", analyst, approve); w.Code != http.StatusForbidden {
		t.Errorf("an analyst decided: %d %s", w.Code, w.Body)
	}
	other := g.token(t, "sue", "health", "steward")
	if w := call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", other, map[string]any{"decision": "reject"}); w.Code != http.StatusBadRequest {
		t.Errorf("a rejection without a reason: %d %s", w.Code, w.Body)
	}
	decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", other, approve), http.StatusOK)
	w := call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", other, map[string]any{"decision": "reject", "reason": "changed my mind"})
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"conflict"`) {
		t.Errorf("deciding a decided request: %d %s", w.Code, w.Body)
	}
	if ev := g.audit.events[len(g.audit.events)-1]; ev.Decision != "deny" || ev.Stage != "state" || ev.Status != http.StatusConflict {
		t.Errorf("the conflict's record %+v", ev)
	}
}

func TestADatasetNotSharedRefusesRequestsWithItsBasis(t *testing.T) {
	g := newHubGateway(t, "none")
	w := call(t, g.srv, "POST", "/v1/requests", g.token(t, "rita", "stats-bureau", "researcher"), visitsRequest)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "not shared outside the health department") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

func TestHubBodiesAreReadStrictly(t *testing.T) {
	g := newHubGateway(t, "conditional")
	rita := g.token(t, "rita", "stats-bureau", "researcher")
	for _, body := range []string{`{"dataset": "health/visits", "bogus": 1}`, `{"dataset": 7}`, `{`, `{} {}`, ``} {
		r := httptest.NewRequest("POST", "/v1/requests", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+rita)
		w := httptest.NewRecorder()
		g.srv.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"bad_request"`) {
			t.Errorf("body %q: %d %s", body, w.Code, w.Body)
		}
	}
}

// A grant suspended on one replica stops releasing on another within a
// second: replicas sharing a memory store, and replicas on one Redis each
// with its own client, as separate processes would be.
func TestAGrantSuspendedOnOneReplicaStopsReleasingOnAnother(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		g := newHubGateway(t, "unconditional") // approved at once, by the system
		endOnOneSeeOnAnother(t, g, g.replica(t), "suspend")
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		store := func() hub.Store {
			h, err := hub.NewRedis(srv.Client(), hub.RedisOptions{Prefix: "t"})
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		g := newHubGateway(t, "unconditional")
		g.store = store()
		g.srv = g.replica(t)
		g.store = store()
		endOnOneSeeOnAnother(t, g, g.replica(t), "revoke")
	})
}

// endOnOneSeeOnAnother: a grant made on g's replica releases on other;
// action (suspend, revoke) on g's stops other's releases within a second.
func endOnOneSeeOnAnother(t *testing.T, g *hubGateway, other *Server, action string) {
	rita := g.token(t, "rita", "stats-bureau", "researcher")
	req := decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests", rita, visitsRequest), http.StatusCreated)
	if req.State != hub.Approved || req.Grant == "" {
		t.Fatalf("unconditional sharing: %+v", req)
	}
	research := []string{PurposeHeader, "research"}
	deadline := time.Now().Add(2 * time.Second)
	for call(t, other, "GET", "/v1/health/visits", rita, nil, research...).Code != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the other replica never released under the new grant")
		}
		time.Sleep(20 * time.Millisecond)
	}
	steward := g.token(t, "sam", "health", "steward")
	decodeAs[hub.Grant](t, call(t, g.srv, "POST", "/v1/grants/"+req.Grant+"/"+action, steward, map[string]any{"reason": "audit"}), http.StatusOK)
	ended := time.Now()
	for call(t, other, "GET", "/v1/health/visits", rita, nil, research...).Code == http.StatusOK {
		if time.Since(ended) > time.Second {
			t.Fatalf("the other replica released under a grant after its %s, a second on", action)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The catalogue shows each dataset's sharing, owner and basis, and how to
// ask for it to a caller who may ask.
func TestTheCatalogueSaysHowToAsk(t *testing.T) {
	g := newHubGateway(t, "conditional")
	var cat struct {
		Datasets []catalogEntry `json:"datasets"`
	}
	w := call(t, g.srv, "GET", "/v1/catalog", g.token(t, "carl", "civil", "caseworker"), nil)
	if err := json.Unmarshal(w.Body.Bytes(), &cat); err != nil || len(cat.Datasets) != 1 {
		t.Fatalf("catalog: %d %s", w.Code, w.Body)
	}
	e := cat.Datasets[0]
	if e.Sharing != "conditional" || e.Owner != "health" || e.Request == nil || e.Request.Href != "/v1/requests" ||
		e.Request.Body["dataset"] != "health/visits" || e.Read.Allowed {
		t.Errorf("entry %+v (request %+v): want health/visits requestable by a caseworker who cannot read it", e, e.Request)
	}
	// The public may not ask: the dataset is not listed for it to ask.
	w = call(t, g.srv, "GET", "/v1/catalog", g.token(t, "pat", "", "public"), nil)
	if strings.Contains(w.Body.String(), `"request"`) {
		t.Errorf("the public is shown how to ask: %s", w.Body)
	}
}

// An unanswered request is escalated by the clock, in the trail as the
// system's act, and the coordinator may then decide it.
func TestAnOverdueRequestIsEscalatedToTheCoordinator(t *testing.T) {
	g := newHubGateway(t, "conditional")
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC) // a Friday
	g.clock.Store(&start)
	rita := g.token(t, "rita", "stats-bureau", "researcher")
	req := decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests", rita, visitsRequest), http.StatusCreated)
	cora := g.token(t, "cora", "", "coordinator")
	if w := call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", cora, map[string]any{"decision": "approve"}); w.Code != http.StatusForbidden && w.Code != http.StatusConflict {
		t.Errorf("the coordinator decided a request not yet overdue: %d %s", w.Code, w.Body)
	}
	g.srv.sweep(context.Background())
	if got := decodeAs[hub.Request](t, call(t, g.srv, "GET", "/v1/requests/"+req.ID, rita, nil), http.StatusOK); got.State != hub.Submitted {
		t.Fatalf("escalated before its due time: %s", got.State)
	}
	late := req.Due.Add(time.Minute)
	g.clock.Store(&late)
	g.srv.sweep(context.Background())
	if got := decodeAs[hub.Request](t, call(t, g.srv, "GET", "/v1/requests/"+req.ID, rita, nil), http.StatusOK); got.State != hub.Escalated {
		t.Fatalf("past its due time: %s, want escalated", got.State)
	}
	var escalation *audit.Event
	for _, e := range g.events(req.ID) {
		if e.Action == "request.escalate" {
			escalation = &e
		}
	}
	if escalation == nil || escalation.Subject != "sluice" || escalation.Change.To != "escalated" {
		t.Errorf("escalation record %+v", escalation)
	}
	decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", cora, map[string]any{"decision": "approve"}), http.StatusOK)
}

// Whatever a steward enters for the L4 patient ID, a release under the
// grant never carries the ID, nor any run of its digits: the policy holds
// each treatment to the level's ceiling. Each attempt is approved through
// the hub and read as the grantee would.
func TestAGrantNeverReleasesBeyondTheCeilingWhateverTheStewardEnters(t *testing.T) {
	g := newHubGateway(t, "conditional")
	steward := g.token(t, "sam", "health", "steward")
	const raw = "110105199001011234"
	for i, treatment := range []any{
		"keep", map[string]any{"op": "keep"}, "ceiling",
		map[string]any{"op": "mask", "keep_first": 17},
		map[string]any{"op": "mask_id_cn", "keep_first": 14},
		map[string]any{"op": "mask_id_cn", "keep": "birth_year"},
		map[string]any{"op": "generalize", "to": "prefix", "length": 18},
		map[string]any{"op": "truncate", "length": 18},
		map[string]any{"op": "replace", "value": raw},
		map[string]any{"op": "pseudonymize", "scope": "shared:everyone"},
	} {
		sub := fmt.Sprint("r", i)
		tok := g.token(t, sub, "stats-bureau", "researcher")
		req := decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests", tok, visitsRequest), http.StatusCreated)
		approve := map[string]any{"decision": "approve", "conditions": map[string]any{"fields": map[string]any{"patient_id": treatment}}}
		decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", steward, approve), http.StatusOK)
		w := call(t, g.srv, "GET", "/v1/health/visits", tok, nil, PurposeHeader, "research")
		if w.Code != http.StatusOK {
			t.Fatalf("%v: %d %s", treatment, w.Code, w.Body)
		}
		for _, run := range []string{raw, "19900101", "1101051990"} {
			if strings.Contains(w.Body.String(), run) {
				t.Errorf("granted %v, released %s (holds %q)", treatment, w.Body, run)
			}
		}
	}
}

func TestAPreviewShowsWhatAGrantWouldReleaseOnAMadeUpRecord(t *testing.T) {
	g := newHubGateway(t, "conditional")
	rita := g.token(t, "rita", "stats-bureau", "researcher")
	body := map[string]any{"dataset": "health/visits", "fields": []string{"patient_id", "district", "visit_date"}, "purpose": "research",
		"conditions": map[string]any{"fields": map[string]any{"patient_id": "keep", "visit_date": map[string]any{"op": "generalize", "to": "month"}}}}
	p := decodeAs[Preview](t, call(t, g.srv, "POST", "/v1/requests/preview", rita, body), http.StatusOK)
	if !p.Allowed || len(p.Fields) != 3 {
		t.Fatalf("preview %+v", p)
	}
	byName := map[string]PreviewField{}
	for _, f := range p.Fields {
		byName[f.Name] = f
	}
	id := byName["patient_id"]
	if id.Treatment.Op != "pseudonymize" || id.Example.Raw != "110105199001011234" || len(fmt.Sprint(id.Example.Released)) != 32 {
		t.Errorf("patient_id %+v: want the ceiling, a pseudonym of the made-up ID", id)
	}
	if v := byName["visit_date"]; v.Example.Released != "2026-03" || byName["district"].Treatment.Op != "keep" {
		t.Errorf("fields %+v", p.Fields)
	}
	// A role that does not read under grants is told so; nothing is made.
	carl := g.token(t, "carl", "civil", "caseworker")
	if p := decodeAs[Preview](t, call(t, g.srv, "POST", "/v1/requests/preview", carl, body), http.StatusOK); p.Allowed || p.Reason == "" {
		t.Errorf("a caseworker's preview %+v", p)
	}
	if rs, _ := g.store.Requests(context.Background(), hub.Filter{}); len(rs) != 0 {
		t.Errorf("a preview stored %d requests", len(rs))
	}
}

// A steward's question pauses the clock; the requester's reply restarts
// it, and the requester may withdraw.
func TestAQuestionPausesTheClockAndTheReplyResumesIt(t *testing.T) {
	g := newHubGateway(t, "conditional")
	rita := g.token(t, "rita", "stats-bureau", "researcher")
	steward := g.token(t, "sam", "health", "steward")
	req := decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests", rita, visitsRequest), http.StatusCreated)
	if w := call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", steward, map[string]any{"decision": "need_info"}); w.Code != http.StatusBadRequest {
		t.Errorf("a question without its text: %d %s", w.Code, w.Body)
	}
	asked := decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", steward,
		map[string]any{"decision": "need_info", "reason": "which districts?"}), http.StatusOK)
	if asked.State != hub.NeedsInfo || asked.PausedAt.IsZero() {
		t.Fatalf("asked %+v", asked)
	}
	if w := call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/reply", steward, map[string]any{"reason": "x"}); w.Code != http.StatusForbidden {
		t.Errorf("the steward replied for the requester: %d %s", w.Code, w.Body)
	}
	replied := decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/reply", rita, map[string]any{"reason": "all"}), http.StatusOK)
	if replied.State != hub.Submitted || replied.Due.Before(req.Due) {
		t.Errorf("replied %+v: want submitted, due no earlier than before", replied)
	}
	decodeAs[hub.Request](t, call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/withdraw", rita, nil), http.StatusOK)
	if w := call(t, g.srv, "POST", "/v1/requests/"+req.ID+"/decision", steward, map[string]any{"decision": "approve"}); w.Code != http.StatusConflict {
		t.Errorf("approving a withdrawn request: %d %s", w.Code, w.Body)
	}
}

// Two previews of one caller with different terms are decided apart:
// the decision cache keys grants by ID, and a preview's ID names its terms.
func TestPreviewsOfDifferentTermsAreDecidedApart(t *testing.T) {
	g := newHubGateway(t, "conditional")
	rita := g.token(t, "rita", "stats-bureau", "researcher")
	treatment := func(t2 any) string {
		body := map[string]any{"dataset": "health/visits", "fields": []string{"district"}, "purpose": "research",
			"conditions": map[string]any{"fields": map[string]any{"district": t2}}}
		p := decodeAs[Preview](t, call(t, g.srv, "POST", "/v1/requests/preview", rita, body), http.StatusOK)
		return p.Fields[0].Treatment.Op
	}
	if a, b := treatment("keep"), treatment("drop"); a != "keep" || b != "drop" {
		t.Errorf("previews of keep and drop answered %s and %s", a, b)
	}
}

// tokenTime is the gateway's clock when the test moved it, else now: its
// tokens are valid for 400 days either side, since the gateway judges
// token times by its own clock and the test moves it by days.
func (g *hubGateway) tokenTime() time.Time {
	if c := g.clock.Load(); c != nil {
		return *c
	}
	return time.Now()
}
