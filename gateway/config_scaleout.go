package gateway

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// The configuration of replicas sharing Redis, rate limits and token
// revocations.

// RedisConfig locates the Redis that replicas share: one server, a
// Sentinel-managed master (master_name) or a Cluster (cluster, or several
// addrs). Redis must persist every write before it answers (appendonly
// yes, appendfsync always) and never evict (maxmemory-policy noeviction):
// see deploy/redis.conf and docs/scale-out.md.
type RedisConfig struct {
	// Addrs are host:port addresses: the server; the Sentinels, with
	// master_name; or seed nodes of a Cluster.
	Addrs []string `yaml:"addrs"`
	// MasterName is the Sentinel master set: the gateway asks the
	// Sentinels in addrs where the master is and follows failovers.
	MasterName string `yaml:"master_name"`
	// Cluster says addrs are Cluster nodes even when there is one
	// (several addrs without master_name always are).
	Cluster bool `yaml:"cluster"`
	// Username is the ACL user (Redis 6+); empty for the default user.
	Username string `yaml:"username"`
	// PasswordFile holds the password (trailing newline ignored).
	PasswordFile string `yaml:"password_file"`
	// SentinelPasswordFile holds the Sentinels' own password, if any.
	SentinelPasswordFile string `yaml:"sentinel_password_file"`
	// DB is the database number (not with a Cluster, which has only 0).
	DB int `yaml:"db"`
	// TLS, when present (even empty: {}), talks TLS to Redis.
	TLS *RedisTLSConfig `yaml:"tls"`
	// Prefix starts every key (default "sluice"), so that deployments can
	// share a server. Replicas of one deployment must use the same.
	Prefix string `yaml:"prefix"`
	// Timeout bounds connecting to Redis and each command (default 1s):
	// past it the request is refused (503), not held.
	Timeout Duration `yaml:"timeout"`
	// ChargeRetention is how long a statistics charge is remembered by
	// its request id, so that a retried charge is not charged twice
	// (default 168h; 0s keeps them for good).
	ChargeRetention *Duration `yaml:"charge_retention"`
}

// RedisTLSConfig configures TLS to Redis.
type RedisTLSConfig struct {
	// CAFile holds the PEM certificates that may sign the server's;
	// default the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the gateway's client certificate and key
	// (PEM), when Redis asks for one (tls-auth-clients).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server's certificate must carry; default
	// the host of the address dialled.
	ServerName string `yaml:"server_name"`
}

// RevocationsConfig tunes each gateway's copy of the revocation list.
type RevocationsConfig struct {
	// Poll is how often the gateway asks whether the list changed
	// (default 250ms, at most 1s): a revoked token is refused by every
	// replica within this, plus a round trip.
	Poll Duration `yaml:"poll"`
	// MaxStale is how long the copy may go without a successful refresh
	// (default 5s). Past it, on_failure: closed refuses every
	// authenticated request (503); open keeps using the copy.
	MaxStale Duration `yaml:"max_stale"`
}

// RateLimitsConfig bounds request rates (GCRA). With state.redis the
// limits hold across all replicas together; otherwise per process.
// Refused requests get 429 rate_limited with Retry-After. A limit left
// out does not limit.
type RateLimitsConfig struct {
	// Consumer limits each caller (token subject) over all its requests.
	Consumer *RateConfig `yaml:"consumer"`
	// Dataset limits all callers together on each dataset, sparing the
	// department's service.
	Dataset *RateConfig `yaml:"dataset"`
	// Unauthenticated limits, per client address (IPv6: per /64), the
	// requests that fail authentication: no token, one that does not
	// verify, a revoked one. A request whose token is accepted never
	// counts and is never refused by it, and routes that need no token
	// (health, readiness, metrics, the auditor page) are not limited.
	// The address is the connection's: behind a proxy every caller
	// shares the proxy's, so a flood of bad tokens through it would turn
	// every other caller's 401 for an expired token (on which clients
	// refresh it) into 429. Set it where the gateway sees its callers'
	// addresses, for example {rate: 10, burst: 20}.
	Unauthenticated *RateConfig `yaml:"unauthenticated"`
}

// RateConfig is one limit: rate requests per per on average, bursts of up
// to burst.
type RateConfig struct {
	// Rate is the number of requests per period.
	Rate int `yaml:"rate"`
	// Per is the period (default 1s).
	Per Duration `yaml:"per"`
	// Burst is how many requests may come at once (default rate).
	Burst int `yaml:"burst"`
}

// AuditStreamConfig configures the Redis stream of audit records.
type AuditStreamConfig struct {
	// Key is the stream's key (default PREFIX:audit:stream), one for all
	// replicas: each entry names its replica and seq.
	Key string `yaml:"key"`
	// MaxLen trims the stream to about this many entries (default
	// 1000000): the collector must keep up.
	MaxLen int64 `yaml:"max_len"`
	// Queue is how many records may wait for Redis (default 10000); more
	// are dropped and counted (sluice_audit_stream_dropped_total), never
	// waited for. The replica's trail keeps them all.
	Queue int `yaml:"queue"`
}

// Failure modes of state.on_failure.
const (
	FailClosed = "closed"
	FailOpen   = "open"
)

