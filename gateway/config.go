package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/policy"
)

// Config is the gateway's configuration file (sluice.yaml). Relative paths
// in it are relative to the file's directory.
type Config struct {
	// Listen is the address the gateway serves on, e.g. 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// ListenTLS serves HTTPS on listen instead of plain HTTP (see
	// config_tls.go).
	ListenTLS *ListenTLSConfig `yaml:"listen_tls"`
	// HMACKeyFile holds the gateway's secret (at least 32 bytes). Audit
	// hashes of query values and identifiers, and pseudonyms, are keyed with
	// keys derived from it.
	HMACKeyFile string `yaml:"hmac_key_file"`
	// Auth says which bearer tokens the gateway accepts.
	Auth AuthConfig `yaml:"auth"`
	// Policy says where the Rego policies are.
	Policy PolicyConfig `yaml:"policy"`
	// Audit says where the audit trail is kept.
	Audit AuditConfig `yaml:"audit"`
	// State says where privacy budgets and statistics answers are kept.
	State StateConfig `yaml:"state"`
	// Limits bound requests and upstream responses.
	Limits LimitsConfig `yaml:"limits"`
	// RateLimits bound how often callers may ask (see config_scaleout.go).
	RateLimits RateLimitsConfig `yaml:"rate_limits"`
	// Sources are the departments' data services behind the gateway.
	Sources []SourceConfig `yaml:"sources"`
	// Populations are the groups of people whose privacy statistics
	// budgets protect (see config_stats.go).
	Populations []PopulationConfig `yaml:"populations"`
	// DefaultPopulation is the budget of each dataset that names no
	// population: such a dataset is a population of its own. Unset, those
	// datasets serve no statistics.
	DefaultPopulation *PopulationConfig `yaml:"default_population"`
	// CORS names the browser origins that may call the gateway (see
	// cors.go).
	CORS CORSConfig `yaml:"cors"`
	// Open publishes declared statistics to everyone, without a token
	// (see config_open.go).
	Open OpenConfig `yaml:"open"`
	// Hub sets the sharing hub's clocks (see config_hub.go).
	Hub HubConfig `yaml:"hub"`

	// dir is the directory of the configuration file.
	dir string
}

// PolicyConfig locates the policies: a directory (watched and reloaded
// live) or a signed OPA bundle on a bundle server.
type PolicyConfig struct {
	// Dir holds .rego policies and JSON/YAML data. Set dir or bundle.
	Dir string `yaml:"dir"`
	// Watch reloads dir when a file in it changes (default true). A change
	// is put in force only when it compiles and its Rego tests
	// (*_test.rego) pass; otherwise the policy in force stays.
	Watch *bool `yaml:"watch"`
	// Debounce is how long dir must stay quiet after a change before it is
	// reloaded (default 200ms).
	Debounce Duration `yaml:"debounce"`
	// ShadowDir holds a second policy set, evaluated beside the active one
	// on every request and never enforced; where it decides differently,
	// the audit record says how. Watched like dir. Promoting it is moving
	// its files into dir.
	ShadowDir string `yaml:"shadow_dir"`
	// Bundle fetches the policies from a bundle server instead of dir.
	Bundle *BundleConfig `yaml:"bundle"`
}

// BundleConfig fetches a signed OPA bundle (`opa build -b` + `opa sign`).
type BundleConfig struct {
	// URL of the bundle: https, or http on loopback.
	URL string `yaml:"url"`
	// Poll is the interval between fetches (default 30s, at least 1s).
	// The ETag of the last bundle is sent, so an unchanged one is a 304.
	Poll Duration `yaml:"poll"`
	// Timeout bounds one fetch (default 30s).
	Timeout Duration `yaml:"timeout"`
	// MaxBytes caps the bundle's size (default 64MiB).
	MaxBytes Size `yaml:"max_bytes"`
	// Credentials are sent to the bundle server with every fetch.
	Credentials *CredentialConfig `yaml:"credentials"`
	// Signing says how the bundle's signature is verified. Required: an
	// unsigned or tampered bundle is never put in force.
	Signing BundleSigningConfig `yaml:"signing"`
}

