package state

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/internal/redistest"
)

// The Redis backend runs the conformance suites against a real
// redis-server: alone, as a one-node Cluster (which refuses a script whose
// keys are in different slots) and behind a Sentinel. Each backend
// the suites ask for is a fresh key prefix on the one server.

var prefixes atomic.Int64

func redisBackend(t *testing.T, c redis.UniversalClient) *Redis {
	t.Helper()
	r, err := NewRedis(c, RedisOptions{Prefix: fmt.Sprintf("t%d", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedisConformance(t *testing.T) {
	for _, mode := range redistest.Topologies() {
		t.Run(mode.Name, func(t *testing.T) {
			c := mode.Client(t)
			t.Run("ledger", func(t *testing.T) { testLedger(t, func(t *testing.T) Ledger { return redisBackend(t, c) }) })
			t.Run("cache", func(t *testing.T) { testCache(t, func(t *testing.T) Cache { return redisBackend(t, c) }) })
			t.Run("revocations", func(t *testing.T) {
				testRevocations(t, func(t *testing.T) Revocations { return redisBackend(t, c) })
			})
			t.Run("limiter", func(t *testing.T) { testLimiter(t, func(t *testing.T) Limiter { return redisBackend(t, c) }) })
		})
	}
}

// TestRedisChargesByTheLedgersOneRule runs random charges, of one to
// eight accounts in random order, against Redis and Memory side by side:
// the Lua script and plan.apply must agree on every outcome, every
// account named short and every amount spent.
func TestRedisChargesByTheLedgersOneRule(t *testing.T) {
	ctx := context.Background()
	r, m := redisBackend(t, redistest.Start(t).Client()), NewMemory()
	rng := rand.New(rand.NewPCG(1, 2))
	scopes := []string{"a/x", "a/y"}
	keys := []string{"analysts", "public", "alice", "bob", "carol", "dave", "acme", "initech"}
	var charged []Charge
	refused := 0
	for i := range 600 {
		c := Charge{
			RequestID: fmt.Sprint("r", i),
			Scope:     scopes[rng.IntN(len(scopes))],
			Cost:      Budget{Epsilon: float64(1+rng.IntN(50)) / 100, Delta: float64(rng.IntN(3)) * 1e-7},
		}
		n := 1 + rng.IntN(4)
		if rng.IntN(20) == 0 {
			n = maxAccounts
		}
		for _, k := range rng.Perm(len(keys))[:n] {
			c.Accounts = append(c.Accounts, Account{Key: keys[k],
				Cap: Budget{Epsilon: float64(1+rng.IntN(40)) / 2, Delta: float64(1+rng.IntN(40)) * 1e-7}})
		}
		if n := len(charged); n > 0 {
			switch p := rng.IntN(10); {
			case p == 0: // a retry
				c = charged[rng.IntN(n)]
			case p == 1: // a request id reused for another charge
				c.RequestID = charged[rng.IntN(n)].RequestID
			}
		}
		want, wantErr := m.Charge(ctx, c)
		got, gotErr := r.Charge(ctx, c)
		var wx, gx *ExhaustedError
		switch {
		case errors.As(wantErr, &wx):
			if !errors.As(gotErr, &gx) || gx.Account != wx.Account || !cmp.Equal(gx.Spent, wx.Spent, approx) {
				t.Fatalf("charge %d %+v: redis %v, memory %v", i, c, gotErr, wantErr)
			}
			refused++
		case !errors.Is(gotErr, wantErr):
			t.Fatalf("charge %d %+v: redis %v, memory %v", i, c, gotErr, wantErr)
		case !cmp.Equal(got, want, approx):
			t.Fatalf("charge %d %+v: redis %+v, memory %+v", i, c, got, want)
		case wantErr == nil && !want.Replayed:
			charged = append(charged, c)
		}
	}
	if len(charged) < 100 || refused < 100 {
		t.Errorf("%d of 600 charges went through and %d were refused: too few of either to compare", len(charged), refused)
	}
	for _, scope := range scopes {
		if diff := cmp.Diff(mustSpent(t, m, scope, keys...), mustSpent(t, r, scope, keys...), approx); diff != "" {
			t.Errorf("%s (-memory +redis):\n%s", scope, diff)
		}
	}
}

// TestClusterFixtureRefusesCrossSlotScripts makes sure the one-node
// cluster the conformance suite runs on would catch keys in two slots.
func TestClusterFixtureRefusesCrossSlotScripts(t *testing.T) {
	c := redistest.StartCluster(t).Client()
	err := c.Eval(context.Background(), "return redis.call('MGET', KEYS[1], KEYS[2])", []string{"a", "b"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("a script over two slots: %v, want CROSSSLOT", err)
	}
}

// TestRedisLedgerSurvivesAKilledServer: with the shipped configuration
// (appendfsync always), every charge acknowledged before a SIGKILL is
// there after the restart, and its request id still replays.
func TestRedisLedgerSurvivesAKilledServer(t *testing.T) {
	srv := redistest.Start(t)
	r := redisBackend(t, srv.Client())
	accounts := []Account{acct("analysts", 50), acct("alice", 10)}
	for i := range 20 {
		mustCharge(t, r, charge(fmt.Sprint("r", i), "health/visits", 0.25, accounts...))
	}
	srv.Kill()
	_, err := r.Charge(context.Background(), charge("r-down", "health/visits", 0.25, accounts...))
	var down *UnavailableError
	if !errors.As(err, &down) || down.Reason != "connection refused" {
		t.Fatalf("charge with Redis down: %v, want an UnavailableError saying connection refused", err)
	}
	if err := r.Ping(context.Background()); !errors.As(err, &down) {
		t.Errorf("Ping with Redis down: %v", err)
	}
	srv.Restart()
	if diff := cmp.Diff(epsilons(5, 5), mustSpent(t, r, "health/visits", "analysts", "alice"), approx); diff != "" {
		t.Errorf("after a kill and restart, spent (-want +got):\n%s", diff)
	}
	rc := mustCharge(t, r, charge("r7", "health/visits", 0.25, accounts...))
	if diff := cmp.Diff(Receipt{Spent: epsilons(2, 2), Replayed: true}, rc, approx); diff != "" {
		t.Errorf("after a kill and restart, a retried charge (-want +got):\n%s", diff)
	}
	if got := r.CheckConfig(context.Background()); len(got) != 0 {
		t.Errorf("the shipped redis.conf draws warnings: %q", got)
	}
}

func TestRedisCheckConfigWarnsOfLossySettings(t *testing.T) {
	c := redistest.Start(t).Client()
	ctx := context.Background()
	for k, v := range map[string]string{"appendfsync": "everysec", "maxmemory-policy": "allkeys-lru"} {
		if err := c.ConfigSet(ctx, k, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(redisBackend(t, c).CheckConfig(ctx), "\n")
	for _, want := range []string{`appendfsync is "everysec"`, `maxmemory-policy is "allkeys-lru"`} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings %q do not say %s", got, want)
		}
	}
}

// signedTrail writes n records to a trail in dir, checkpointed every 10
// records and witnessed by w.
func signedTrail(t *testing.T, dir string, key ed25519.PrivateKey, w audit.Witness, n int) {
	t.Helper()
	signedTrailWith(t, dir, audit.Options{CheckpointKey: key, CheckpointEvery: 10, CheckpointInterval: -1, Witness: w}, n)
}

// signedTrailWith writes n records to a trail opened with opts.
func signedTrailWith(t *testing.T, dir string, opts audit.Options, n int) {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	l, err := audit.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Append(context.Background(), &audit.Event{RequestID: fmt.Sprint("q", i), Action: "read", Decision: "allow"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRedisWitnessRevealsATruncatedReplicaTrail: a replica's trail and its
// checkpoints cut back together verify as a chain on their own, but not
// against the checkpoint the replica left in Redis; nor does the replica
// open the cut trail again.
func TestRedisWitnessRevealsATruncatedReplicaTrail(t *testing.T) {
	ctx := context.Background()
	r := redisBackend(t, redistest.Start(t).Client())
	pub, key, _ := ed25519.GenerateKey(nil)
	w1, _ := r.Witness("gw-1")
	w2, _ := r.Witness("gw-2")
	dir1, dir2 := t.TempDir(), t.TempDir()
	signedTrail(t, dir1, key, w1, 35)
	signedTrail(t, dir2, key, w2, 12)

	held, ok, err := w1.Latest(ctx)
	if err != nil || !ok || held.Seq != 35 {
		t.Fatalf("witness of gw-1 holds %+v, %v, %v; want the checkpoint of seq 35", held, ok, err)
	}
	if other, _, _ := w2.Latest(ctx); other.Seq != 12 {
		t.Fatalf("witness of gw-2 holds seq %d, want 12: replicas must not share a witness", other.Seq)
	}

	// Cut gw-1's trail after record 20 and its checkpoints after the
	// second: what remains is a consistent, shorter trail.
	cutLines(t, filepath.Join(dir1, "trail-00000001.jsonl"), 20)
	cutLines(t, filepath.Join(dir1, "checkpoints.jsonl"), 2)
	rep, err := audit.Verify(ctx, dir1, audit.VerifyOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil || !rep.OK {
		t.Fatalf("without the witness the cut trail should verify: %+v, %v", rep, err)
	}
	rep, err = audit.Verify(ctx, dir1, audit.VerifyOptions{Keys: []ed25519.PublicKey{pub}, Witness: w1})
	if err != nil || rep.OK || rep.Bad == nil || !strings.Contains(rep.Bad.Reason, "witness") {
		t.Errorf("against the Redis witness the cut trail verified: %+v, %v", rep, err)
	}
	_, err = audit.Open(dir1, audit.Options{CheckpointKey: key, Witness: w1, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "witness holds checkpoint") {
		t.Errorf("the replica reopened its cut trail: %v", err)
	}
	if rep, err := audit.Verify(ctx, dir2, audit.VerifyOptions{Keys: []ed25519.PublicKey{pub}, Witness: w2}); err != nil || !rep.OK {
		t.Errorf("the intact replica's trail: %+v, %v", rep, err)
	}
}

func TestRedisWitnessOnlyMovesForward(t *testing.T) {
	ctx := context.Background()
	r := redisBackend(t, redistest.Start(t).Client())
	_, key, _ := ed25519.GenerateKey(nil)
	w, _ := r.Witness("gw-1")
	signedTrail(t, t.TempDir(), key, w, 30)
	held, _, _ := w.Latest(ctx)
	older := held
	older.N, older.Seq = held.N-1, held.Seq-10
	if err := w.Put(ctx, older); err == nil {
		t.Error("the witness took an older checkpoint")
	}
	if err := w.Put(ctx, held); err != nil {
		t.Errorf("putting the held checkpoint again: %v", err)
	}
	unchained := held
	unchained.N, unchained.Seq, unchained.Prev = held.N+1, held.Seq+10, strings.Repeat("0", 64)
	if err := w.Put(ctx, unchained); err == nil {
		t.Error("the witness took a checkpoint that does not chain onto the held one")
	}
	if _, err := r.Witness("a}b"); err == nil {
		t.Error("a replica name that breaks the hash tag was taken")
	}
}

// cutLines keeps the first n lines of a file.
func cutLines(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:n], "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAuditStreamCarriesEveryDurableRecord: the records a trail makes
// durable reach the stream byte for byte, in order, named by replica.
func TestAuditStreamCarriesEveryDurableRecord(t *testing.T) {
	ctx := context.Background()
	c := redistest.Start(t).Client()
	r := redisBackend(t, c)
	s, err := r.Stream(StreamOptions{Replica: "gw-1", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{OnDurable: s.Offer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := l.Append(ctx, &audit.Event{RequestID: fmt.Sprint("q", i), Action: "read", Decision: "allow"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.XRange(ctx, r.prefix+":audit:stream", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	trail, _ := os.ReadFile(filepath.Join(dir, "trail-00000001.jsonl"))
	lines := strings.Split(strings.TrimSuffix(string(trail), "\n"), "\n")
	if len(msgs) != len(lines) || s.Published() != 50 || s.Dropped() != 0 {
		t.Fatalf("%d stream entries, %d published, %d dropped; want 50, 50, 0", len(msgs), s.Published(), s.Dropped())
	}
	for i, m := range msgs {
		want := map[string]any{"replica": "gw-1", "seq": fmt.Sprint(i + 1), "record": lines[i]}
		if diff := cmp.Diff(want, m.Values); diff != "" {
			t.Fatalf("entry %d (-want +got):\n%s", i, diff)
		}
	}
}

// TestAuditStreamNeverHoldsUpTheTrail: with Redis down, records keep
// becoming durable at once; the stream drops what its queue cannot hold,
// counts it, and delivers again when Redis is back.
func TestAuditStreamNeverHoldsUpTheTrail(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client()
	r := redisBackend(t, c)
	s, err := r.Stream(StreamOptions{Replica: "gw-1", Queue: 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	l, err := audit.Open(t.TempDir(), audit.Options{OnDurable: s.Offer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv.Kill()
	start := time.Now()
	for i := range 100 {
		if err := l.Append(ctx, &audit.Event{RequestID: fmt.Sprint("q", i), Action: "read", Decision: "allow"}); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("100 appends took %v with Redis down", took)
	}
	if s.Dropped() < 80 {
		t.Errorf("%d records dropped, want at least 80 of 100 with a queue of 10", s.Dropped())
	}
	srv.Restart()
	l.Append(ctx, &audit.Event{RequestID: "after", Action: "read", Decision: "allow"})
	deadline := time.Now().Add(10 * time.Second)
	for s.Queued() > 0 || s.Published() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing delivered after Redis came back: %d queued, %d published", s.Queued(), s.Published())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShippedACLUserCanDoWhatTheGatewayDoes runs every kind of Redis call
// the gateway makes as the ACL user deploy/redis.conf suggests, so that
// the suggestion cannot rot.
func TestShippedACLUserCanDoWhatTheGatewayDoes(t *testing.T) {
	conf, err := os.ReadFile("../deploy/redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	var user []string
	for _, line := range strings.Split(string(conf), "\n") {
		if rest, ok := strings.CutPrefix(line, "# user sluice on "); ok {
			user = append([]string{"--user", "sluice", "on"}, strings.Fields(rest)...)
		}
	}
	if user == nil {
		t.Fatal("deploy/redis.conf suggests no ACL user sluice")
	}
	srv := redistest.StartWith(t, user...)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "sluice", Password: "CHANGE-ME", ClientName: "sluice"})
	defer c.Close()
	r, err := NewRedis(c, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustCharge(t, r, charge("r1", "health/visits", 1, acct("analysts", 50), acct("alice", 5)))
	mustSpent(t, r, "health/visits", "analysts", "alice")
	for name, err := range map[string]error{
		"store answer": func() error { _, err := r.StoreAnswer(ctx, "q", []byte("a")); return err }(),
		"answer":       func() error { _, _, err := r.Answer(ctx, "q"); return err }(),
		"revoke":       r.Revoke(ctx, "jti", time.Now().Add(time.Hour)),
		"revoked":      func() error { _, err := r.Revoked(ctx, ""); return err }(),
		"rate limit": func() error {
			_, err := r.Allow(ctx, "consumer:alice", Rate{Limit: 1, Per: time.Second, Burst: 1})
			return err
		}(),
		"ping": r.Ping(ctx),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if w := r.CheckConfig(ctx); len(w) != 0 {
		t.Errorf("CONFIG GET as the ACL user: %q", w)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	w, _ := r.Witness("gw-1")
	s, _ := r.Stream(StreamOptions{Replica: "gw-1", Logger: slog.New(slog.DiscardHandler)})
	signedTrailWith(t, t.TempDir(), audit.Options{CheckpointKey: key, Witness: w, OnDurable: s.Offer}, 3)
	s.Close(ctx)
	if _, ok, err := w.Latest(ctx); !ok || err != nil {
		t.Errorf("witness as the ACL user: %v, %v", ok, err)
	}
	if s.Published() != 3 {
		t.Errorf("stream as the ACL user: %d published", s.Published())
	}
	if err := c.FlushAll(ctx).Err(); err == nil {
		t.Error("the ACL user may FLUSHALL")
	}
}
