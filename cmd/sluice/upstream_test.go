package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// secret is a value that must never leave the gateway in any test body.
const secret = "SECRET-张三-13812345678"

// testPolicy lets the role "tester" read every dataset of source "bad":
// id and district kept, phone masked, name dropped, nested.city kept.
const testPolicy = `package sluice

default decision := {"allow": false, "reason": "test: not a tester"}

decision := {
	"allow": true,
	"reason": "test read",
	"fields": {
		"id": "keep",
		"district": "keep",
		"phone": {"op": "mask", "keep_first": 3, "keep_last": 4},
		"name": "drop",
		"nested.city": "keep",
	},
	"params": ["page", "page_size", "district"],
	"max_rows": 100,
} if {
	input.action == "read"
	"tester" in input.subject.roles
}
`

// upstream is a deliberately misbehaving department: each path misbehaves
// in its own way. It records the requests it receives.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	calls    atomic.Int64
}

const goodBody = `{"items":[
 {"id":1,"name":"` + secret + `","phone":"13812345678","district":"朝阳区","nested":{"city":"北京","street":"` + secret + `"},"extra":{"name":"` + secret + `"}},
 {"id":2,"name":"李四","phone":"13987654321","district":"海淀区","nested":{"city":"上海"},"unlisted":"` + secret + `"}
],"page":1,"total":2,"debug":{"dump":"` + secret + `"}}`

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	mux := http.NewServeMux()
	jsonBody := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		}
	}
	mux.HandleFunc("/good", jsonBody(goodBody))
	mux.HandleFunc("/good/{id}", jsonBody(`{"items":[{"id":1,"name":"`+secret+`","district":"朝阳区"}]}`))
	// A kept field arrives as an object carrying a secret, and a masked one
	// as an array: neither may pass as it is.
	mux.HandleFunc("/nested", jsonBody(`{"items":[{"id":{"value":1,"name":"`+secret+`"},"phone":["`+secret+`"],"district":"朝阳区","nested":{"city":{"name":"`+secret+`"}}}]}`))
	mux.HandleFunc("/dupkey", jsonBody(`{"items":[{"id":1,"district":"朝阳区","district":"`+secret+`","phone":"13812345678"}]}`))
	mux.HandleFunc("/escaped", jsonBody(`{"items":[{"id":1,"n\u0061me":"`+secret+`","pho\u006ee":"13812345678","district":"朝阳区"}]}`))
	mux.HandleFunc("/garbage", jsonBody(`{"items":[{"id":1,"name":"`+secret+`","district":"朝阳区"}}}]`))
	mux.HandleFunc("/ctype", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(goodBody))
	})
	mux.HandleFunc("/cut", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100000")
		w.Write([]byte(goodBody[:len(goodBody)/2]))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/slowbody", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items":[{"id":1,"district":"朝阳区"},`))
		w.(http.Flusher).Flush()
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":"` + secret + `"}`))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/good", http.StatusFound)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items":[{"id":1,"district":"` + strings.Repeat("x", 2<<20) + `"}]}`))
	})
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		u.mu.Lock()
		u.requests = append(u.requests, r.Clone(r.Context()))
		u.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.requests) == 0 {
		return nil
	}
	return u.requests[len(u.requests)-1]
}

var badDatasets = []string{"good", "nested", "dupkey", "escaped", "garbage", "ctype", "cut", "slow", "slowbody", "status", "redirect", "huge"}

// testGateway is a gateway started with `sluice serve` on its own config.
type testGateway struct {
	*proc
	dir  string
	url  string
	key  ed25519.PrivateKey
	up   *upstream
	cred string
}

// startTestGateway writes keys, policy and config for source "bad" and
// runs `sluice serve`.
func startTestGateway(t *testing.T, up *upstream) *testGateway {
	t.Helper()
	dir := t.TempDir()
	pub, priv, _ := ed25519GenerateKey()
	pk, _ := x509.MarshalPKIXPublicKey(pub)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("verify.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk})))
	write("hmac.key", strings.Repeat("k", 40))
	cred := "Bearer upstream-credential-from-config"
	write("cred", cred+"\n")
	os.Mkdir(filepath.Join(dir, "policies"), 0o700)
	write("policies/test.rego", testPolicy)
	var ds strings.Builder
	for _, name := range badDatasets {
		fmt.Fprintf(&ds, "      - name: %s\n        path: /%s\n        id_field: id\n        meta: [page]\n        counts: [total]\n"+
			"        fields: {id: {type: integer, level: L2}, name: {type: name_cn, level: L4}, phone: {type: phone_cn, level: L4}, district: {type: string, level: L1}}\n", name, name)
	}
	write("sluice.yaml", fmt.Sprintf(`listen: 127.0.0.1:0
