package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the shared [Index] of gateway replicas: any replica answers
// for the releases of all. It takes a redis.UniversalClient, so one
// server, Sentinel and Cluster all work.
//
// Every key is under one hash tag, {PREFIX:usage}, so that one Cluster
// slot holds the index and an Add is one Lua script that writes a
// release, its people's and records' sorted sets and the head at once:
// all or nothing, without a cross-slot write. Tagging by person instead
// would spread the index over the cluster, but an Add would then write
// twenty slots and could stop half done. The index takes about 1 KB of
// server memory a release (BenchmarkIndex: 10^5 releases of 20 people
// each); a person's sorted set takes more once it passes the server's
// zset-max-listpack-entries (128) releases, so a million releases should
// take one to two gigabytes: one server's worth.
//
// Keys, P the prefix:
//
//   - {P:usage}:rel, a hash: "replica:seq" → the Release as JSON.
//   - {P:usage}:u:UNIT, a sorted set of a person's releases, members
//     "replica:seq", scored by Time in Unix milliseconds (exactly
//     representable in a float64; lookups filter by the exact time).
//   - {P:usage}:r:DATASET:RECORD, the same for a record (a record hash
//     holds no colon, so the key is unambiguous).
//   - {P:usage}:heads, a hash: replica → the highest seq added from it.
//
// Durability is the server's (appendonly yes, appendfsync always; see
// deploy/redis.conf).
type Redis struct {
	c   redis.UniversalClient
	tag string
}

var _ Index = (*Redis)(nil)

// scriptEntries bounds the entries one script call adds, so that a
// rebuild's large Adds do not hold the server, which the budget ledger
// and the rate limits share, for long: a script of 500 releases of 20
// people each ran 24–43 ms (SLOWLOG, on the test VM), one of 100 about a
// fifth of that.
const scriptEntries = 100

// NewRedis returns the index kept by the server(s) c talks to, under
// prefix (default "sluice"), which must not hold { or }. The caller keeps
// c and closes it.
func NewRedis(c redis.UniversalClient, prefix string) (*Redis, error) {
	if prefix == "" {
		prefix = "sluice"
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("usage: redis key prefix %q must not hold { or }", prefix)
	}
	return &Redis{c: c, tag: "{" + prefix + ":usage}"}, nil
}

func (r *Redis) releasesKey() string                  { return r.tag + ":rel" }
func (r *Redis) headsKey() string                     { return r.tag + ":heads" }
func (r *Redis) unitKey(unit string) string           { return r.tag + ":u:" + unit }
func (r *Redis) recordKey(dataset, rec string) string { return r.tag + ":r:" + dataset + ":" + rec }

// addScript adds releases. KEYS: the releases hash, the heads hash, then
// each release's unit and record keys. ARGV: for each release its member,
// JSON, score, replica, seq and how many keys of KEYS are its. A release
// already held keeps its JSON and scores (HSETNX, ZADD NX); added again
// as it is, its sorted sets are written again, so that a catch-up mends an
// index a Reset stopped half-way through.
var addScript = redis.NewScript(`
local rel, heads = KEYS[1], KEYS[2]
local k, a = 3, 1
while a <= #ARGV do
  local member, doc, score, replica, seq = ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4]
  local n = tonumber(ARGV[a+5])
  a = a + 6
  if redis.call('HSETNX', rel, member, doc) == 1 or redis.call('HGET', rel, member) == doc then
    for i = k, k + n - 1 do
      redis.call('ZADD', KEYS[i], 'NX', score, member)
    end
  end
  k = k + n
  local cur = redis.call('HGET', heads, replica)
  if not cur or tonumber(seq) > tonumber(cur) then
    redis.call('HSET', heads, replica, seq)
  end
end
return 0
`)

// Add implements [Index]. Each script call of up to scriptEntries entries
// is atomic; a larger Add that fails may have added some of its entries,
// which adding them again completes.
func (r *Redis) Add(ctx context.Context, entries ...Entry) error {
	if err := checkAll(entries); err != nil {
		return err
	}
	for len(entries) > 0 {
		n := min(len(entries), scriptEntries)
		if err := r.add(ctx, entries[:n]); err != nil {
			return fmt.Errorf("usage: redis add %d release(s): %w", n, err)
		}
		entries = entries[n:]
	}
	return nil
}

func (r *Redis) add(ctx context.Context, entries []Entry) error {
	keys := []string{r.releasesKey(), r.headsKey()}
	args := make([]any, 0, 6*len(entries))
	for i := range entries {
		e := &entries[i]
		doc, err := json.Marshal(&e.Release)
		if err != nil {
			return fmt.Errorf("encode release %s: %w", e.key(), err)
		}
		for _, u := range e.Units {
			keys = append(keys, r.unitKey(u))
		}
		for _, rec := range e.Records {
			keys = append(keys, r.recordKey(e.Dataset, rec))
		}
		args = append(args, e.key(), doc, e.Time.UnixMilli(), e.Replica, e.Seq, len(e.Units)+len(e.Records))
	}
	return addScript.Run(ctx, r.c, keys, args...).Err()
}

