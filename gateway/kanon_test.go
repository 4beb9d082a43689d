package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/anonymize/risk"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
)

// kPolicy lets "kreader" read district, band and diagnosis under min_k 3,
// and "lreader" the same under min_l 2 too; both may look a visit up by
// its id without receiving it.
const kPolicy = `package sluice

default decision := {"allow": false, "reason": "no rule grants this access"}

view := {"district": "keep", "band": "keep", "diagnosis": "keep"}

decision := {"allow": true, "reason": "kreader", "fields": view, "min_k": 3,
	"params": ["page", "page_size", "district"], "masked_filters": ["visit_id"]} if {
	input.action == "read"
	"kreader" in input.subject.roles
}

decision := {"allow": true, "reason": "lreader", "fields": view, "min_k": 3, "min_l": 2,
	"params": ["page", "page_size"], "masked_filters": ["visit_id"]} if {
	input.action == "read"
	"lreader" in input.subject.roles
}
`

// kRaw is the upstream's visits: the class (district, band) of visit i
// and its size are chosen so that classes of every size from 1 to 6
// occur, some with one diagnosis and some with several.
func kRaw() []map[string]any {
	var out []map[string]any
	n := 0
	for c, size := range []int{1, 2, 3, 4, 5, 6, 1, 3, 2, 4} {
		district, band := fmt.Sprint("D", c%4), fmt.Sprint("B", c)
		for j := range size {
			n++
			diagnosis := "J06.9"
			if c%2 == 0 {
				diagnosis = fmt.Sprint("X", j%2) // several diagnoses when the class holds two or more
			}
			out = append(out, map[string]any{"visit_id": fmt.Sprint("V", n), "district": district, "band": band,
				"diagnosis": diagnosis, "name": fmt.Sprint("person ", n), "patient_id": fmt.Sprint("P", n)})
		}
	}
	return out
}

type kGateway struct {
	srv    *Server
	secret []byte
	audit  *orderAudit
	down   atomic.Bool // the department answers 500
	now    atomic.Pointer[time.Time]
	raw    []map[string]any
}

