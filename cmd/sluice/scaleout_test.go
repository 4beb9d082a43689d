package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/state"
)

// Replicas started by run("serve") in one test, sharing a real
// redis-server: the proofs of issue 5.

// replicaSet is n gateways sharing one Redis.
type replicaSet struct {
	redis *redistest.Server
	dir   string
	key   ed25519.PrivateKey
	cfgs  []string
	urls  []string
	procs []*proc
}

// replicaOptions shape the replicas' policy and configuration.
type replicaOptions struct {
	// consumerBudget is the policy's consumer cap; datasetBudget the
	// town population's budget, all of it allocated to the counters.
	consumerBudget, datasetBudget float64
	// extra is YAML added to every replica's configuration.
	extra string
}

// townPolicy grants counts of town/people with the given budgets, passing
// a harmless parameter "tag" so that every request can be a new query;
// reads to readers; revocation to officers.
const townPolicy = `package sluice

default decision := {"allow": false, "reason": "no rule grants this access"}

decision := {"allow": true, "reason": "counter", "params": ["tag"],
	"stats": {"metrics": ["count"], "max_epsilon": 1, "group_by": [], "bounds": {},
		"account": "counter", "consumer_budget": %v}} if {
	input.action == "stats"
}

decision := {"allow": true, "reason": "reader", "fields": {"id": "pseudonymize", "district": "keep"}} if {
	input.action == "read"
	"reader" in input.subject.roles
}

decision := {"allow": true, "reason": "officer: token revocation"} if {
	input.action == "revoke"
	"officer" in input.subject.roles
}
`