// lookupScript reads a sorted set's releases. KEYS: the sorted set, the
// releases hash. ARGV: the score range. Returns member, JSON pairs (false
// for a member the hash lacks). One script, so that a lookup and an Add
// never interleave; HMGET in parts, as Lua's unpack takes a few thousand
// values at most.
var lookupScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2])
local out = {}
for i = 1, #ids, 1000 do
  local part = {}
  for j = i, math.min(i + 999, #ids) do part[#part + 1] = ids[j] end
  local docs = redis.call('HMGET', KEYS[2], unpack(part))
  for j = 1, #part do
    out[#out + 1] = part[j]
    out[#out + 1] = docs[j]
  end
end
return out
`)

// ByUnit implements [Index]. An unknown unit has none: an empty, non-nil
// slice.
func (r *Redis) ByUnit(ctx context.Context, unit string, since, until time.Time) ([]Release, error) {
	rels, err := r.lookup(ctx, r.unitKey(unit), since, until)
	if err != nil {
		return nil, fmt.Errorf("usage: redis releases of unit %s: %w", unit, err)
	}
	return rels, nil
}

// ByRecord implements [Index].
func (r *Redis) ByRecord(ctx context.Context, dataset, record string) ([]Release, error) {
	rels, err := r.lookup(ctx, r.recordKey(dataset, record), time.Time{}, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("usage: redis releases of record %s in %s: %w", record, dataset, err)
	}
	return rels, nil
}

func (r *Redis) lookup(ctx context.Context, key string, since, until time.Time) ([]Release, error) {
	// Scores are whole milliseconds: the range takes every millisecond
	// the period touches, and the exact times decide.
	lo, hi := "-inf", "+inf"
	if !since.IsZero() {
		lo = strconv.FormatInt(since.UnixMilli(), 10)
	}
	if !until.IsZero() {
		hi = strconv.FormatInt(until.UnixMilli(), 10)
	}
	reply, err := lookupScript.Run(ctx, r.c, []string{key, r.releasesKey()}, lo, hi).Slice()
	if err != nil {
		return nil, err
	}
	if len(reply)%2 != 0 {
		return nil, fmt.Errorf("the lookup script answered %d values, want pairs", len(reply))
	}
	rels := make([]Release, 0, len(reply)/2)
	for i := 0; i < len(reply); i += 2 {
		member, _ := reply[i].(string)
		doc, ok := reply[i+1].(string)
		if !ok {
			return nil, fmt.Errorf("the index lists release %q, which %s does not hold", member, r.releasesKey())
		}
		var rel Release
		if err := json.Unmarshal([]byte(doc), &rel); err != nil {
			return nil, fmt.Errorf("corrupt release %q in %s: %w", member, r.releasesKey(), err)
		}
		if within(rel.Time, since, until) {
			rels = append(rels, rel)
		}
	}
	return Ordered(rels), nil
}

// Head implements [Index].
func (r *Redis) Head(ctx context.Context, replica string) (uint64, error) {
	v, err := r.c.HGet(ctx, r.headsKey(), replica).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("usage: redis head of replica %q: %w", replica, err)
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("usage: corrupt head of replica %q in %s: %w", replica, r.headsKey(), err)
	}
	return seq, nil
}

// Reset implements [Index]. It deletes the heads first, then every other
// key under the tag, found by SCAN: not atomic, but a Reset stopped
// half-way leaves heads of 0, so that the next catch-up adds every
// release again (which mends the postings, see addScript).
func (r *Redis) Reset(ctx context.Context) error {
	if err := r.c.Del(ctx, r.headsKey()).Err(); err != nil {
		return fmt.Errorf("usage: redis reset: %w", err)
	}
	match := globEscape(r.tag) + ":*"
	del := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, match, 1000).Iterator()
		batch := make([]string, 0, 1000)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			err := c.Unlink(ctx, batch...).Err()
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	var err error
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		// The tag's slot is on one master; scanning each finds it.
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return del(ctx, c) })
	} else {
		err = del(ctx, r.c)
	}
	if err != nil {
		return fmt.Errorf("usage: redis reset: %w", err)
	}
	return nil
}

// globEscape escapes the characters SCAN's MATCH pattern gives meaning.
func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s)
}

// Close does nothing: the caller keeps the client and closes it.
func (r *Redis) Close() error { return nil }
