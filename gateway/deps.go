package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/anonymize/dp"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
	"github.com/sluicegw/sluice/usage"
)

// The gateway's dependencies: what it is built from besides its
// configuration (Deps), and the interfaces it consumes, each satisfied by
// the state, audit and policy packages.

// Deps are what the gateway is built from besides its configuration.
type Deps struct {
	Audit    AuditLog
	Policies Policies
	Logger   *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Metrics is the registry the gateway registers its collectors with
	// and serves on /metrics; a fresh one when nil.
	Metrics *prometheus.Registry
	// Shadow, when set, is a policy set evaluated beside Policies on every
	// decision and never enforced; where it differs, the audit record says
	// how (see shadow.go).
	Shadow Policies
	// Ledger charges the privacy budgets of statistics, and Answers keeps
	// their answers; without both, statistics answer 503 (see stats.go).
	Ledger  Ledger
	Answers AnswerCache
	// DP, when set, supplies the noise and sampling randomness of each
	// statistics release (tests); nil uses the library's secure noise.
	DP func() dp.Options
	// Revocations is the list of revoked tokens; nil: tokens are not
	// checked for revocation and POST /admin/v1/revocations answers 503.
	Revocations Revocations
	// Limiter enforces cfg.RateLimits; nil: a limiter in this process.
	// A shared one (state.Redis) makes the limits hold across replicas.
	Limiter RateLimiter
	// Hub keeps the sharing hub's requests, grants and demands; nil: the
	// hub's routes answer 503 and no read is made under a grant.
	Hub hub.Store
	// Usage is the usage index: who received whose records (usage.Bolt in
	// the trail's directory, usage.Redis shared by replicas); nil: no
	// index is kept, and the usage routes answer 503. The trail names
	// whose records each release held either way, so an index can be
	// built from it later (sluice audit reindex).
	Usage usage.Index
	// HubReadOnly marks a tool's gateway (policy explain, policy risk):
	// it reads the grants in force, never sweeps the hub's clock and
	// publishes no open release.
	HubReadOnly bool
}

// AuditLog is the durable trail the gateway writes before it releases.
// Records are chained in the order they are queued; each method encodes
// the event before it returns, so the caller may change it afterwards.
type AuditLog interface {
	// Append returns once the event is durable, or an error.
	Append(ctx context.Context, e *audit.Event) error
	// Begin queues the event and returns at once; it is durable when the
	// Pending's Wait returns nil.
	Begin(e *audit.Event) (audit.Pending, error)
	// Queue queues the event and does not wait for it.
	Queue(e *audit.Event) error
	// Err is nil while the trail is writable.
	Err() error
}

// Policies yields the policy set in force.
type Policies interface {
	Current() *policy.Set
}

// RateLimiter admits requests at a rate per key: state.Redis shares the
// allowance across replicas, state.LocalLimiter keeps it per process.
type RateLimiter interface {
	// Allow takes one request from key's allowance; it returns 0 when the
	// request is admitted, else how long until one would be.
	Allow(ctx context.Context, key string, r state.Rate) (time.Duration, error)
}

// Revocations is the shared list of revoked tokens: state.Redis across
// replicas, state.Bolt in one process. A token is revoked by its id (jti)
// or, for tokens without one, with every token its subject was issued
// before a time.
type Revocations interface {
	// Revoke revokes the token id until expires.
	Revoke(ctx context.Context, id string, expires time.Time) error
	// RevokeSubject revokes the tokens of s issued before r.IssuedBefore,
	// until r.Expires.
	RevokeSubject(ctx context.Context, s state.RevokedSubject, r state.SubjectRevocation) error
	// Revoked returns the list unless it is still at version since.
	Revoked(ctx context.Context, since string) (state.RevocationList, error)
}

// reloading is implemented by policy sources that change at run time and
// say how (policy.Engine).
type reloading interface {
	Status() policy.Status
	Stats() *policy.Stats
}

var _ reloading = (*policy.Engine)(nil)

// prober is an audit trail that can test a write without a record.
type prober interface{ Probe() error }

// pinger is a state backend that can say whether it is reachable.
type pinger interface {
	Ping(ctx context.Context) error
}

// Ledger is the privacy budget ledger statistics are charged to
// (state.Bolt embedded, state.Redis shared, state.Memory in tests).
type Ledger interface {
	// Charge spends a release's loss on every account of one scope
	// atomically and durably, at most once per request id, or refuses
	// with a *state.ExhaustedError.
	Charge(ctx context.Context, c state.Charge) (state.Receipt, error)
	// Spent says what the named accounts of scope have spent.
	Spent(ctx context.Context, scope string, keys ...string) ([]state.Budget, error)
}

// AnswerCache keeps the answers of statistics releases, so that a repeated
// query gets the same answer for free.
type AnswerCache interface {
	// Answer returns the stored answer to a normalised query.
	Answer(ctx context.Context, key string) ([]byte, bool, error)
	// StoreAnswer stores an answer unless one is stored, and returns the
	// one stored: the first answer to a query is its answer for good.
	StoreAnswer(ctx context.Context, key string, answer []byte) ([]byte, error)
}