// townUpstream serves 30 people on page 1 and nothing after.
func townUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	var items []map[string]string
	for i := range 30 {
		items = append(items, map[string]string{"id": fmt.Sprintf("P%03d", i), "district": []string{"东城区", "西城区"}[i%2]})
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{"items": []any{}}
		if p := r.URL.Query().Get("page"); p == "" || p == "1" {
			body["items"] = items
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(up.Close)
	return up
}

func startReplicas(t *testing.T, n int, o replicaOptions) *replicaSet {
	t.Helper()
	rs := &replicaSet{redis: redistest.Start(t), dir: t.TempDir()}
	for _, ensure := range []func(string) error{ensureDemoKeys, ensureCheckpointKey} {
		if err := ensure(rs.dir); err != nil {
			t.Fatal(err)
		}
	}
	key, err := readSigningKey(rs.dir)
	if err != nil {
		t.Fatal(err)
	}
	rs.key = key
	os.MkdirAll(filepath.Join(rs.dir, "policies"), 0o700)
	if err := os.WriteFile(filepath.Join(rs.dir, "policies", "sluice.rego"),
		[]byte(fmt.Sprintf(townPolicy, o.consumerBudget)), 0o600); err != nil {
		t.Fatal(err)
	}
	up := townUpstream(t)
	for i := range n {
		cfg := fmt.Sprintf(`listen: 127.0.0.1:0
hmac_key_file: hmac.key
auth:
  issuer: sluice-demo
  audience: sluice
  keys:
    - {id: demo-ed25519, algorithms: [EdDSA], public_key_file: token-verify.pem}
policy: {dir: policies, watch: false}
audit:
  dir: audit-r%[1]d
  checkpoint_key_file: checkpoint-signing.pem
  replica: r%[1]d
  redis_witness: true
  stream: {}
state:
  redis: {addrs: [%[2]s]}
%[3]s
populations:
  - name: town
    budget: {epsilon: %[5]v}
    allocations: {counter: %[5]v}
sources:
  - name: town
    upstream: %[4]s
    datasets:
      - name: people
        path: /people
        population: town
        privacy_unit: id
        fields:
          id: {type: string, level: L4}
          district: {type: string, level: L1}
`, i+1, rs.redis.Addr(), o.extra, up.URL, o.datasetBudget)
		path := filepath.Join(rs.dir, fmt.Sprintf("sluice-r%d.yaml", i+1))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		rs.cfgs = append(rs.cfgs, path)
		p := start(t, "serve", "--config", path)
		rs.procs = append(rs.procs, p)
	}
	for _, p := range rs.procs {
		url := listening(t, p)
		waitReady(t, p, url)
		rs.urls = append(rs.urls, url)
	}
	return rs
}

// token signs a token for sub with roles.
func (rs *replicaSet) token(t *testing.T, sub string, roles ...string) string {
	t.Helper()
	tok, err := signToken(rs.key, tokenClaims{Subject: sub, Roles: roles, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// townBalance is what a consumer of the town population and the
// population's counter allocation have spent.
type townBalance struct{ Consumer, Allocation state.Budget }

// spent reads the shared ledger directly.
func (rs *replicaSet) spent(t *testing.T, consumer string) townBalance {
	t.Helper()
	r, err := state.NewRedis(rs.redis.Client(), state.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key := func(parts ...string) string { b, _ := json.Marshal(parts); return string(b) }
	b, err := r.Spent(context.Background(), key("town", "pure", ""), key("consumer", demoIssuer, "", consumer), key("allocation", "counter"))
	if err != nil {
		t.Fatal(err)
	}
	return townBalance{Consumer: b[0], Allocation: b[1]}
}

// jti reads a token's id without verifying it.
func jti(t *testing.T, tok string) string {
	t.Helper()
	part := strings.Split(tok, ".")[1]
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		JTI string `json:"jti"`
	}
	json.Unmarshal(b, &c)
	return c.JTI
}

// loadClient sends many requests at once to a few servers.
var loadClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}, Timeout: time.Minute}

func loadGet(url, token string) (int, []byte, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := loadClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, []byte(b.String()), nil
}

// TestReplicasNeverOverspendASharedBudget: three replicas, 500 concurrent
// releases spread over them, each a new query costing ε = 0.01, against a
// budget of ε = 1 that allows exactly 100: exactly 100 are released, the
// rest refused, and the shared ledger holds exactly the cap. Once with the
// consumer's budget binding (one caller), once the population's (500
// callers drawing on the town population's one allocation).
func TestReplicasNeverOverspendASharedBudget(t *testing.T) {
	const (
		requests = 500
		cost     = 0.01
		budget   = 1.0
		allows   = 100
	)
	for _, binding := range []string{"consumer", "population"} {
		t.Run(binding, func(t *testing.T) {
			o := replicaOptions{consumerBudget: budget, datasetBudget: 1000}
			if binding == "population" {
				o = replicaOptions{consumerBudget: 1000, datasetBudget: budget}
			}
			rs := startReplicas(t, 3, o)
			tokens := make([]string, requests)
			for i := range tokens {
				if binding == "consumer" && i > 0 {
					tokens[i] = tokens[0]
					continue
				}
				tokens[i] = rs.token(t, fmt.Sprintf("caller-%03d", i), "counter")
			}
			var (
				mu     sync.Mutex
				codes  = map[string]int{}
				spent  float64
				wg     sync.WaitGroup
				starts = make(chan struct{})
			)
			began := time.Now()
			for i := range requests {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-starts
					url := fmt.Sprintf("%s/v1/town/people/stats?metric=count&epsilon=%v&tag=%d", rs.urls[i%len(rs.urls)], cost, i)
					status, body, err := loadGet(url, tokens[i])
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						codes[err.Error()]++
						return
					}
					var r struct {
						Spent struct{ Epsilon float64 } `json:"spent"`
						Error struct{ Code string }     `json:"error"`
					}
					json.Unmarshal(body, &r)
					codes[strconv.Itoa(status)+" "+r.Error.Code]++
					spent += r.Spent.Epsilon
				}()
			}
			close(starts)
			wg.Wait()
			t.Logf("%d releases over %d replicas in %v: %v", requests, len(rs.urls), time.Since(began).Round(time.Millisecond), codes)
			want := map[string]int{"200 ": allows, "403 privacy_budget_exhausted": requests - allows}
			if fmt.Sprint(codes) != fmt.Sprint(want) {
				t.Errorf("outcomes %v, want %v", codes, want)
			}
			if spent > budget+1e-9 {
				t.Errorf("the released answers spent ε=%v of a budget of %v", spent, budget)
			}
			bal := rs.spent(t, "caller-000")
			if got := bal.Allocation.Epsilon; math.Abs(got-float64(allows)*cost) > 1e-9 || got > budget+1e-12 {
				t.Errorf("the shared ledger says the population's allocation spent ε=%v, want %v (the cap)", got, budget)
			}
			if binding == "consumer" && math.Abs(bal.Consumer.Epsilon-budget) > 1e-9 {
				t.Errorf("the shared ledger says the consumer spent ε=%v, want %v", bal.Consumer.Epsilon, budget)
			}
			rs.verifyTrails(t)
		})
	}
}