// validateScaleOut checks state.redis, state.on_failure,
// state.revocations, rate_limits and the audit trail's Redis options, and
// fills their defaults.
func (c *Config) validateScaleOut(bad func(field, format string, args ...any)) {
	st := &c.State
	if st.Path != "" && st.Redis != nil {
		bad("state", "set one of path and redis, not both")
	}
	switch st.OnFailure {
	case "":
		st.OnFailure = FailClosed
	case FailClosed, FailOpen:
	default:
		bad("state.on_failure", "want closed or open, got %q", st.OnFailure)
	}
	if r := st.Redis; r != nil {
		r.validate(bad)
	}
	rv := &st.Revocations
	if rv.Poll == 0 {
		rv.Poll = Duration(250 * time.Millisecond)
	}
	if rv.Poll < Duration(10*time.Millisecond) || rv.Poll > Duration(time.Second) {
		bad("state.revocations.poll", "want between 10ms and 1s: a revoked token must be refused within a second")
	}
	if rv.MaxStale == 0 {
		rv.MaxStale = Duration(5 * time.Second)
	}
	if rv.MaxStale < rv.Poll || rv.MaxStale > Duration(time.Hour) {
		bad("state.revocations.max_stale", "want between state.revocations.poll and 1h")
	}
	c.RateLimits.Consumer.validate("rate_limits.consumer", bad)
	c.RateLimits.Dataset.validate("rate_limits.dataset", bad)
	c.RateLimits.Unauthenticated.validate("rate_limits.unauthenticated", bad)

	a := &c.Audit
	if a.RedisWitness {
		switch {
		case st.Redis == nil:
			bad("audit.redis_witness", "needs state.redis")
		case a.CheckpointKeyFile == "":
			bad("audit.redis_witness", "needs audit.checkpoint_key_file")
		case a.WitnessFile != "":
			bad("audit.redis_witness", "set one of witness_file and redis_witness")
		}
	}
	if s := a.Stream; s != nil {
		if st.Redis == nil {
			bad("audit.stream", "needs state.redis")
		}
		if s.MaxLen < 0 {
			bad("audit.stream.max_len", "must be positive")
		}
		if s.Queue < 0 {
			bad("audit.stream.queue", "must be positive")
		}
	}
	if (a.RedisWitness || a.Stream != nil) && a.Replica == "" {
		bad("audit.replica", "required with redis_witness or stream: a name unique among the replicas and stable across restarts")
	}
	if a.Replica != "" && !nameRE.MatchString(a.Replica) {
		bad("audit.replica", "want lower-case letters, digits, - or _, got %q", a.Replica)
	}
}

func (r *RedisConfig) validate(bad func(field, format string, args ...any)) {
	if len(r.Addrs) == 0 {
		bad("state.redis.addrs", "required: at least one host:port")
	}
	for i, addr := range r.Addrs {
		if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" {
			bad(fmt.Sprintf("state.redis.addrs[%d]", i), "want host:port, got %q", addr)
		}
	}
	cluster := r.Cluster || (len(r.Addrs) > 1 && r.MasterName == "")
	if r.DB < 0 || r.DB > 15 {
		bad("state.redis.db", "want 0 to 15")
	} else if r.DB != 0 && cluster {
		bad("state.redis.db", "a Redis Cluster has only database 0")
	}
	if r.Cluster && r.MasterName != "" {
		bad("state.redis.cluster", "set one of cluster and master_name")
	}
	if r.SentinelPasswordFile != "" && r.MasterName == "" {
		bad("state.redis.sentinel_password_file", "needs master_name")
	}
	if strings.ContainsAny(r.Prefix, "{} ") {
		bad("state.redis.prefix", "must not hold {, } or spaces")
	}
	if r.Prefix == "" {
		r.Prefix = "sluice"
	}
	if r.Timeout == 0 {
		r.Timeout = Duration(time.Second)
	}
	if r.Timeout < Duration(10*time.Millisecond) || r.Timeout > Duration(time.Minute) {
		bad("state.redis.timeout", "want between 10ms and 1m")
	}
	if r.ChargeRetention == nil {
		week := Duration(7 * 24 * time.Hour)
		r.ChargeRetention = &week
	}
	if *r.ChargeRetention < 0 || (*r.ChargeRetention > 0 && *r.ChargeRetention < Duration(time.Minute)) {
		bad("state.redis.charge_retention", "want 0s (for good) or at least 1m")
	}
	if t := r.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		bad("state.redis.tls", "set both cert_file and key_file, or neither")
	}
}

func (r *RateConfig) validate(field string, bad func(field, format string, args ...any)) {
	if r == nil {
		return
	}
	if r.Rate < 1 {
		bad(field+".rate", "want a positive number of requests")
	}
	if r.Per == 0 {
		r.Per = Duration(time.Second)
	}
	if r.Per < Duration(time.Millisecond) || r.Per > Duration(24*time.Hour) {
		bad(field+".per", "want between 1ms and 24h")
	}
	if r.Burst == 0 {
		r.Burst = r.Rate
	}
	if r.Burst < 1 {
		bad(field+".burst", "want a positive number of requests")
	}
}
