package hub

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/redistest"
)

// The Redis store runs the conformance suite against a real redis-server
// in each topology redistest starts (one server, a one-node Cluster, a
// Sentinel); each store the suite asks for is a fresh key prefix. Without
// redis-server the tests skip, except under CI, where they fail.

var prefixes atomic.Int64

func redisStore(t *testing.T, c redis.UniversalClient) *Redis {
	t.Helper()
	r, err := NewRedis(c, RedisOptions{Prefix: fmt.Sprintf("t%d", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// redisBytes are the values of every key under the store's hash tag,
// as the server holds them: strings as they are, sets' members.
func redisBytes(t *testing.T, s Store) []byte {
	t.Helper()
	ctx := context.Background()
	r := s.(*Redis)
	keys, err := r.c.Keys(ctx, r.tag+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, k := range keys {
		switch typ, _ := r.c.Type(ctx, k).Result(); typ {
		case "string":
			v, err := r.c.Get(ctx, k).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v...)
		case "set":
			ms, err := r.c.SMembers(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.Join(ms, "\x00")...)
		default:
			t.Fatalf("key %s holds a %s", k, typ)
		}
	}
	return out
}

func TestRedisStore(t *testing.T) {
	for _, topo := range redistest.Topologies() {
		t.Run(topo.Name, func(t *testing.T) {
			c := topo.Client(t)
			testStore(t, func(t *testing.T) Store { return redisStore(t, c) }, redisBytes)
		})
	}
}

// TestRedisReplicasShareGrantsAndTheirVersion: a grant one replica
// revokes is revoked for another at its next poll of the version.
func TestRedisReplicasShareGrantsAndTheirVersion(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	one, err := NewRedis(srv.Client(), RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	two, _ := NewRedis(srv.Client(), RedisOptions{})
	g := testGrant(Active, t0.AddDate(0, 1, 0))
	r := testRequest(Approved)
	r.Grant = g.ID
	if err := one.CreateRequest(ctx, r, g); err != nil {
		t.Fatal(err)
	}
	held, _ := two.GrantsVersion(ctx)
	if _, err := New(one, Options{}).ActOnGrant(ctx, g.ID, Act{Action: Revoke, Reason: "misuse"}, sam); err != nil {
		t.Fatal(err)
	}
	if v, _ := two.GrantsVersion(ctx); v == held {
		t.Fatal("the other replica sees the same grants version after a revocation")
	}
	if got, _ := two.Grant(ctx, g.ID); got.State != Revoked {
		t.Errorf("the other replica reads the grant %s", got.State)
	}
	keys, _ := srv.Client().Keys(ctx, "*").Result()
	for _, k := range keys {
		if !strings.HasPrefix(k, "{sluice:hub}:") {
			t.Errorf("key %q is outside the hub's hash tag", k)
		}
	}
}

func TestRedisPrefixMayNotBreakTheHashTag(t *testing.T) {
	if _, err := NewRedis(nil, RedisOptions{Prefix: "a}b"}); err == nil {
		t.Error("a prefix holding } was taken")
	}
}

// TestShippedACLUserCanKeepTheHub runs the hub's Redis calls as the ACL
// user deploy/redis.conf suggests for the gateway.
func TestShippedACLUserCanKeepTheHub(t *testing.T) {
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
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "sluice", Password: "CHANGE-ME"})
	defer c.Close()
	s, err := NewRedis(c, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := New(s, Options{})
	o, err := h.Submit(ctx, testRequest("").Submission, Dataset{Name: "health/visits", Sharing: Conditional, Owner: "health"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ActOnRequest(ctx, o.Request.ID, Act{Action: Approve}, sam); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grants(ctx, Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GrantsVersion(ctx); err != nil {
		t.Fatal(err)
	}
}