// verifyTrails stops the replicas and checks each one's trail against the
// checkpoint it left in Redis, and that the stream holds every record.
func (rs *replicaSet) verifyTrails(t *testing.T) {
	t.Helper()
	for _, p := range rs.procs {
		if err := p.stop(t); err != nil {
			t.Fatalf("stopping a replica: %v", err)
		}
	}
	total := 0
	for i := range rs.procs {
		dir := filepath.Join(rs.dir, fmt.Sprintf("audit-r%d", i+1))
		out, _, err := runCmd(t, "audit", "verify", "--dir", dir, "--pubkey", filepath.Join(rs.dir, checkpointVerifyFile),
			"--redis", rs.redis.Addr(), "--replica", fmt.Sprintf("r%d", i+1))
		if err != nil || !strings.Contains(out, "witness: checkpoint") {
			t.Errorf("replica r%d's trail against its Redis witness: %v\n%s", i+1, err, out)
		}
		total += len(auditRecords(t, dir))
	}
	n, err := rs.redis.Client().XLen(context.Background(), "sluice:audit:stream").Result()
	if err != nil || int(n) != total {
		t.Errorf("the audit stream holds %d records (%v), the trails %d", n, err, total)
	}
}

// TestRateLimitIsSharedAcrossReplicas: a consumer allowed 4 requests an
// hour gets 4 in all, whichever replicas serve them, then 429 with
// Retry-After from every replica.
func TestRateLimitIsSharedAcrossReplicas(t *testing.T) {
	rs := startReplicas(t, 2, replicaOptions{consumerBudget: 5, datasetBudget: 50,
		extra: "rate_limits: {consumer: {rate: 4, per: 1h}}"})
	tok, other := rs.token(t, "rita", "reader"), rs.token(t, "otto", "reader")
	for i := range 4 {
		if r := get(t, rs.urls[i%2]+"/v1/town/people", tok); r.status != http.StatusOK {
			t.Fatalf("request %d on replica %d: %d %s", i+1, i%2+1, r.status, r.body)
		}
	}
	for _, u := range rs.urls {
		r := get(t, u+"/v1/town/people", tok)
		expectError(t, r, http.StatusTooManyRequests, "rate_limited")
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 800 || ra > 900 {
			t.Errorf("%s: Retry-After %q, want about 900s (an hour over 4)", u, r.header.Get("Retry-After"))
		}
	}
	if r := get(t, rs.urls[1]+"/v1/town/people", other); r.status != http.StatusOK {
		t.Errorf("another consumer: %d", r.status)
	}
}

