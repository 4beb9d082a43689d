package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Redis is the ledger, answer cache, revocation list and rate limiter that
// gateway replicas share. It takes a redis.UniversalClient, so one server,
// Sentinel (a failover client) and Cluster all work.
//
// Keys of the ledger are hash-tagged by scope, {PREFIX:SCOPE}, so that
// the accounts of a scope share a Cluster slot and one Lua script checks
// and charges all the accounts of a charge atomically. Amounts are kept in
// the ledger's fixed-point units as decimal integers.
//
// Durability is the server's: a charge is durable when Redis has it on
// disk, which takes `appendonly yes` and `appendfsync always` (Redis 7.0
// has no WAITAOF to ask for it per write), and no eviction
// (`maxmemory-policy noeviction`). [Redis.CheckConfig] reports servers set
// otherwise.
type Redis struct {
	c         redis.UniversalClient
	prefix    string
	retention time.Duration
	limiter   *redis_rate.Limiter
}

// RedisOptions tune a [Redis].
type RedisOptions struct {
	// Prefix starts every key (default "sluice"); several deployments can
	// share a server under different prefixes. It must not hold { or }.
	Prefix string
	// ChargeRetention is how long a charge's request id is remembered, so
	// that a retry within it charges nothing (0 keeps them for good, as
	// the embedded ledger does).
	ChargeRetention time.Duration
}

var (
	_ Ledger      = (*Redis)(nil)
	_ Cache       = (*Redis)(nil)
	_ Revocations = (*Redis)(nil)
	_ Limiter     = (*Redis)(nil)
)

// NewRedis returns the shared state kept by the server(s) c talks to. The
// caller keeps c and closes it.
func NewRedis(c redis.UniversalClient, o RedisOptions) (*Redis, error) {
	if o.Prefix == "" {
		o.Prefix = "sluice"
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("state: redis key prefix %q must not hold { or }", o.Prefix)
	}
	if o.ChargeRetention < 0 {
		return nil, errors.New("state: negative charge retention")
	}
	return &Redis{c: c, prefix: o.Prefix, retention: o.ChargeRetention, limiter: redis_rate.NewLimiter(c)}, nil
}

// UnavailableError says a state backend could not be reached or could not
// take a write; nothing it was asked to do is known to have happened.
type UnavailableError struct {
	// Backend is "redis".
	Backend string
	// Reason is short and safe to show (no addresses): "connection
	// refused", "timed out", "read-only replica", ...
	Reason string
	Err    error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("state: %s %s: %v", e.Backend, e.Reason, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// fail wraps a Redis error as an [UnavailableError].
func (r *Redis) fail(op string, err error) error {
	return fmt.Errorf("state: redis %s: %w", op, &UnavailableError{Backend: "redis", Reason: redisReason(err), Err: err})
}

// redisReason classifies a Redis client error without naming addresses.
func redisReason(err error) string {
	var ne net.Error
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, redis.ErrClosed):
		return "client closed"
	case strings.HasPrefix(msg, "LOADING"):
		return "loading its data"
	case strings.HasPrefix(msg, "READONLY"):
		return "read-only replica (failover in progress?)"
	case strings.HasPrefix(msg, "NOAUTH"), strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOPERM"):
		return "refused the gateway's credentials"
	case strings.HasPrefix(msg, "MISCONF"):
		return "cannot persist writes (MISCONF)"
	case strings.HasPrefix(msg, "OOM"):
		return "out of memory"
	case strings.HasPrefix(msg, "CLUSTERDOWN"), strings.HasPrefix(msg, "MASTERDOWN"), strings.HasPrefix(msg, "TRYAGAIN"):
		return "has no writable master"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), strings.Contains(msg, "EOF"):
		return "connection lost"
	}
	return "unreachable"
}

// Ping reports whether the server takes commands.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return r.fail("ping", err)
	}
	return nil
}

