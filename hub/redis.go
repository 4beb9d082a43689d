package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/state"
)

// Redis is the [Store] that gateway replicas share. It takes a
// redis.UniversalClient, so one server, Sentinel and Cluster all work.
//
// Every key is under one hash tag, {PREFIX:hub}, so that one Cluster slot
// holds the hub and a Lua script can compare and write a request, the
// grant its approval makes and the grants' version at once (or an
// objection and the notices its correction sends). A hub holds
// thousands of objects, not millions: one slot is plenty, and listing
// reads every object of a kind (SMEMBERS, then MGET) and filters them.
//
// Keys: {P:hub}:requests (a set of ids) and {P:hub}:requests:ID (the
// request as JSON), the same for grants, demands, objections (their text
// sealed: see [Objection]) and notices, and {P:hub}:grants_version.
// Replicas learn of grant changes by polling GrantsVersion (one GET), not
// by pub/sub, which the shipped ACL user (deploy/redis.conf,
// resetchannels) may not use.
//
// Durability is the server's, as for the budget ledger: appendonly yes,
// appendfsync always, maxmemory-policy noeviction (state.Redis.CheckConfig
// reports servers set otherwise).
type Redis struct {
	store
	c   redis.UniversalClient
	tag string
}

var _ Store = (*Redis)(nil)

// RedisOptions tune a [Redis].
type RedisOptions struct {
	// Prefix starts every key (default "sluice"), as state.RedisOptions's
	// does; it must not hold { or }.
	Prefix string
}

// NewRedis returns the hub kept by the server(s) c talks to. The caller
// keeps c and closes it.
func NewRedis(c redis.UniversalClient, o RedisOptions) (*Redis, error) {
	if o.Prefix == "" {
		o.Prefix = "sluice"
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("hub: redis key prefix %q must not hold { or }", o.Prefix)
	}
	r := &Redis{c: c, tag: "{" + o.Prefix + ":hub}"}
	r.store = store{(*redisDocs)(r)}
	return r, nil
}

// redisDocs is Redis's documents, off Redis's exported surface.
type redisDocs Redis

// index is the set of ids of kind k; key the key of one document. An id
// cannot make a document's key another's: the kind comes first, and an
// index key has no ":" after it.
func (r *redisDocs) index(k kind) string          { return r.tag + ":" + string(k) }
func (r *redisDocs) key(k kind, id string) string { return r.tag + ":" + string(k) + ":" + id }
func (r *redisDocs) versionKey() string           { return r.tag + ":grants_version" }

// fail wraps a Redis error as a state.UnavailableError, which the gateway
// already answers as a backend that cannot be reached (503).
func fail(op string, err error) error {
	reason := "unreachable"
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		reason = "timed out"
	}
	return fmt.Errorf("hub: redis %s: %w", op, &state.UnavailableError{Backend: "redis", Reason: reason, Err: err})
}

func (r *redisDocs) get(ctx context.Context, k kind, id string) ([]byte, error) {
	if id == "" {
		return nil, ErrNotFound
	}
	b, err := r.c.Get(ctx, r.key(k, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fail("get", err)
	}
	return b, nil
}

func (r *redisDocs) all(ctx context.Context, k kind) ([][]byte, error) {
	ids, err := r.c.SMembers(ctx, r.index(k)).Result()
	if err != nil {
		return nil, fail("list", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.key(k, id)
	}
	vals, err := r.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fail("list", err)
	}
	out := make([][]byte, 0, len(vals))
	for _, v := range vals {
		if s, ok := v.(string); ok {
			out = append(out, []byte(s))
		}
	}
	return out, nil
}

// casScript writes documents if each is still as the caller read it,
// and none if one is not. KEYS: the grants' version, then for each
// document its key and its kind's index. ARGV: a new version ("" to keep
// the version), then for each document its id, the body it must have now
// ("" for none: a new document) and its new body. Returns 1 when written,
// 0 when a document had changed.
var casScript = redis.NewScript(`
local n = (#KEYS - 1) / 2
for i = 1, n do
  local cur = redis.call('GET', KEYS[2 * i]) or ''
  if cur ~= ARGV[3 * i] then return 0 end
end
for i = 1, n do
  redis.call('SET', KEYS[2 * i], ARGV[3 * i + 1])
  redis.call('SADD', KEYS[2 * i + 1], ARGV[3 * i - 1])
end
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
`)

// cas runs casScript over ds, each of which must have body olds[i] now.
func (r *redisDocs) cas(ctx context.Context, ds []doc, olds []string, bump bool) (bool, error) {
	keys := []string{r.versionKey()}
	args := []any{""}
	if bump {
		args[0] = newVersion()
	}
	for i, d := range ds {
		keys = append(keys, r.key(d.kind, d.id), r.index(d.kind))
		args = append(args, d.id, olds[i], d.body)
	}
	n, err := casScript.Run(ctx, r.c, keys, args...).Int()
	if err != nil {
		return false, fail("write", err)
	}
	return n == 1, nil
}

func (r *redisDocs) create(ctx context.Context, ds []doc) error {
	ok, err := r.cas(ctx, ds, make([]string, len(ds)), holdsGrant("", ds))
	if err != nil {
		return err
	}
	if !ok {
		return refuse(ErrConflict, "an id is taken")
	}
	return nil
}

// update reads the document, runs change and writes its outcome with
// casScript, compared against the body read; when another write came in
// between, it reads again and runs change on what is there now.
func (r *redisDocs) update(ctx context.Context, k kind, id string, change func([]byte) ([]byte, []doc, error)) error {
	for range maxRetries {
		cur, err := r.get(ctx, k, id)
		if err != nil {
			return err
		}
		body, created, err := change(cur)
		if err != nil {
			return err
		}
		ds := append([]doc{{kind: k, id: id, body: body}}, created...)
		olds := make([]string, len(ds))
		olds[0] = string(cur)
		ok, err := r.cas(ctx, ds, olds, holdsGrant(k, created))
		if err != nil || ok {
			return err
		}
	}
	return errContention
}

func (r *redisDocs) version(ctx context.Context) (string, error) {
	v, err := r.c.Get(ctx, r.versionKey()).Result()
	if errors.Is(err, redis.Nil) {
		// A server that lost its data has no version, which differs from
		// any a replica holds: it reloads.
		return "", nil
	}
	if err != nil {
		return "", fail("grants version", err)
	}
	return v, nil
}