// TestRevokedTokenIsRefusedByEveryReplicaWithinASecond, revoked once with
// `sluice token revoke --config` and once through an officer's POST to
// one replica.
func TestRevokedTokenIsRefusedByEveryReplicaWithinASecond(t *testing.T) {
	rs := startReplicas(t, 3, replicaOptions{consumerBudget: 5, datasetBudget: 50})
	for _, how := range []string{"cli", "endpoint"} {
		t.Run(how, func(t *testing.T) {
			tok := rs.token(t, "rita", "reader")
			for _, u := range rs.urls {
				if r := get(t, u+"/v1/town/people", tok); r.status != http.StatusOK {
					t.Fatalf("%s before revocation: %d %s", u, r.status, r.body)
				}
			}
			start := time.Now()
			switch how {
			case "cli":
				if out, errOut, err := runCmd(t, "token", "revoke", "--config", rs.cfgs[0], "--jti", jti(t, tok)); err != nil {
					t.Fatalf("token revoke: %v\n%s%s", err, out, errOut)
				}
			case "endpoint":
				out, errOut, err := runCmd(t, "token", "revoke", "--gateway", rs.urls[1], "--token", rs.token(t, "oscar", "officer"), "--jti", jti(t, tok))
				if err != nil {
					t.Fatalf("token revoke --gateway: %v\n%s%s", err, out, errOut)
				}
			}
			for _, u := range rs.urls {
				for get(t, u+"/v1/town/people", tok).status != http.StatusUnauthorized {
					if time.Since(start) > time.Second {
						t.Fatalf("%s still accepts the token %v after it was revoked", u, time.Since(start))
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			t.Logf("revoked (%s) on %d replicas within %v", how, len(rs.urls), time.Since(start).Round(time.Millisecond))
			expectError(t, get(t, rs.urls[2]+"/v1/town/people", tok), http.StatusUnauthorized, "unauthenticated")
		})
	}
}

// TestRedisOutageRefusesBudgetsAndRateLimitsThenRecovers: Redis killed
// under two running replicas: statistics and rate-limited reads get 503
// unavailable, /readyz says Redis is unreachable, nothing is charged;
// Redis restarted (from its append-only file): the replicas serve again
// without a restart, with the budget spent before the kill intact.
func TestRedisOutageRefusesBudgetsAndRateLimitsThenRecovers(t *testing.T) {
	rs := startReplicas(t, 2, replicaOptions{consumerBudget: 1, datasetBudget: 50,
		extra: "rate_limits: {consumer: {rate: 1000}}"})
	counter, reader := rs.token(t, "carl", "counter"), rs.token(t, "rita", "reader")
	stats := func(u string, tag int) response {
		return get(t, fmt.Sprintf("%s/v1/town/people/stats?metric=count&epsilon=0.25&tag=%d", u, tag), counter)
	}
	for i := range 2 {
		if r := stats(rs.urls[i], i); r.status != http.StatusOK {
			t.Fatalf("release %d: %d %s", i, r.status, r.body)
		}
	}

	rs.redis.Kill()
	for i, u := range rs.urls {
		expectError(t, stats(u, 10+i), http.StatusServiceUnavailable, "unavailable")
		expectError(t, get(t, u+"/v1/town/people", reader), http.StatusServiceUnavailable, "unavailable")
		r := fetch(t, u+"/readyz", "")
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "redis connection refused") {
			t.Errorf("%s/readyz with Redis down: %d %s", u, r.status, r.body)
		}
	}

	rs.redis.Restart()
	for _, p := range rs.procs {
		waitReady(t, p, rs.urls[rs.index(p)])
	}
	if got := rs.spent(t, "carl").Consumer.Epsilon; math.Abs(got-0.5) > 1e-9 {
		t.Errorf("after the outage carl has spent ε=%v, want the 0.5 charged before it", got)
	}
	for i, u := range rs.urls {
		if r := stats(u, 20+i); r.status != http.StatusOK {
			t.Errorf("%s after Redis came back: %d %s", u, r.status, r.body)
		}
		if r := get(t, u+"/v1/town/people", reader); r.status != http.StatusOK {
			t.Errorf("%s read after Redis came back: %d %s", u, r.status, r.body)
		}
	}
	expectError(t, stats(rs.urls[0], 30), http.StatusForbidden, "privacy_budget_exhausted")
}

func (rs *replicaSet) index(p *proc) int {
	for i, q := range rs.procs {
		if q == p {
			return i
		}
	}
	return -1
}

// TestDemoStartsReplicasSharingRedis: `sluice demo --redis --replicas 2`
// lists both replicas in demo.json, and a release on one is the cached,
// already-charged answer on the other.
func TestDemoStartsReplicasSharingRedis(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	p := start(t, "demo", "--addr", "127.0.0.1:0", "--dir", dir, "--policies", "../../policies",
		"--redis", srv.Addr(), "--replicas", "2")
	d := &demoRun{proc: p, dir: dir}
	waitFor(t, p, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
		return err == nil && json.Unmarshal(b, &d.manifest) == nil
	})
	if len(d.manifest.Replicas) != 2 || d.manifest.Replicas[0] != d.manifest.Gateway || d.manifest.Replicas[0] == d.manifest.Replicas[1] {
		t.Fatalf("demo.json replicas %v, gateway %s", d.manifest.Replicas, d.manifest.Gateway)
	}
	for _, u := range d.manifest.Replicas {
		waitReady(t, p, u)
	}
	const q = "/v1/civil/assistance/stats?metric=count&group_by=district&epsilon=0.5"
	first := get(t, d.manifest.Replicas[0]+q, d.manifest.Tokens["public"])
	second := get(t, d.manifest.Replicas[1]+q, d.manifest.Tokens["public"])
	var a, b statsAnswer
	json.Unmarshal(first.body, &a)
	json.Unmarshal(second.body, &b)
	if first.status != 200 || second.status != 200 || a.Cached || !b.Cached || !b.Remaining.Consumer.is(4.5) {
		t.Errorf("release on r1 %d %+v, repeat on r2 %d %+v", first.status, a, second.status, b)
	}
	if !strings.Contains(p.stdout.String(), "--replica r1") {
		t.Errorf("the demo does not say how to verify a replica's trail:\n%s", p.stdout.String())
	}
}

// TestEmbeddedStateRevokesThroughTheGateway: with bbolt the running
// gateway holds the state file, so `sluice token revoke --config` says to
// go through the gateway, and --gateway with an officer's token works.
func TestEmbeddedStateRevokesThroughTheGateway(t *testing.T) {
	d := startDemo(t, t.TempDir())
	tok := d.manifest.Tokens["analyst"]
	_, _, err := runCmd(t, "token", "revoke", "--config", filepath.Join(d.dir, "sluice.yaml"), "--jti", jti(t, tok))
	if err == nil || !strings.Contains(err.Error(), "--gateway") {
		t.Errorf("revoke --config with the gateway running: %v, want advice to use --gateway", err)
	}
	if _, _, err := runCmd(t, "token", "revoke", "--gateway", d.manifest.Gateway, "--token", d.manifest.Tokens["analyst"],
		"--jti", jti(t, tok)); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("an analyst revoked a token: %v", err)
	}
	if _, _, err := runCmd(t, "token", "revoke", "--gateway", d.manifest.Gateway, "--token", d.manifest.Tokens["officer"],
		"--jti", jti(t, tok)); err != nil {
		t.Fatalf("an officer's revocation: %v", err)
	}
	expectError(t, get(t, d.manifest.Gateway+"/v1/health/visits", tok), http.StatusUnauthorized, "unauthenticated")
	rec := auditRecords(t, filepath.Join(d.dir, "audit"))
	last := rec[len(rec)-2] // the refusal above comes after the revocation
	if last["action"] != "revoke" || last["decision"] != "allow" || last["subject"] != "oscar" {
		t.Errorf("the revocation's audit record: %v", last)
	}
}