func newKGateway(t *testing.T) *kGateway {
	t.Helper()
	g := &kGateway{secret: make([]byte, 32), audit: &orderAudit{}, raw: kRaw()}
	rand.Read(g.secret)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.down.Load() {
			http.Error(w, `{"error":"down"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if id, ok := strings.CutPrefix(r.URL.Path, "/visits/"); ok {
			for _, rec := range g.raw {
				if rec["visit_id"] == id {
					json.NewEncoder(w).Encode(map[string]any{"items": []any{rec}})
					return
				}
			}
			http.Error(w, `{"error":"no such visit"}`, http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		p, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("page_size"))
		if p < 1 {
			p = 1
		}
		if size < 1 {
			size = 20
		}
		var sel []map[string]any
		for _, rec := range g.raw {
			if d := q["district"]; len(d) > 0 && !slices.Contains(d, rec["district"].(string)) {
				continue
			}
			sel = append(sel, rec)
		}
		items := []map[string]any{}
		if start := (p - 1) * size; start < len(sel) {
			items = sel[start:min(start+size, len(sel))]
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items, "page": p, "page_size": size, "total": len(sel)})
	}))
	t.Cleanup(up.Close)
	cfg, set := loadFixture(t, map[string][]byte{"hs.key": g.secret, "policies/sluice.rego": []byte(kPolicy),
		"sluice.yaml": []byte(hsHealth(up.URL) + `      - name: visits
        path: /visits
        id_field: visit_id
        meta: [page, page_size]
        counts: [total]
        filters: {district: district}
        stats_page_size: 7
        k_anonymity_refresh: 1h
        privacy_unit: patient_id
        fields:
          visit_id: {type: string, class: id}
          patient_id: {type: string, class: id}
          district: {type: string, class: quasi}
          band: {type: string, class: quasi}
          diagnosis: {type: string, class: sensitive}
          name: {type: name_cn, class: id}
`)})
	var err error
	g.srv, err = New(context.Background(), cfg, Deps{Audit: g.audit, Policies: policy.NewEngine(set),
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time {
			if t := g.now.Load(); t != nil {
				return *t
			}
			return time.Now()
		}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *kGateway) token(t *testing.T, dept string, roles ...string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "test-idp", "aud": "sluice", "sub": "tester", "dept": dept, "roles": roles,
		"iat": g.tokenTime().Add(-400 * 24 * time.Hour).Unix(), "exp": g.tokenTime().Add(400 * 24 * time.Hour).Unix(),
	}).SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (g *kGateway) get(t *testing.T, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	w := &watchedWriter{ResponseRecorder: httptest.NewRecorder()}
	g.audit.mu.Lock()
	g.audit.w = w
	g.audit.mu.Unlock()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	g.srv.ServeHTTP(w, r)
	g.audit.mu.Lock()
	defer g.audit.mu.Unlock()
	g.audit.w = nil
	if len(g.audit.early) > 0 {
		t.Fatalf("%s: bytes reached the caller before the audit record of %v", path, g.audit.early)
	}
	return w.ResponseRecorder
}

// outcome is the last audit record of the response's request.
func (g *kGateway) outcome(t *testing.T, w *httptest.ResponseRecorder) audit.Event {
	t.Helper()
	g.audit.mu.Lock()
	defer g.audit.mu.Unlock()
	id := w.Header().Get("X-Request-Id")
	for i := len(g.audit.events) - 1; i >= 0; i-- {
		if e := g.audit.events[i]; e.RequestID == id {
			return e
		}
	}
	t.Fatalf("no audit record for request %q", id)
	return audit.Event{}
}

// builds are the audit records of class table builds.
func (g *kGateway) builds() []audit.Event {
	g.audit.mu.Lock()
	defer g.audit.mu.Unlock()
	var out []audit.Event
	for _, e := range g.audit.events {
		if e.Action == "k_anonymity" {
			out = append(out, e)
		}
	}
	return out
}

type kPage struct {
	Items      []map[string]string `json:"items"`
	Suppressed *int                `json:"suppressed"`
	Total      *int                `json:"total"`
}

func decodeKPage(t *testing.T, w *httptest.ResponseRecorder) kPage {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var p kPage
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("body: %v\n%s", err, w.Body)
	}
	if p.Suppressed == nil {
		t.Fatalf("no suppressed count beside items: %s", w.Body)
	}
	return p
}

// rawClasses counts the raw records of each (district, band), and the
// distinct diagnoses in each: computed from the department's data, not
// from anything the gateway built.
func rawClasses(raw []map[string]any) (size map[string]int, diverse map[string]int) {
	size, diverse = map[string]int{}, map[string]int{}
	seen := map[string]bool{}
	for _, rec := range raw {
		c := rec["district"].(string) + "/" + rec["band"].(string)
		size[c]++
		if d := c + "/" + rec["diagnosis"].(string); !seen[d] {
			seen[d] = true
			diverse[c]++
		}
	}
	return size, diverse
}

// readAll pages through the view as the caller, returning the released
// records and the suppressed counts of body and audit.
func (g *kGateway) readAll(t *testing.T, token string) (released []map[string]string, bodySuppressed, auditSuppressed int) {
	t.Helper()
	for page := 1; ; page++ {
		w := g.get(t, fmt.Sprintf("/v1/health/visits?page=%d&page_size=5", page), token)
		p := decodeKPage(t, w)
		if p.Total != nil {
			t.Errorf("page %d passes the upstream's total under min_k", page)
		}
		ev := g.outcome(t, w)
		if ev.Obligations.MinK != 3 {
			t.Errorf("page %d: the outcome record's min_k is %d, want the decision's 3", page, ev.Obligations.MinK)
		}
		if ev.Rows != len(p.Items) {
			t.Errorf("page %d: audit says %d rows, the body holds %d", page, ev.Rows, len(p.Items))
		}
		bodySuppressed += *p.Suppressed
		auditSuppressed += ev.Obligations.Suppressed
		released = append(released, p.Items...)
		if len(p.Items) == 0 && *p.Suppressed == 0 {
			return released, bodySuppressed, auditSuppressed
		}
	}
}

func TestMinKReleasesNoRecordOfAClassBelowK(t *testing.T) {
	g := newKGateway(t)
	size, _ := rawClasses(g.raw)
	released, bodySup, auditSup := g.readAll(t, g.token(t, "org-a", "kreader"))
	for _, rec := range released {
		if c := rec["district"] + "/" + rec["band"]; size[c] < 3 {
			t.Errorf("released a record of class %s, of %d raw records", c, size[c])
		}
	}
	wantReleased := 0
	for _, n := range size {
		if n >= 3 {
			wantReleased += n
		}
	}
	if len(released) != wantReleased {
		t.Errorf("released %d records, want every one of a class of 3 or more: %d", len(released), wantReleased)
	}
	if want := len(g.raw) - wantReleased; bodySup != want || auditSup != want {
		t.Errorf("suppressed %d in the bodies and %d in the trail, want %d", bodySup, auditSup, want)
	}
	if b := g.builds(); len(b) != 1 || b[0].Status != http.StatusOK || b[0].Rows != len(g.raw) {
		t.Errorf("want one audited build of %d records, got %+v", len(g.raw), b)
	}
}

// k counts people: a chronic patient's five visits in one class are one
// person, and the class is withheld at k = 3 however many visits it
// holds; three patients' three visits make a class that is released.
func TestMinKCountsPeopleNotVisits(t *testing.T) {
	g := newKGateway(t)
	visit := func(id, patient, band, diagnosis string) map[string]any {
		return map[string]any{"visit_id": id, "district": "D9", "band": band, "diagnosis": diagnosis,
			"name": "name of " + patient, "patient_id": patient}
	}
	for i := range 5 {
		g.raw = append(g.raw, visit(fmt.Sprint("C", i), "chronic", "B-one", fmt.Sprint("X", i%2)))
	}
	for i := range 3 {
		g.raw = append(g.raw, visit(fmt.Sprint("T", i), fmt.Sprint("three-", i), "B-three", fmt.Sprint("X", i%2)))
	}
	released, _, _ := g.readAll(t, g.token(t, "org-a", "kreader"))
	got := map[string]int{}
	for _, rec := range released {
		got[rec["district"]+"/"+rec["band"]]++
	}
	if got["D9/B-one"] != 0 {
		t.Errorf("released %d visits of a class of one patient at k = 3", got["D9/B-one"])
	}
	if got["D9/B-three"] != 3 {
		t.Errorf("released %d of the 3 visits of a class of three patients, want 3", got["D9/B-three"])
	}
	if _, ok := released[0]["patient_id"]; ok {
		t.Error("the view does not release patient_id, yet it came out")
	}
}

// A record without its privacy unit cannot be counted as anyone's:
// the table is not built and nothing is released.
func TestMinKReleasesNothingWhenARecordHasNoPrivacyUnit(t *testing.T) {
	g := newKGateway(t)
	g.raw = append(g.raw, map[string]any{"visit_id": "NU", "district": "D0", "band": "B0", "diagnosis": "X0"})
	w := g.get(t, "/v1/health/visits", g.token(t, "org-a", "kreader"))
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "items") {
		t.Errorf("status %d, body %s; want 503 and no records", w.Code, w.Body)
	}
}

func TestMinKClassesAreOfTheWholeViewNotOfTheFilteredPage(t *testing.T) {
	g := newKGateway(t)
	size, _ := rawClasses(g.raw)
	w := g.get(t, "/v1/health/visits?district=D1&page_size=50", g.token(t, "org-a", "kreader"))
	p := decodeKPage(t, w)
	want := 0
	for c, n := range size {
		if strings.HasPrefix(c, "D1/") && n >= 3 {
			want += n
		}
	}
	if len(p.Items) != want {
		t.Errorf("released %d records of D1, want %d", len(p.Items), want)
	}
}

func TestMinLSuppressesClassesOfOneSensitiveValue(t *testing.T) {
	g := newKGateway(t)
	size, diverse := rawClasses(g.raw)
	released, _, _ := g.readAll(t, g.token(t, "org-a", "lreader"))
	want := 0
	for c, n := range size {
		if n >= 3 && diverse[c] >= 2 {
			want += n
		}
	}
	for _, rec := range released {
		if c := rec["district"] + "/" + rec["band"]; diverse[c] < 2 {
			t.Errorf("released a record of class %s, of %d distinct diagnoses", c, diverse[c])
		}
	}
	if len(released) != want || want == 0 {
		t.Errorf("released %d records, want %d (> 0)", len(released), want)
	}
}

func TestMinKLookupOfASuppressedRecordIsNotFound(t *testing.T) {
	g := newKGateway(t)
	tok := g.token(t, "org-a", "kreader")
	// V1 is alone in its class; V4 is in a class of 3.
	if w := g.get(t, "/v1/health/visits/V1", tok); w.Code != http.StatusNotFound {
		t.Errorf("lookup of a suppressed record: status %d, want 404: %s", w.Code, w.Body)
	}
	w := g.get(t, "/v1/health/visits/V4", tok)
	if p := decodeKPage(t, w); len(p.Items) != 1 {
		t.Errorf("lookup of a record of a class of 3: %s", w.Body)
	}
}

func TestMinKReleasesNothingWhenTheTableCannotBeBuilt(t *testing.T) {
	g := newKGateway(t)
	g.down.Store(true)
	w := g.get(t, "/v1/health/visits", g.token(t, "org-a", "kreader"))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"unavailable"`) {
		t.Fatalf("status %d, want 503 unavailable: %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "D0") {
		t.Errorf("a failed build released data: %s", w.Body)
	}
	if ev := g.outcome(t, w); ev.Status != http.StatusServiceUnavailable || ev.Code != "unavailable" {
		t.Errorf("the request's record: status %d code %q", ev.Status, ev.Code)
	}
	b := g.builds()
	if len(b) != 1 || b[0].Status != http.StatusServiceUnavailable || b[0].Decision != "error" {
		t.Fatalf("want one audited failed build, got %+v", b)
	}
	// The department back, the next request builds the table.
	g.down.Store(false)
	decodeKPage(t, g.get(t, "/v1/health/visits", g.token(t, "org-a", "kreader")))
	if b := g.builds(); len(b) != 2 || b[1].Status != http.StatusOK {
		t.Errorf("want a second, successful build, got %+v", b)
	}
}

func TestMinKRebuildsAStaleTable(t *testing.T) {
	g := newKGateway(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g.now.Store(&now)
	tok := g.token(t, "org-a", "kreader")
	decodeKPage(t, g.get(t, "/v1/health/visits", tok))
	later := now.Add(59 * time.Minute)
	g.now.Store(&later)
	decodeKPage(t, g.get(t, "/v1/health/visits", tok))
	if n := len(g.builds()); n != 1 {
		t.Fatalf("a table within k_anonymity_refresh was rebuilt: %d builds", n)
	}
	// The department adds two records to the class of V1, now of 3.
	g.raw = append(g.raw, map[string]any{"visit_id": "N1", "district": "D0", "band": "B0", "diagnosis": "X0", "patient_id": "PN1"},
		map[string]any{"visit_id": "N2", "district": "D0", "band": "B0", "diagnosis": "X1", "patient_id": "PN2"})
	if w := g.get(t, "/v1/health/visits/V1", tok); w.Code != http.StatusNotFound {
		t.Fatalf("V1 released from a table that has not been rebuilt: %d", w.Code)
	}
	stale := now.Add(61 * time.Minute)
	g.now.Store(&stale)
	w := g.get(t, "/v1/health/visits/V1", tok)
	if p := decodeKPage(t, w); len(p.Items) != 1 {
		t.Errorf("after the rebuild V1's class holds 3: %s", w.Body)
	}
	if n := len(g.builds()); n != 2 {
		t.Errorf("want the stale table rebuilt once: %d builds", n)
	}
}

// A view nobody reads any more does not keep its table: the next build of
// any view lets go of every stale one.
func TestMinKStaleTablesAreLetGo(t *testing.T) {
	g := newKGateway(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g.now.Store(&now)
	decodeKPage(t, g.get(t, "/v1/health/visits", g.token(t, "org-a", "kreader")))
	decodeKPage(t, g.get(t, "/v1/health/visits", g.token(t, "org-b", "kreader")))
	if n := g.srv.kTables.len(); n != 2 {
		t.Fatalf("%d tables after two organisations' reads, want 2", n)
	}
	later := now.Add(61 * time.Minute)
	g.now.Store(&later)
	decodeKPage(t, g.get(t, "/v1/health/visits", g.token(t, "org-c", "kreader")))
	if n := g.srv.kTables.len(); n != 1 {
		t.Errorf("%d tables held once org-a's and org-b's went stale, want org-c's alone", n)
	}
}

func TestMinKOrganisationsGetTablesOfTheirOwn(t *testing.T) {
	g := newKGateway(t)
	a, b := g.token(t, "org-a", "kreader"), g.token(t, "org-b", "kreader")
	decodeKPage(t, g.get(t, "/v1/health/visits", a))
	decodeKPage(t, g.get(t, "/v1/health/visits", a))
	decodeKPage(t, g.get(t, "/v1/health/visits", b))
	builds := g.builds()
	if len(builds) != 2 {
		t.Fatalf("want one build per organisation, got %d", len(builds))
	}
	if builds[0].Reason[:40] == builds[1].Reason[:40] {
		t.Errorf("two organisations share a view key: %q, %q", builds[0].Reason, builds[1].Reason)
	}
}

func TestMinKConcurrentRequestsShareOneBuild(t *testing.T) {
	g := newKGateway(t)
	tok := g.token(t, "org-a", "kreader")
	done := make(chan int)
	for range 8 {
		go func() {
			r := httptest.NewRequest(http.MethodGet, "/v1/health/visits", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			g.srv.ServeHTTP(w, r)
			done <- w.Code
		}()
	}
	for range 8 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("status %d", code)
		}
	}
	if n := len(g.builds()); n != 1 {
		t.Errorf("8 concurrent requests made %d builds, want 1", n)
	}
}

// kFilter follows the transform's body by its brackets: strings holding
// brackets and quotes, nested values, no records, members after the
// records.
func TestKFilterFollowsTheBodyByItsBrackets(t *testing.T) {
	tab, err := risk.NewTable([]risk.Field{{Name: "d"}}, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range []string{"A", "A", "B"} {
		tab.Add(map[string]json.RawMessage{"d": json.RawMessage(`"` + d + `"`)}, fmt.Sprint("p", i))
	}
	for _, tc := range []struct{ in, want string }{
		{`{"items":[]}`, `{"items":[],"suppressed":0}` + "\n"},
		{`{"items":[{"d":"A","n":"}{][\"x\\"}],"page":2}`, `{"items":[{"d":"A","n":"}{][\"x\\"}],"suppressed":0,"page":2}` + "\n"},
		{`{"items":[{"d":"B"},{"d":"A","v":{"w":[1,{"d":"B"}]}},{"d":"B"}],"page":1,"page_size":3}`,
			`{"items":[{"d":"A","v":{"w":[1,{"d":"B"}]}}],"suppressed":2,"page":1,"page_size":3}` + "\n"},
	} {
		var out bytes.Buffer
		if _, _, err := kFilter(&out, strings.NewReader(tc.in), tab, nil); err != nil || out.String() != tc.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", tc.in, out.String(), err, tc.want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"items":[{"d":"A"}`, `{"items":["A"]}`, `{"page":1,"items":[]}`} {
		if _, _, err := kFilter(io.Discard, strings.NewReader(bad), tab, nil); err == nil {
			t.Errorf("%q filtered without an error", bad)
		}
	}
}

// tokenTime is the gateway's clock when the test moved it, else now: its
// tokens are valid for 400 days either side, since the gateway judges
// token times by its own clock and the test moves it by days.
func (g *kGateway) tokenTime() time.Time {
	if c := g.now.Load(); c != nil {
		return *c
	}
	return time.Now()
}