// BundleSigningConfig verifies bundle signatures.
type BundleSigningConfig struct {
	// KeyID names the key (of keys) the signature must verify with.
	// Required: verification never rests on a key id the bundle chooses
	// (OPA advisory GHSA-g2pf-6v5v-qcc8).
	KeyID string `yaml:"key_id"`
	// Scope, when set, must equal the signature's scope claim.
	Scope string `yaml:"scope"`
	// Keys are the verification keys.
	Keys []BundleKeyConfig `yaml:"keys"`
}

// BundleKeyConfig is one bundle verification key.
type BundleKeyConfig struct {
	// ID is the key's id.
	ID string `yaml:"id"`
	// Algorithm: RS256/384/512, PS256/384/512 or ES256/384/512 with
	// public_key_file; HS256/384/512 with secret_file.
	Algorithm string `yaml:"algorithm"`
	// PublicKeyFile holds a PEM public key or certificate.
	PublicKeyFile string `yaml:"public_key_file"`
	// SecretFile holds an HMAC secret.
	SecretFile string `yaml:"secret_file"`
}

// AuditConfig locates the audit trail.
type AuditConfig struct {
	// Dir holds the hash-chained trail: segments trail-NNNNNNNN.jsonl and
	// checkpoints.jsonl.
	Dir string `yaml:"dir"`
	// SegmentMaxBytes starts a new segment before one grows past this size
	// (default 128MiB).
	SegmentMaxBytes Size `yaml:"segment_max_bytes"`
	// RotateDaily starts a new segment on each new UTC day (default true).
	RotateDaily *bool `yaml:"rotate_daily"`
	// Preallocate is how many bytes of zeros the gateway writes ahead of
	// the records of the segment it is writing (default 256KiB), which
	// halves the cost of each group commit's fsync. The live segment then
	// ends in NUL padding, cut off when it rotates or the gateway stops;
	// 0 writes none, for tools that follow a growing file.
	Preallocate *Size `yaml:"preallocate"`
	// CheckpointKeyFile holds the Ed25519 private key (PKCS #8 PEM) that
	// signs checkpoints of the trail's head. Without it no checkpoints are
	// made, and a trail cut short goes unnoticed.
	CheckpointKeyFile string `yaml:"checkpoint_key_file"`
	// CheckpointEvery makes a checkpoint after this many records (default
	// 1000).
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval makes a checkpoint this often when records were
	// written since the last one (default 1m). Checkpoints are also made
	// when a segment is rotated and on shutdown.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// WitnessFile keeps a copy of the latest checkpoint outside the trail
	// directory (ideally on another volume), so that cutting the trail and
	// its checkpoints together shows. Needs checkpoint_key_file.
	WitnessFile string `yaml:"witness_file"`
	// Replica names this gateway's trail among the replicas sharing
	// Redis: unique, and stable across restarts. Required with
	// redis_witness or stream.
	Replica string `yaml:"replica"`
	// RedisWitness keeps the latest checkpoint in Redis, under the
	// replica's name, instead of witness_file. Needs state.redis and
	// checkpoint_key_file.
	RedisWitness bool `yaml:"redis_witness"`
	// Stream copies every record, once durable here, to a Redis stream
	// for central collection. Needs state.redis.
	Stream *AuditStreamConfig `yaml:"stream"`
}

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
	OnFailure string `yaml:"on_failure"`
	// Revocations says how fresh each gateway keeps its copy of the
	// token revocation list.
	Revocations RevocationsConfig `yaml:"revocations"`
}

