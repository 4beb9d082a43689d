package gateway

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// StateConfig locates the privacy budget ledger and the answer cache of
// statistics releases.
type StateConfig struct {
	// Path is the embedded state file (bbolt, fsync'd on every charge),
	// e.g. state/sluice.db: one gateway process. Set path or redis;
	// without either, statistics are unavailable (503).
	Path string `yaml:"path"`
	// Redis keeps the state in Redis, shared by every replica: budgets,
	// answers, rate limits and token revocations.
	Redis *RedisConfig `yaml:"redis"`
	// OnFailure is what requests that charge no budget (record reads,
	// the catalog, explain, the auditor API) do while Redis cannot be
	// reached: closed (default) refuses them with 503; open serves them
	// with the revocation list last fetched and per-replica rate limits.
	// Statistics always fail closed.
	//
	//config:enum closed open
	OnFailure string `yaml:"on_failure"`
	// Revocations says how fresh each gateway keeps its copy of the
	// token revocation list.
	Revocations RevocationsConfig `yaml:"revocations"`
}

// Failure modes of state.on_failure.
const (
	FailClosed = "closed"
	FailOpen   = "open"
)

// RedisConfig locates the Redis that replicas share: one server, a
// Sentinel-managed master (master_name) or a Cluster (cluster, or several
// addrs). Redis must persist every write before it answers (appendonly
// yes, appendfsync always) and never evict (maxmemory-policy noeviction):
// see deploy/redis.conf and docs/scale-out.md.
type RedisConfig struct {
	// Addrs are host:port addresses: the server; the Sentinels, with
	// master_name; or seed nodes of a Cluster. Required.
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
	// DB is the database number, 0 to 15 (not with a Cluster, which has
	// only 0).
	DB int `yaml:"db"`
	// TLS, when present (even empty: {}), talks TLS to Redis.
	TLS *RedisTLSConfig `yaml:"tls"`
	// Prefix starts every key (default "sluice"), so that deployments can
	// share a server. Replicas of one deployment must use the same.
	Prefix string `yaml:"prefix"`
	// Timeout bounds connecting to Redis and each command (default 1s;
	// 10ms to 1m): past it the request is refused (503), not held.
	Timeout Duration `yaml:"timeout"`
	// ChargeRetention is how long a statistics charge is remembered by
	// its request id, so that a retried charge is not charged twice
	// (default 168h; 0s keeps them for good).
	ChargeRetention *Duration `yaml:"charge_retention"`
}

// RedisTLSConfig configures TLS to Redis.
type RedisTLSConfig struct {
	// CAFile holds the PEM certificates that may sign the server's
	// (default the system's).
	CAFile string `yaml:"ca_file"`
	// CertFile is the gateway's client certificate (PEM), when Redis asks
	// for one (tls-auth-clients). Set both cert_file and key_file, or
	// neither.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key of cert_file (PEM).
	KeyFile string `yaml:"key_file"`
	// ServerName is the name the server's certificate must carry (default
	// the host of the address dialled).
	ServerName string `yaml:"server_name"`
}

// RevocationsConfig tunes each gateway's copy of the revocation list.
type RevocationsConfig struct {
	// Poll is how often the gateway asks whether the list changed
	// (default 250ms; 10ms to 1s): a revoked token is refused by every
	// replica within this, plus a round trip.
	Poll Duration `yaml:"poll"`
	// MaxStale is how long the copy may go without a successful refresh
	// (default 5s; at most 1h). Past it, on_failure: closed refuses every
	// authenticated request (503); open keeps using the copy.
	MaxStale Duration `yaml:"max_stale"`
}

// validate checks the state section and fills its defaults.
func (st *StateConfig) validate(bad func(field, format string, args ...any)) {
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