// CheckConfig reads the server's persistence and eviction settings and
// returns a warning for each that puts the ledger at risk. A server that
// refuses CONFIG GET (managed services, ACLs) gets one warning saying so.
func (r *Redis) CheckConfig(ctx context.Context) []string {
	want := map[string]string{"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}
	why := map[string]string{
		"appendonly":       "charges are not in the append-only file: a restart loses budgets",
		"appendfsync":      "acknowledged charges are not fsync'd: a crash can lose spent budget",
		"maxmemory-policy": "Redis may evict budget accounts and revocations when memory is full",
	}
	var warnings []string
	for _, name := range []string{"appendonly", "appendfsync", "maxmemory-policy"} {
		got, err := r.c.ConfigGet(ctx, name).Result()
		if err != nil {
			return append(warnings, fmt.Sprintf("cannot read the Redis configuration (%v): make sure of appendonly yes, appendfsync always and maxmemory-policy noeviction", err))
		}
		if v := got[name]; v != want[name] {
			warnings = append(warnings, fmt.Sprintf("redis %s is %q, want %q: %s", name, v, want[name], why[name]))
		}
	}
	return warnings
}

// tag is the hash tag of a scope's keys. The scope is escaped so that no
// scope name can close the tag early or pose as another's key.
func (r *Redis) tag(scope string) string {
	esc := strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D", ":", "%3A").Replace(scope)
	return "{" + r.prefix + ":" + esc + "}"
}

// accountKey is the key of an account. The key needs no escaping: the
// tag ends at the first }, which the escaped scope cannot hold, and
// "acct:" then "charge:" start the two kinds of key in a scope, so no
// account key is a charge record's.
func (r *Redis) accountKey(scope, key string) string { return r.tag(scope) + ":acct:" + key }

func (r *Redis) chargeKey(scope, id string) string { return r.tag(scope) + ":charge:" + id }

// requestKey binds a request id to one charge across scopes.
func (r *Redis) requestKey(id string) string { return r.prefix + ":request:" + id }

// claimScript binds a request id to a charge, or returns the charge it is
// bound to. KEYS: request key. ARGV: the charge, retention in ms (0: none).
var claimScript = redis.NewScript(`
local held = redis.call('GET', KEYS[1])
if held then return held end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return ARGV[1]
`)

// chargeScript is the ledger's check-and-charge, the rule of plan.apply:
// refuse when the first account, in the charge's order, would pass its
// cap in ε or δ, else add the cost to every account and remember the
// charge under its request id. Amounts are integers below 2⁵³, exact in
// Lua's doubles, and written with %.0f, which prints them whole.
//
// KEYS: the n accounts in the charge's order, then the charge record.
// ARGV: cost ε, cost δ, retention in ms (0: none), the charge (its claim,
// see Redis.Charge), then the cap ε and δ of each account.
// Returns {"ok", ε, δ after the charge of each account},
// {"short", index of the first short account from 1, ε, δ spent of each
// account} or {"replay", the charge, the space-separated ε, δ after it of
// each account}.
var chargeScript = redis.NewScript(`
local n = #KEYS - 1
local rec = redis.call('HMGET', KEYS[n + 1], 'charge', 'spent')
if rec[1] then return {'replay', rec[1], rec[2]} end
local function int(x) return string.format('%.0f', x) end
local e, d = tonumber(ARGV[1]), tonumber(ARGV[2])
local spent = {}
for i = 1, n do
  local v = redis.call('HMGET', KEYS[i], 'eps', 'delta')
  spent[2 * i - 1], spent[2 * i] = tonumber(v[1] or '0'), tonumber(v[2] or '0')
end
for i = 1, n do
  if spent[2 * i - 1] + e > tonumber(ARGV[3 + 2 * i]) or spent[2 * i] + d > tonumber(ARGV[4 + 2 * i]) then
    local out = {'short', tostring(i)}
    for j = 1, 2 * n do out[j + 2] = int(spent[j]) end
    return out
  end
end
local after = {}
for i = 1, n do
  after[2 * i - 1], after[2 * i] = int(spent[2 * i - 1] + e), int(spent[2 * i] + d)
  redis.call('HSET', KEYS[i], 'eps', after[2 * i - 1], 'delta', after[2 * i])
end
redis.call('HSET', KEYS[n + 1], 'charge', ARGV[4], 'spent', table.concat(after, ' '))
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[n + 1], ARGV[3]) end
table.insert(after, 1, 'ok')
return after
`)

// Charge implements [Ledger]. A request id is first bound to its charge
// (one key, so that an id cannot be spent in two scopes, which live in
// different Cluster slots); the check and the spending are then one Lua
// script over the scope's slot, which a retry replays rather than
// repeats. A request id whose charge was refused stays bound to it.
func (r *Redis) Charge(ctx context.Context, c Charge) (Receipt, error) {
	p, err := c.plan()
	if err != nil {
		return Receipt{}, err
	}
	retention := strconv.FormatInt(r.retention.Milliseconds(), 10)
	// The claim is the charge as its record holds it: scope, account keys
	// and cost, not the caps, which a retry may bring changed.
	claim, err := json.Marshal(p.record(nil))
	if err != nil {
		return Receipt{}, err
	}
	held, err := claimScript.Run(ctx, r.c, []string{r.requestKey(c.RequestID)}, claim, retention).Text()
	if err != nil {
		return Receipt{}, r.fail("charge", err)
	}
	if held != string(claim) {
		return Receipt{}, ErrRequestReused
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	keys := make([]string, 0, len(p.keys)+1)
	args := []any{i(p.cost.Eps), i(p.cost.Delta), retention, claim}
	for n, k := range p.keys {
		keys = append(keys, r.accountKey(p.scope, k))
		args = append(args, i(p.caps[n].Eps), i(p.caps[n].Delta))
	}
	keys = append(keys, r.chargeKey(p.scope, c.RequestID))
	res, err := chargeScript.Run(ctx, r.c, keys, args...).StringSlice()
	if err != nil {
		return Receipt{}, r.fail("charge", err)
	}
	switch n := len(p.keys); {
	case len(res) == 1+2*n && res[0] == "ok":
		after, err := parseAmounts(res[1:])
		if err != nil {
			return Receipt{}, fmt.Errorf("state: redis charge: %w", err)
		}
		return Receipt{Spent: budgets(after)}, nil
	case len(res) == 2+2*n && res[0] == "short":
		short, err := strconv.Atoi(res[1])
		if err != nil || short < 1 || short > n {
			return Receipt{}, fmt.Errorf("state: redis charge: unexpected reply %q", res)
		}
		spent, err := parseAmounts(res[2:])
		if err != nil {
			return Receipt{}, fmt.Errorf("state: redis charge: %w", err)
		}
		return Receipt{}, &ExhaustedError{Account: p.keys[short-1], Spent: budgets(spent)}
	case len(res) == 3 && res[0] == "replay":
		var rec chargeRecord
		if err := json.Unmarshal([]byte(res[1]), &rec); err != nil {
			return Receipt{}, fmt.Errorf("state: redis: corrupt charge record: %w", err)
		}
		if rec.Spent, err = parseAmounts(strings.Fields(res[2])); err != nil {
			return Receipt{}, fmt.Errorf("state: redis: corrupt charge record: %w", err)
		}
		return rec.replay(p)
	}
	return Receipt{}, fmt.Errorf("state: redis charge: unexpected reply %q", res)
}

// parseAmounts reads pairs of ε and δ in ledger units.
func parseAmounts(ss []string) ([]amount, error) {
	n, err := parseInts(ss)
	if err != nil {
		return nil, err
	}
	if len(n)%2 != 0 {
		return nil, fmt.Errorf("%d numbers are not pairs of ε and δ", len(n))
	}
	out := make([]amount, len(n)/2)
	for i := range out {
		out[i] = amount{n[2*i], n[2*i+1]}
	}
	return out, nil
}

func parseInts(ss []string) ([]int64, error) {
	out := make([]int64, len(ss))
	for i, s := range ss {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("amount %q: %w", s, err)
		}
		out[i] = v
	}
	return out, nil
}

// Spent implements [Ledger]: the accounts read in one transaction.
func (r *Redis) Spent(ctx context.Context, scope string, keys ...string) ([]Budget, error) {
	out := make([]Budget, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	cmds := make([]*redis.SliceCmd, len(keys))
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HMGet(ctx, r.accountKey(scope, k), "eps", "delta")
		}
		return nil
	})
	if err != nil {
		return nil, r.fail("spent", err)
	}
	for i, cmd := range cmds {
		a, err := readAccount(cmd.Val())
		if err != nil {
			return nil, err
		}
		out[i] = a.budget()
	}
	return out, nil
}