// LimitsConfig bounds what the gateway holds and waits for.
type LimitsConfig struct {
	// MaxRecordBytes caps one upstream record (default 1MiB).
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

// SourceConfig is one department's data service.
type SourceConfig struct {
	// Name is the source's name in URLs: /v1/{name}/...
	Name string `yaml:"name"`
	// Upstream is the base URL of the service.
	Upstream string `yaml:"upstream"`
	// Timeout bounds a whole upstream exchange, body included (default 10s).
	Timeout Duration `yaml:"timeout"`
	// Credentials are added to every upstream request; the caller's own
	// credentials never are.
	Credentials *CredentialConfig `yaml:"credentials"`
	// TLS verifies an https upstream against its own CA, and presents a
	// client certificate to it (see config_tls.go).
	TLS *SourceTLSConfig `yaml:"tls"`
	// Datasets are the collections the source serves.
	Datasets []DatasetConfig `yaml:"datasets"`
}

// CredentialConfig is a header the gateway sends upstream.
type CredentialConfig struct {
	// Header name, e.g. Authorization.
	Header string `yaml:"header"`
	// ValueFile holds the header value (trailing newline ignored).
	ValueFile string `yaml:"value_file"`
	// ValueEnv names an environment variable holding the value.
	ValueEnv string `yaml:"value_env"`
}

// DatasetConfig is one collection of records.
type DatasetConfig struct {
	// Name is the dataset's name in URLs: /v1/{source}/{name}.
	Name string `yaml:"name"`
	// Path is the upstream path of the collection; a record is at Path/{id}.
	Path string `yaml:"path"`
	// Records is the top-level member of the upstream body holding the
	// records (default "items"; "" for a body that is the array itself).
	Records *string `yaml:"records"`
	// IDField is the field a record is looked up by at /{id}.
	IDField string `yaml:"id_field"`
	// PrivacyUnit is the field identifying the person a record is about.
	PrivacyUnit string `yaml:"privacy_unit"`
	// Classification is the dataset's sensitivity level (L1..L4).
	Classification string `yaml:"classification"`
	// Meta are top-level scalar members passed through (e.g. page); not
	// one of gatewayMembers.
	Meta []string `yaml:"meta"`
	// Counts are top-level counts passed through only when row filters
	// removed nothing (e.g. total).
	Counts []string `yaml:"counts"`
	// Filters maps record fields to the upstream query parameter that
	// filters on them, so a row filter can be pushed down.
	Filters map[string]string `yaml:"filters"`
	// Fields declares the dataset's fields: type and sensitivity level.
	Fields map[string]FieldConfig `yaml:"fields"`

	// The settings below shape statistics (GET .../stats).

	// Domains are public partition domains: for a group-by field, every
	// value it can take (e.g. the districts). A release grouped by such a
	// field reports every value, empty ones included, and spends nothing
	// on choosing partitions; records with other values are left out.
	// Grouping by another field selects partitions privately, at a δ.
	Domains map[string][]string `yaml:"domains"`
	// MaxRecords is the most records a whole read of the dataset (a
	// statistics request, a risk report) takes from the upstream, page by
	// page (default 100000); more is 413 too_large.
	MaxRecords int `yaml:"max_records"`
	// StatsPageSize is the page_size statistics requests read with
	// (default 1000).
	StatsPageSize int `yaml:"stats_page_size"`
	// MaxPartitions is how many partitions one privacy unit contributes to
	// in one release (default 1); a unit in more counts in a random few.
	MaxPartitions int `yaml:"max_partitions"`
	// Delta is the δ a release spends when it selects partitions privately
	// and, under zCDP accounting, the δ its Gaussian noise is calibrated
	// for (default 1e-6).
	Delta float64 `yaml:"delta"`
	// Population names the population (of populations) whose people this
	// dataset's privacy unit identifies; every release about it is charged
	// to that population's budget. Unset, the dataset is a population of
	// its own, with default_population's budget.
	Population string `yaml:"population"`
	// StatsTimeout bounds a whole read of the dataset (a statistics
	// request, a risk report), every page of it (default 60s); a read past
	// it is 504 upstream_timeout, and charged when it was a release.
	StatsTimeout Duration `yaml:"stats_timeout"`
	// KAnonymityRefresh is how old a view's k-anonymity class table (a
	// whole read of the dataset, for decisions with min_k) may grow
	// before the next release under it rebuilds it (default 24h). Until
	// then a record of a class the table does not hold (added by the
	// department since) is suppressed.
	KAnonymityRefresh Duration `yaml:"k_anonymity_refresh"`
	// Noise marks the dataset as aggregated upstream; see NoiseConfig.
	Noise *NoiseConfig `yaml:"noise"`
	// Sharing, Owner and Basis are the dataset's entry in the hub's
	// catalogue (see config_hub.go).
	Sharing string `yaml:"sharing"`
	Owner   string `yaml:"owner"`
	Basis   string `yaml:"basis"`
}

// reservedSources are the names of /v1/ routes of the gateway's own, which
// no source may take.
var reservedSources = map[string]bool{"catalog": true, "explain": true, "requests": true, "grants": true,
	"demands": true, "objections": true, "notices": true, "me": true}

// Resource is the dataset as the policy sees it (input.resource) when
// source serves it.
func (d *DatasetConfig) Resource(source string) *policy.Resource {
	r := &policy.Resource{Source: source, Dataset: d.Name, Classification: d.Classification,
		Fields: make(map[string]policy.FieldInfo, len(d.Fields))}
	for name, f := range d.Fields {
		r.Fields[name] = policy.FieldInfo{Type: f.Type, Level: f.Level}
	}
	return r
}

// FieldConfig declares one field.
type FieldConfig struct {
	// Type: string, integer, number, date, id_cn, name_cn, phone_cn, ...
	Type string `yaml:"type"`
	// Level: L1 (public) .. L4 (identifies a person).
	Level string `yaml:"level"`
	// Class is the field's part in re-identification, for the risk
	// report: quasi (the default: with other fields it may single a
	// person out, e.g. district, birth date), sensitive (what must not be
	// learned of a person, e.g. diagnosis) or id (identifies a person on
	// its own, e.g. an ID number).
	Class string `yaml:"class"`
}

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	// An empty file is an empty configuration: Validate names what it lacks.
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config %s: %w", path, unknownKeyError(b, err))
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	c.dir = abs
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// Path resolves a path from the config against the config's directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	levelRE = regexp.MustCompile(`^L[1-4]$`)
)

