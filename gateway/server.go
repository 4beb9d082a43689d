// Package gateway is Sluice's HTTP server: it authenticates each caller,
// asks the policy what the caller may see, fetches from the department's
// service, releases only what the decision allows, and audits every
// request before any byte of its response leaves.
//
// The request pipeline fails closed: when authentication, policy
// evaluation, the upstream, the transform or the audit trail fails, the
// caller gets a JSON error and nothing else.
package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/anonymize/dp"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
)

// Server is the gateway. It is an http.Handler.
type Server struct {
	cfg      *Config
	audit    AuditLog
	policies Policies
	log      *slog.Logger
	now      func() time.Time
	auth     *authenticator
	hasher   *audit.Hasher
	keys     *anonymize.Keys
	sources  map[string]*source
	known    map[string]bool // path segments safe to audit in clear
	// open is the open data published without a token; nil when
	// open.enabled is off.
	open    *openData
	metrics *metrics
	handler http.Handler
	// shadow is the shadow policy set, nil for none.
	shadow      Policies
	shadowDiffs prometheus.Counter
	// ledger, answers and dpRand serve statistics; statsLocks lets one
	// release per normalised query run at a time.
	ledger     Ledger
	answers    AnswerCache
	dpRand     func() dp.Options
	statsLocks keyLocks
	// kTables are the k-anonymity class tables of views read under min_k.
	kTables kTables
	// revocationStore is Deps.Revocations, and revocations this
	// gateway's copy of its list (nil without one); limiter enforces rate
	// limits, localLimiter stands in for a shared one that is down under
	// on_failure open (see ratelimit.go).
	revocationStore Revocations
	revocations     *revocationCache
	limiter         RateLimiter
	localLimiter    *state.LocalLimiter
	scale           *scaleMetrics
	// hub runs the sharing hub's workflows, nil without a store; grants
	// is this replica's copy of the grants in force (hub.go).
	hub    *hub.Hub
	grants grantCache
	// usage is the usage index (usage.go); nil without one.
	usage *usageState
	// sealKey seals objections' free text (hub.seal_key_file); webhooks
	// push notices to the departments that asked (objections_http.go).
	sealKey  []byte
	webhooks *webhooks
}

// source is a configured department service and its proxy.
type source struct {
	cfg      *SourceConfig
	base     *url.URL
	datasets map[string]*dataset
	proxy    *httputil.ReverseProxy // record reads
	client   *http.Client           // statistics reads
	cred     struct{ header, value string }
}

type dataset struct {
	src      *source
	cfg      *DatasetConfig
	info     *policy.Resource
	pop      *population        // whose budget its statistics are charged to; nil: none
	released prometheus.Counter // records released from it
}

// New builds the gateway from a validated configuration. It reads the key
// files the configuration names; ctx bounds background work such as JWKS
// refreshes.
func New(ctx context.Context, cfg *Config, deps Deps) (*Server, error) {
	if deps.Audit == nil || deps.Policies == nil {
		return nil, errors.New("gateway: audit log and policies are required")
	}
	s := &Server{cfg: cfg, audit: deps.Audit, policies: deps.Policies, log: deps.Logger, now: deps.Now,
		metrics: newMetrics(deps.Metrics), shadow: deps.Shadow,
		ledger: deps.Ledger, answers: deps.Answers, dpRand: deps.DP}
	s.registerPolicyMetrics(s.metrics.reg)
	if s.log == nil {
		s.log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	secret, err := os.ReadFile(cfg.Path(cfg.HMACKeyFile))
	if err != nil {
		return nil, fmt.Errorf("hmac_key_file: %w", err)
	}
	if s.keys, err = anonymize.NewKeys(secret); err != nil {
		return nil, fmt.Errorf("hmac_key_file: %w", err)
	}
	if s.hasher, err = TrailHasher(secret); err != nil {
		return nil, fmt.Errorf("hmac_key_file: %w", err)
	}
	if s.sealKey, err = cfg.sealKey(secret); err != nil {
		return nil, err
	}
	if s.auth, err = newAuthenticator(ctx, cfg); err == nil {
		s.auth.now = s.now // token times are judged by the gateway's clock
	}
	if err != nil {
		return nil, err
	}
	s.sources = map[string]*source{}
	s.known = map[string]bool{} // the sources, datasets and route words
	pops := populations(cfg)
	for i := range cfg.Sources {
		src, err := s.newSource(&cfg.Sources[i])
		if err != nil {
			return nil, fmt.Errorf("sources[%d]: %w", i, err)
		}
		s.sources[src.cfg.Name] = src
		s.known[src.cfg.Name] = true
		for name, ds := range src.datasets {
			s.known[name] = true
			ds.pop = pops[ds.cfg]
		}
	}
	if err := s.scaleOut(ctx, deps); err != nil {
		return nil, err
	}
	if err := s.openHub(ctx, deps); err != nil {
		return nil, err
	}
	if err := s.openUsage(ctx, deps); err != nil {
		return nil, err
	}
	if err := s.planOpen(); err != nil {
		return nil, err
	}
	if s.open != nil && !deps.HubReadOnly {
		if s.ledger == nil || s.answers == nil {
			return nil, errors.New("open: open data needs a budget ledger: set state.path (or state.redis) in the configuration")
		}
		go s.keepOpen(ctx)
	}
	s.handler = s.routes()
	return s, nil
}

// TrailHasher is the keyed hash of the trail a gateway whose secret
// (hmac_key_file) is secret writes: tools that search the trail for a
// value, or look a person up in the usage index, hash it alike.
func TrailHasher(secret []byte) (*audit.Hasher, error) {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sluice/audit/v1"))
	return audit.NewHasher(m.Sum(nil))
}

// ServeHTTP serves the gateway's routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// auditPath is the request path with every segment the gateway does not
// know (identifiers, typos, probes) replaced by its keyed hash.
func (s *Server) auditPath(path string) string {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, seg := range segs {
		if seg != "" && !s.known[seg] {
			segs[i] = s.hasher.Sum(seg)
		}
	}
	return "/" + strings.Join(segs, "/")
}

// auditQuery hashes every value, and every name that is not a plain
// parameter name.
func (s *Server) auditQuery(q url.Values) map[string][]string {
	if len(q) == 0 {
		return nil
	}
	out := make(map[string][]string, len(q))
	for k, vs := range q {
		if !plainParam(k) {
			k = s.hasher.Sum(k)
		}
		hv := make([]string, len(vs))
		for i, v := range vs {
			hv[i] = s.hasher.Sum(v)
		}
		out[k] = append(out[k], hv...)
	}
	return out
}

func plainParam(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z') && c != '_' {
			return false
		}
	}
	return true
}

// dropped lists the declared fields of a dataset a plan does not release.
func dropped(ds *dataset, released map[string]string) []string {
	var out []string
	for name := range ds.cfg.Fields {
		if _, ok := released[name]; !ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