func readAccount(v []any) (amount, error) {
	var a amount
	for i, dst := range []*int64{&a.Eps, &a.Delta} {
		s, ok := v[i].(string)
		if !ok {
			continue // a missing account has spent nothing
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return amount{}, fmt.Errorf("state: redis: corrupt account amount %q", s)
		}
		*dst = n
	}
	return a, nil
}

func (r *Redis) answerKey(key string) string { return r.prefix + ":answer:" + key }

// storeScript stores an answer unless one is stored, and returns the one
// stored. KEYS: answer key. ARGV: answer.
var storeScript = redis.NewScript(`
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`)

// Answer implements [Cache].
func (r *Redis) Answer(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := r.c.Get(ctx, r.answerKey(key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, r.fail("answer", err)
	}
	return b, true, nil
}

// StoreAnswer implements [Cache].
func (r *Redis) StoreAnswer(ctx context.Context, key string, answer []byte) ([]byte, error) {
	if key == "" || len(answer) == 0 {
		return nil, errEmptyAnswer
	}
	b, err := storeScript.Run(ctx, r.c, []string{r.answerKey(key)}, answer).Text()
	if err != nil {
		return nil, r.fail("store answer", err)
	}
	return []byte(b), nil
}

// The revocation list, all in one slot: a sorted set of token ids scored
// by expiry (Unix ms), the version, and the subject revocations as two
// hashes from RevokedSubject.key() to the cutoff and to the expiry (Unix
// ms). Times are rounded up to the millisecond, so that rounding never
// lets an affected token through.
func (r *Redis) revocationKeys() []string {
	tag := "{" + r.prefix + ":revocations}"
	return []string{tag + ":ids", tag + ":version", tag + ":subjects:before", tag + ":subjects:expires"}
}

// ceilMilli is t in Unix ms, rounded up.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// revokeScript adds an id, keeping the later expiry, drops expired ids and
// sets a new version. KEYS: revocationKeys. ARGV: id, expiry ms, now ms,
// version.
var revokeScript = redis.NewScript(`
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held or tonumber(held) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
return 1
`)

// revokeSubjectScript adds a subject revocation, keeping the later cutoff
// and the later expiry (SubjectRevocation.merge), drops expired subject
// revocations and sets a new version. KEYS: revocationKeys. ARGV: subject
// key, cutoff ms, expiry ms, now ms, version.
var revokeSubjectScript = redis.NewScript(`
local before = redis.call('HGET', KEYS[3], ARGV[1])
if not before or tonumber(before) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
end
local expires = redis.call('HGET', KEYS[4], ARGV[1])
if not expires or tonumber(expires) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
end
local all = redis.call('HGETALL', KEYS[4])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) < tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[3], all[i])
    redis.call('HDEL', KEYS[4], all[i])
  end
end
redis.call('SET', KEYS[2], ARGV[5])
return 1
`)

// revokedScript returns {version} when the version is ARGV[1], else
// {version, 2n, id, expiry ms, ... (n ids), subject key, cutoff ms, expiry
// ms, ...}. KEYS: revocationKeys.
var revokedScript = redis.NewScript(`
local v = redis.call('GET', KEYS[2]) or ''
if v == ARGV[1] then return {v} end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {v, tostring(#ids)}
for i = 1, #ids do out[#out + 1] = ids[i] end
local before = redis.call('HGETALL', KEYS[3])
for i = 1, #before, 2 do
  out[#out + 1] = before[i]
  out[#out + 1] = before[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[4], before[i]) or ''
end
return out
`)

// Revoke implements [Revocations].
func (r *Redis) Revoke(ctx context.Context, id string, expires time.Time) error {
	if id == "" || expires.IsZero() {
		return errEmptyRevocation
	}
	err := revokeScript.Run(ctx, r.c, r.revocationKeys(), id, ceilMilli(expires), time.Now().UnixMilli(), newVersion()).Err()
	if err != nil {
		return r.fail("revoke", err)
	}
	return nil
}

// RevokeSubject implements [Revocations].
func (r *Redis) RevokeSubject(ctx context.Context, s RevokedSubject, rev SubjectRevocation) error {
	if err := s.check(rev); err != nil {
		return err
	}
	err := revokeSubjectScript.Run(ctx, r.c, r.revocationKeys(), s.key(),
		ceilMilli(rev.IssuedBefore), ceilMilli(rev.Expires), time.Now().UnixMilli(), newVersion()).Err()
	if err != nil {
		return r.fail("revoke subject", err)
	}
	return nil
}

// Revoked implements [Revocations]. A server that lost its data has no
// version, which differs from any a gateway holds: it reloads the (empty)
// list.
func (r *Redis) Revoked(ctx context.Context, since string) (RevocationList, error) {
	if since == "" {
		since = "\x00" // never a stored version; "" is a missing one
	}
	res, err := revokedScript.Run(ctx, r.c, r.revocationKeys(), since).StringSlice()
	if err != nil {
		return RevocationList{}, r.fail("revocations", err)
	}
	list := RevocationList{Version: res[0]}
	if res[0] == since {
		return list, nil
	}
	corrupt := func(what string) (RevocationList, error) {
		return RevocationList{}, fmt.Errorf("state: redis: corrupt revocation list: %s", what)
	}
	if len(res) < 2 {
		return corrupt("no id count")
	}
	n, err := strconv.Atoi(res[1])
	if err != nil || n < 0 || n%2 != 0 || 2+n > len(res) || (len(res)-2-n)%3 != 0 {
		return corrupt("lengths do not add up")
	}
	ids, subjects := res[2:2+n], res[2+n:]
	list.Changed = true
	list.IDs = make(map[string]time.Time, n/2)
	for i := 0; i+1 < len(ids); i += 2 {
		ms, err := strconv.ParseFloat(ids[i+1], 64)
		if err != nil {
			return corrupt(fmt.Sprintf("expiry of %q", ids[i]))
		}
		list.IDs[ids[i]] = time.UnixMilli(int64(ms))
	}
	list.Subjects = make(map[RevokedSubject]SubjectRevocation, len(subjects)/3)
	for i := 0; i+2 < len(subjects); i += 3 {
		s, err := subjectFromKey(subjects[i])
		if err != nil {
			return corrupt(err.Error())
		}
		before, err1 := strconv.ParseInt(subjects[i+1], 10, 64)
		expires, err2 := strconv.ParseInt(subjects[i+2], 10, 64)
		if err1 != nil || err2 != nil {
			return corrupt(fmt.Sprintf("times of subject %s", subjects[i]))
		}
		list.Subjects[s] = SubjectRevocation{IssuedBefore: time.UnixMilli(before), Expires: time.UnixMilli(expires)}
	}
	return list, nil
}

// Allow implements [Limiter] with redis_rate's GCRA script, on the
// server's clock, so that every replica draws on one allowance per key.
func (r *Redis) Allow(ctx context.Context, key string, rt Rate) (time.Duration, error) {
	if err := rt.check(); err != nil {
		return 0, err
	}
	res, err := r.limiter.Allow(ctx, r.prefix+":"+key, redis_rate.Limit{Rate: rt.Limit, Burst: rt.Burst, Period: rt.Per})
	if err != nil {
		return 0, r.fail("rate limit", err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}