// Validate checks the configuration and fills in defaults; errors name the
// offending field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Listen == "" {
		bad("listen", "required")
	} else if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		bad("listen", "want host:port, got %q", c.Listen)
	}
	c.ListenTLS.validate(bad)
	if c.HMACKeyFile == "" {
		bad("hmac_key_file", "required")
	}
	c.Auth.validate(bad)
	c.Policy.validate(bad)
	if c.Audit.Dir == "" {
		bad("audit.dir", "required")
	}
	c.Audit.validate(c, bad)
	c.validateScaleOut(bad)
	c.CORS.validate(bad)
	c.Open.validate(bad)
	c.Hub.validate(bad)
	l := &c.Limits
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
	if len(c.Sources) == 0 {
		bad("sources", "at least one source is required")
	}
	seen := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		f := fmt.Sprintf("sources[%d]", i)
		if !nameRE.MatchString(s.Name) {
			bad(f+".name", "want lower-case letters, digits, - or _, got %q", s.Name)
		} else if seen[s.Name] {
			bad(f+".name", "duplicate source %q", s.Name)
		} else if reservedSources[s.Name] {
			bad(f+".name", "%q is reserved: a route of the gateway's own", s.Name)
		}
		seen[s.Name] = true
		u, err := url.Parse(s.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(f+".upstream", "want an http(s) URL, got %q", s.Upstream)
		} else if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			bad(f+".upstream", "must not carry a query, fragment or user info")
		}
		if err == nil {
			s.TLS.validate(f, u.Scheme, bad)
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(10 * time.Second)
		}
		if s.Timeout < 0 {
			bad(f+".timeout", "must be positive")
		}
		if cr := s.Credentials; cr != nil {
			if cr.Header == "" {
				bad(f+".credentials.header", "required")
			} else if !validHeaderName(cr.Header) {
				bad(f+".credentials.header", "%q is not a header name", cr.Header)
			}
			if (cr.ValueFile == "") == (cr.ValueEnv == "") {
				bad(f+".credentials", "set exactly one of value_file and value_env")
			}
		}
		if len(s.Datasets) == 0 {
			bad(f+".datasets", "at least one dataset is required")
		}
		dsSeen := map[string]bool{}
		for j := range s.Datasets {
			d := &s.Datasets[j]
			df := fmt.Sprintf("%s.datasets[%d]", f, j)
			if !nameRE.MatchString(d.Name) {
				bad(df+".name", "want lower-case letters, digits, - or _, got %q", d.Name)
			} else if dsSeen[d.Name] {
				bad(df+".name", "duplicate dataset %q", d.Name)
			}
			dsSeen[d.Name] = true
			if !strings.HasPrefix(d.Path, "/") || strings.ContainsAny(d.Path, "?#") {
				bad(df+".path", "want an absolute path without query, got %q", d.Path)
			}
			if d.Records == nil {
				items := "items"
				d.Records = &items
			}
			if d.Classification != "" && !levelRE.MatchString(d.Classification) {
				bad(df+".classification", "want L1..L4, got %q", d.Classification)
			}
			for name, fc := range d.Fields {
				if fc.Level != "" && !levelRE.MatchString(fc.Level) {
					bad(df+".fields."+name+".level", "want L1..L4, got %q", fc.Level)
				}
				switch fc.Class {
				case "", "quasi", "sensitive", "id":
				default:
					bad(df+".fields."+name+".class", "want quasi, sensitive or id, got %q", fc.Class)
				}
			}
			if d.IDField != "" && d.Fields != nil {
				if _, ok := d.Fields[d.IDField]; !ok {
					bad(df+".id_field", "%q is not a declared field", d.IDField)
				}
			}
			if d.PrivacyUnit != "" && d.Fields != nil {
				if _, ok := d.Fields[d.PrivacyUnit]; !ok {
					bad(df+".privacy_unit", "%q is not a declared field", d.PrivacyUnit)
				}
			}
			for field, param := range d.Filters {
				if param == "" {
					bad(df+".filters."+field, "needs an upstream parameter name")
				}
			}
			for _, m := range slices.Concat(d.Meta, d.Counts) {
				if slices.Contains(gatewayMembers, m) {
					bad(df+".meta", "%q is a member the gateway writes itself (%s)", m, strings.Join(gatewayMembers, ", "))
				}
			}
			d.validateStats(df, bad)
			d.validateSharing(df, s.Name, bad)
		}
	}
	c.validatePopulations(bad)
	return errors.Join(errs...)
}