// TestRedisWitnessRevealsACutReplicaTrail: a replica's trail cut short,
// its checkpoints with it, passes a verification that trusts only its own
// files; against the checkpoint the replica left in Redis it fails, and
// the replica refuses to start on it.
func TestRedisWitnessRevealsACutReplicaTrail(t *testing.T) {
	rs := startReplicas(t, 2, replicaOptions{consumerBudget: 5, datasetBudget: 50})
	tok := rs.token(t, "rita", "reader")
	for i := range 20 {
		get(t, rs.urls[i%2]+"/v1/town/people", tok)
	}
	for _, p := range rs.procs {
		p.stop(t)
	}
	trail := filepath.Join(rs.dir, "audit-r2")
	segment := filepath.Join(trail, "trail-00000001.jsonl")
	b, err := os.ReadFile(segment)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	os.WriteFile(segment, []byte(strings.Join(lines[:4], "")), 0o600)
	os.WriteFile(filepath.Join(trail, "checkpoints.jsonl"), nil, 0o600)

	pub := filepath.Join(rs.dir, checkpointVerifyFile)
	if out, _, err := runCmd(t, "audit", "verify", "--dir", trail, "--pubkey", pub); err != nil {
		t.Fatalf("on its own files alone the cut trail should verify: %v\n%s", err, out)
	}
	out, _, err := runCmd(t, "audit", "verify", "--dir", trail, "--pubkey", pub, "--redis", rs.redis.Addr(), "--replica", "r2")
	if exitCode(err) != 1 || !strings.Contains(out, "FAIL") || !strings.Contains(out, "witness") {
		t.Errorf("against its Redis witness the cut trail: exit %d\n%s", exitCode(err), out)
	}
	if out, _, err := runCmd(t, "audit", "verify", "--dir", filepath.Join(rs.dir, "audit-r1"), "--pubkey", pub,
		"--redis", rs.redis.Addr(), "--replica", "r1"); err != nil {
		t.Errorf("the intact replica r1: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr syncBuffer
	err = run(ctx, []string{"serve", "--config", rs.cfgs[1]}, &syncBuffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "witness holds checkpoint") {
		t.Errorf("the replica started on its cut trail: %v", err)
	}
}
