package gateway

import "time"

// LimitsConfig bounds what the gateway holds and waits for.
type LimitsConfig struct {
	// MaxRecordBytes caps one upstream record (default 1MiB; at least
	// 1KiB).
	MaxRecordBytes Size `yaml:"max_record_bytes"`
	// MaxResponseBytes caps one upstream body (default 1GiB).
	MaxResponseBytes Size `yaml:"max_response_bytes"`
	// SpoolMemoryBytes is how much of a transformed response is held in
	// memory before it spills to a temporary file (default 4MiB).
	SpoolMemoryBytes Size `yaml:"spool_memory_bytes"`
	// SpoolDir holds spilled responses (default the system temp dir).
	SpoolDir string `yaml:"spool_dir"`
	// ShutdownTimeout is how long in-flight requests may finish on
	// shutdown (default 30s).
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
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
	// Rate is the number of requests per period. Required: a positive
	// number.
	Rate int `yaml:"rate"`
	// Per is the period (default 1s; 1ms to 24h).
	Per Duration `yaml:"per"`
	// Burst is how many requests may come at once (default rate).
	Burst int `yaml:"burst"`
}

func (l *LimitsConfig) validate(bad func(field, format string, args ...any)) {
	def := func(v *Size, d Size) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxRecordBytes, 1<<20)
	def(&l.MaxResponseBytes, 1<<30)
	def(&l.SpoolMemoryBytes, 4<<20)
	if l.ShutdownTimeout == 0 {
		l.ShutdownTimeout = Duration(30 * time.Second)
	}
	if l.ShutdownTimeout < 0 {
		bad("limits.shutdown_timeout", "must be positive")
	}
	if l.MaxRecordBytes < 1<<10 {
		bad("limits.max_record_bytes", "at least 1KiB")
	}
}

func (r *RateLimitsConfig) validate(bad func(field, format string, args ...any)) {
	r.Consumer.validate("rate_limits.consumer", bad)
	r.Dataset.validate("rate_limits.dataset", bad)
	r.Unauthenticated.validate("rate_limits.unauthenticated", bad)
}

// validate checks the limit at field path field, if any, and fills its
// defaults.
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
