package usage

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/redistest"
)

// The Redis index runs the conformance suite against a real redis-server
// in each topology redistest starts (one server, a one-node Cluster,
// which refuses a script whose keys lie in different slots, and a
// Sentinel); each index the suite asks for is a fresh key prefix. Without
// redis-server the tests skip, except under CI, where they fail.

var prefixes atomic.Int64

func redisIndex(t testing.TB, c redis.UniversalClient) *Redis {
	t.Helper()
	r, err := NewRedis(c, fmt.Sprintf("t%d", prefixes.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedis(t *testing.T) {
	for _, topo := range redistest.Topologies() {
		t.Run(topo.Name, func(t *testing.T) {
			c := topo.Client(t)
			testIndex(t, func(t *testing.T) Index { return redisIndex(t, c) })
		})
	}
}

func TestRedisResetLeavesOtherPrefixesAlone(t *testing.T) {
	c := redistest.StartCluster(t).Client()
	one, other := redisIndex(t, c), redisIndex(t, c)
	add(t, one, entry("", 1, 0, "alice"))
	add(t, other, entry("", 1, 0, "alice"))
	if err := one.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := byUnit(t, one, "alice", time.Time{}, time.Time{}); len(got) != 0 {
		t.Errorf("the reset index holds %v", seqs(got))
	}
	if got := byUnit(t, other, "alice", time.Time{}, time.Time{}); len(got) != 1 {
		t.Errorf("the other index holds %v, want its release", seqs(got))
	}
}

func TestRedisNamesACorruptReleaseInsteadOfPanicking(t *testing.T) {
	c := redistest.Start(t).Client()
	r := redisIndex(t, c)
	add(t, r, entry("gw-1", 7, 0, "alice"))
	if err := c.HSet(context.Background(), r.releasesKey(), "gw-1:7", `{"seq":`).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := r.ByUnit(context.Background(), "alice", time.Time{}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), `corrupt release "gw-1:7"`) {
		t.Errorf("ByUnit of a corrupt release = %v, want an error naming it", err)
	}
}

func TestNewRedisRefusesABracedPrefix(t *testing.T) {
	if _, err := NewRedis(nil, "a{b"); err == nil {
		t.Error("NewRedis accepted a prefix holding {")
	}
}