hmac_key_file: hmac.key
auth:
  issuer: test-issuer
  audience: test-audience
  keys:
    - {id: demo-ed25519, algorithms: [EdDSA], public_key_file: verify.pem}
policy: {dir: policies}
audit: {dir: audit}
limits: {max_record_bytes: 64KiB, spool_memory_bytes: 1KiB}
sources:
  - name: bad
    upstream: %s
    timeout: 500ms
    credentials: {header: Authorization, value_file: cred}
    datasets:
%s`, up.URL, ds.String()))
	p := start(t, "serve", "--config", filepath.Join(dir, "sluice.yaml"))
	g := &testGateway{proc: p, dir: dir, key: priv, up: up, cred: cred}
	g.url = listening(t, p)
	waitReady(t, p, g.url)
	return g
}

func (g *testGateway) token(t *testing.T, roles ...string) string {
	t.Helper()
	tok, err := signClaims(g.key, map[string]any{"iss": "test-issuer", "aud": "test-audience", "sub": "tess",
		"roles": roles, "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// assertNoLeak fails when a response carries the secret or anything but a
// JSON error or the released records.
func assertNoLeak(t *testing.T, r response) {
	t.Helper()
	for _, s := range []string{secret, "张三", "13812345678", "13987654321", "street", "extra", "debug", "unlisted", "李四"} {
		if strings.Contains(string(r.body), s) {
			t.Errorf("response leaks %q: %s", s, r.body)
		}
	}
}

// TestMisbehavingUpstreamsLeakNothing: whatever the upstream sends, the
// caller gets either the released records or a JSON error, never raw data.
func TestMisbehavingUpstreamsLeakNothing(t *testing.T) {
	g := startTestGateway(t, newUpstream(t))
	tok := g.token(t, "tester")
	cases := []struct {
		dataset string
		status  int
		code    string
	}{
		{"dupkey", 502, "upstream_invalid"},
		{"garbage", 502, "upstream_invalid"},
		{"ctype", 502, "upstream_invalid"},
		{"cut", 502, "upstream_invalid"},
		{"slow", 504, "upstream_timeout"},
		{"slowbody", 504, "upstream_timeout"},
		{"status", 502, "upstream_invalid"},
		{"redirect", 502, "upstream_invalid"},
		{"huge", 413, "too_large"},
	}
	for _, c := range cases {
		t.Run(c.dataset, func(t *testing.T) {
			r := get(t, g.url+"/v1/bad/"+c.dataset, tok)
			expectError(t, r, c.status, c.code)
			assertNoLeak(t, r)
			rec := recordFor(t, filepath.Join(g.dir, "audit"), r.header.Get("X-Request-Id"))
			if rec["status"] != float64(c.status) || rec["code"] != c.code || rec["rows"] != float64(0) {
				t.Errorf("audit record: %v", rec)
			}
		})
	}

	t.Run("unexpected nested and top-level fields are dropped", func(t *testing.T) {
		r := get(t, g.url+"/v1/bad/good", tok)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		assertNoLeak(t, r)
		var got any
		json.Unmarshal(r.body, &got)
		want := map[string]any{"items": []any{
			map[string]any{"id": 1.0, "phone": "138****5678", "district": "朝阳区", "nested": map[string]any{"city": "北京"}},
			map[string]any{"id": 2.0, "phone": "139****4321", "district": "海淀区", "nested": map[string]any{"city": "上海"}},
		}, "page": 1.0, "total": 2.0}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("released body (-want +got):\n%s", diff)
		}
	})

	t.Run("objects where scalars are expected are redacted", func(t *testing.T) {
		r := get(t, g.url+"/v1/bad/nested", tok)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		assertNoLeak(t, r)
		want := []map[string]any{{"id": "[REDACTED]", "phone": "[REDACTED]", "district": "朝阳区", "nested": map[string]any{"city": "[REDACTED]"}}}
		if diff := cmp.Diff(want, r.items(t)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if rec := recordFor(t, filepath.Join(g.dir, "audit"), r.header.Get("X-Request-Id")); rec["obligations"].(map[string]any)["fallbacks"] != 3.0 {
			t.Errorf("fallbacks not audited: %v", rec["obligations"])
		}
	})

	t.Run("keys spelled with unicode escapes are matched by their meaning", func(t *testing.T) {
		r := get(t, g.url+"/v1/bad/escaped", tok)
		assertNoLeak(t, r)
		want := []map[string]any{{"id": 1.0, "phone": "138****5678", "district": "朝阳区"}}
		if diff := cmp.Diff(want, r.items(t)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("an unreachable upstream is a 502", func(t *testing.T) {
		g.up.Close()
		r := get(t, g.url+"/v1/bad/good", tok)
		expectError(t, r, http.StatusBadGateway, "upstream_invalid")
	})
}

// TestCallerCredentialsStayAtTheGateway (invariant 5): the upstream sees
// the configured credential and the allowed query, nothing of the caller's.
func TestCallerCredentialsStayAtTheGateway(t *testing.T) {
	up := newUpstream(t)
	g := startTestGateway(t, up)
	tok := g.token(t, "tester")
	r := get(t, g.url+"/v1/bad/good?page=2&district=朝阳区", tok,
		"Cookie", "session="+secret,
		"Proxy-Authorization", "Basic "+secret,
		"X-Forwarded-For", "203.0.113.9",
		"Forwarded", "for=203.0.113.9",
		"X-Custom", secret,
		"Connection", "X-Hop",
		"X-Hop", secret,
		"Sluice-Purpose", "testing",
		"Te", "trailers",
	)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	in := up.last()
	if got := in.Header.Values("Authorization"); len(got) != 1 || got[0] != g.cred {
		t.Errorf("upstream Authorization %q, want only the configured credential", got)
	}
	for name := range in.Header {
		switch name {
		case "Authorization", "Accept", "User-Agent", "X-Request-Id", "Accept-Encoding":
		default:
			t.Errorf("caller header %s reached the upstream: %q", name, in.Header.Values(name))
		}
	}
	if strings.Contains(fmt.Sprint(in.Header), tok) {
		t.Error("the caller's token reached the upstream")
	}
	if got, want := in.URL.Query(), map[string][]string{"page": {"2"}, "district": {"朝阳区"}}; !cmp.Equal(map[string][]string(got), want) {
		t.Errorf("upstream query %v, want %v", got, want)
	}
	if got := in.Header.Get("X-Request-Id"); got != r.header.Get("X-Request-Id") {
		t.Errorf("upstream X-Request-Id %q, want the caller's %q", got, r.header.Get("X-Request-Id"))
	}

	t.Run("a parameter the policy does not list never reaches the upstream", func(t *testing.T) {
		before := up.calls.Load()
		r := get(t, g.url+"/v1/bad/good?name=张三", tok)
		expectError(t, r, http.StatusForbidden, "forbidden")
		if up.calls.Load() != before {
			t.Error("the upstream was called for a refused request")
		}
	})

	t.Run("an id with path tricks stays one path segment", func(t *testing.T) {
		before := up.calls.Load()
		for _, id := range []string{"..%2F..%2Fadmin", "a%5Cb", "%2e%2e", "a%00b"} {
			expectError(t, get(t, g.url+"/v1/bad/good/"+id, tok), http.StatusBadRequest, "bad_request")
		}
		if up.calls.Load() != before {
			t.Error("the upstream was called for a malformed id")
		}
		get(t, g.url+"/v1/bad/good/a%20b", tok)
		if p := up.last().URL.EscapedPath(); p != "/good/a%20b" {
			t.Errorf("upstream path %q, want /good/a%%20b", p)
		}
	})
}

// TestAuditPrecedesEveryRelease (invariant 3): every response's request id
// is in the durable trail by the time the caller reads it, denied and
// failed requests included, and the trail holds no raw personal data.
func TestAuditPrecedesEveryRelease(t *testing.T) {
	g := startTestGateway(t, newUpstream(t))
	tok := g.token(t, "tester")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []string
	urls := []string{"/v1/bad/good?district=朝阳区", "/v1/bad/good/1", "/v1/bad/dupkey", "/v1/bad/good?name=13812345678", "/v1/nope/x", "/v1/bad/good/110105199001011234"}
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			token := tok
			if i%5 == 0 {
				token = ""
			}
			r := get(t, g.url+urls[i%len(urls)], token)
			// The record must already be on disk: read it before anything else.
			rec := recordFor(t, filepath.Join(g.dir, "audit"), r.header.Get("X-Request-Id"))
			if rec["status"] != float64(r.status) {
				t.Errorf("audit status %v, response %d", rec["status"], r.status)
			}
			mu.Lock()
			ids = append(ids, r.header.Get("X-Request-Id"))
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	trail := trailBytes(t, filepath.Join(g.dir, "audit"))
	for _, raw := range []string{secret, "张三", "13812345678", "110105199001011234", "李四"} {
		if strings.Contains(trail, raw) {
			t.Errorf("the audit trail holds raw personal data %q", raw)
		}
	}
	for _, line := range strings.Split(g.stderr.String(), "\n") {
		for _, raw := range []string{secret, "13812345678", "110105199001011234"} {
			if strings.Contains(line, raw) {
				t.Errorf("a log line holds raw personal data %q: %s", raw, line)
			}
		}
	}
	if len(ids) != 40 {
		t.Fatalf("%d responses", len(ids))
	}
}

// TestTrailTamperingIsDetected: the trail a run produced verifies, and
// stops verifying after one byte changes, one record goes, or two swap.
func TestTrailTamperingIsDetected(t *testing.T) {
	g := startTestGateway(t, newUpstream(t))
	tok := g.token(t, "tester")
	for i := 0; i < 6; i++ {
		get(t, g.url+"/v1/bad/good", tok)
	}
	g.stop(t)
	dir := filepath.Join(g.dir, "audit")
	// Each release has two records: its decision, then its outcome.
	if out, _, err := runCmd(t, "audit", "verify", "--dir", dir); err != nil || !strings.HasPrefix(out, "ok: 12 records") {
		t.Fatalf("intact trail: %v %q", err, out)
	}
	seg := filepath.Join(dir, "trail-00000001.jsonl")
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(orig), "\n")
	lines = lines[:len(lines)-1]
	tampers := map[string]struct {
		body    string
		wantSeq string
	}{
		"one byte of record 4 changed": {strings.Join(lines[:3], "") + strings.Replace(lines[3], `"status":200`, `"status":201`, 1) + strings.Join(lines[4:], ""), "(seq 4)"},
		"record 4 deleted":             {strings.Join(lines[:3], "") + strings.Join(lines[4:], ""), "(seq 4)"},
		"records 2 and 3 swapped":      {lines[0] + lines[2] + lines[1] + strings.Join(lines[3:], ""), "(seq 2)"},
	}
	for name, tc := range tampers {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(seg, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, _, err := runCmd(t, "audit", "verify", "--dir", dir)
			if exitCode(err) != 1 || !strings.HasPrefix(out, "FAIL") || !strings.Contains(out, tc.wantSeq) {
				t.Errorf("verify: exit %d, output %q; want exit 1 naming %s", exitCode(err), out, tc.wantSeq)
			}
		})
	}
	os.WriteFile(seg, orig, 0o600)
}

// TestGracefulShutdownFinishesInFlightRequests: a request in flight when
// the gateway is told to stop still gets its answer, and its record.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items":[{"id":1,"district":"朝阳区"}]}`))
	}))
	defer slow.Close()
	g := startTestGateway(t, &upstream{Server: slow})
	tok := g.token(t, "tester")
	done := make(chan response)
	go func() { done <- get(t, g.url+"/v1/bad/good", tok) }()
	select {
	case <-entered:
	case r := <-done:
		t.Fatalf("request finished before reaching the upstream: %d %s", r.status, r.body)
	case <-time.After(10 * time.Second):
		t.Fatal("request never reached the upstream")
	}
	stopped := make(chan error)
	go func() { stopped <- g.stop(t) }()
	// Shutdown closes the listener first; once new connections fail, the
	// gateway is shutting down with our request still in flight.
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(g.url, "http://"), time.Second)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-done
	if r.status != http.StatusOK || len(r.items(t)) != 1 {
		t.Fatalf("in-flight request: %d %s", r.status, r.body)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run returned %v", err)
	}
	recordFor(t, filepath.Join(g.dir, "audit"), r.header.Get("X-Request-Id"))
}