func (a *AuditConfig) validate(c *Config, bad func(field, format string, args ...any)) {
	if a.SegmentMaxBytes < 0 || (a.SegmentMaxBytes > 0 && a.SegmentMaxBytes < 64<<10) {
		bad("audit.segment_max_bytes", "at least 64KiB")
	}
	if a.Preallocate != nil && *a.Preallocate > 64<<20 {
		bad("audit.preallocate", "between 0 and 64MiB")
	}
	if a.CheckpointEvery < 0 {
		bad("audit.checkpoint_every", "must not be negative")
	}
	if a.CheckpointInterval < 0 {
		bad("audit.checkpoint_interval", "must be positive")
	}
	if a.WitnessFile != "" {
		if a.CheckpointKeyFile == "" {
			bad("audit.witness_file", "needs audit.checkpoint_key_file")
		}
		// A witness inside the trail directory goes wherever the trail goes.
		rel, err := filepath.Rel(c.Path(a.Dir), c.Path(a.WitnessFile))
		outside := err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))
		if a.Dir != "" && !outside {
			bad("audit.witness_file", "must be outside audit.dir")
		}
	}
}

func (p *PolicyConfig) validate(bad func(field, format string, args ...any)) {
	switch {
	case p.Dir == "" && p.Bundle == nil:
		bad("policy.dir", "required: set policy.dir or policy.bundle")
	case p.Dir != "" && p.Bundle != nil:
		bad("policy", "set one of dir and bundle, not both")
	}
	if p.Watch == nil {
		watch := true
		p.Watch = &watch
	}
	if p.Debounce == 0 {
		p.Debounce = Duration(200 * time.Millisecond)
	}
	if p.Debounce < 0 || p.Debounce > Duration(time.Minute) {
		bad("policy.debounce", "want between 0s and 1m")
	}
	b := p.Bundle
	if b == nil {
		return
	}
	if u, err := url.Parse(b.URL); err != nil || u.Host == "" || !(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
		bad("policy.bundle.url", "want an https URL (http only on loopback), got %q", b.URL)
	} else if u.User != nil {
		bad("policy.bundle.url", "must not carry user info: use credentials")
	}
	if b.Poll == 0 {
		b.Poll = Duration(30 * time.Second)
	}
	if b.Poll < Duration(time.Second) {
		bad("policy.bundle.poll", "at least 1s")
	}
	if b.Timeout == 0 {
		b.Timeout = Duration(30 * time.Second)
	}
	if b.Timeout < 0 {
		bad("policy.bundle.timeout", "must be positive")
	}
	if b.MaxBytes == 0 {
		b.MaxBytes = 64 << 20
	}
	if cr := b.Credentials; cr != nil {
		if cr.Header == "" || !validHeaderName(cr.Header) {
			bad("policy.bundle.credentials.header", "want a header name, got %q", cr.Header)
		}
		if (cr.ValueFile == "") == (cr.ValueEnv == "") {
			bad("policy.bundle.credentials", "set exactly one of value_file and value_env")
		}
	}
	sg := &b.Signing
	if len(sg.Keys) == 0 {
		bad("policy.bundle.signing.keys", "required: bundles are always verified")
	}
	ids := map[string]bool{}
	for i, k := range sg.Keys {
		f := fmt.Sprintf("policy.bundle.signing.keys[%d]", i)
		if k.ID == "" {
			bad(f+".id", "required")
		} else if ids[k.ID] {
			bad(f+".id", "duplicate key id %q", k.ID)
		}
		ids[k.ID] = true
		if (k.PublicKeyFile == "") == (k.SecretFile == "") {
			bad(f, "set exactly one of public_key_file and secret_file")
		}
		switch {
		case strings.HasPrefix(k.Algorithm, "HS") && bundleAlgs[k.Algorithm]:
			if k.SecretFile == "" {
				bad(f+".algorithm", "%s needs secret_file", k.Algorithm)
			}
		case bundleAlgs[k.Algorithm]:
			if k.PublicKeyFile == "" {
				bad(f+".algorithm", "%s needs public_key_file", k.Algorithm)
			}
		default:
			bad(f+".algorithm", "want RS256/384/512, PS256/384/512, ES256/384/512 or HS256/384/512, got %q", k.Algorithm)
		}
	}
	if sg.KeyID == "" {
		bad("policy.bundle.signing.key_id", "required: name the key bundles must be signed with (GHSA-g2pf-6v5v-qcc8)")
	} else if !ids[sg.KeyID] {
		bad("policy.bundle.signing.key_id", "%q is not among policy.bundle.signing.keys", sg.KeyID)
	}
}

// bundleAlgs are the signature algorithms OPA verifies bundles with.
var bundleAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true, "HS256": true, "HS384": true, "HS512": true,
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
