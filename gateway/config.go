package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the gateway's configuration file (sluice.yaml). Relative paths
// in it are relative to the file's directory.
type Config struct {
	// Listen is the address the gateway serves on, e.g. 127.0.0.1:8080.
	Listen string `yaml:"listen"`
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
	// Limits bound requests and upstream responses.
	Limits LimitsConfig `yaml:"limits"`
	// Sources are the departments' data services behind the gateway.
	Sources []SourceConfig `yaml:"sources"`

	// dir is the directory of the configuration file.
	dir string
}

// AuthConfig configures bearer-token validation.
type AuthConfig struct {
	// Issuer is the required "iss" claim.
	Issuer string `yaml:"issuer"`
	// Audience is the required "aud" claim (one of the token's audiences).
	Audience string `yaml:"audience"`
	// Leeway tolerates clock skew on exp, nbf and iat (default 30s when
	// unset, at most 5m; 0s allows no skew).
	Leeway *Duration `yaml:"leeway"`
	// Keys are the verification keys. Each key accepts only its algorithms.
	Keys []KeyConfig `yaml:"keys"`
	// JWKS fetches further keys from the identity provider.
	JWKS *JWKSConfig `yaml:"jwks"`
}

// KeyConfig is one verification key.
type KeyConfig struct {
	// ID is the key id a token names in its "kid" header. Tokens without a
	// kid are tried against keys allowed for their algorithm.
	ID string `yaml:"id"`
	// Algorithms this key verifies: HS256/384/512 for a secret; RS256/384/512
	// or PS256/384/512 for an RSA key; ES256/384/512 for an EC key; EdDSA for
	// an Ed25519 key.
	Algorithms []string `yaml:"algorithms"`
	// SecretFile holds an HMAC secret (at least 32 bytes).
	SecretFile string `yaml:"secret_file"`
	// PublicKeyFile holds a PEM public key (PKIX) or certificate.
	PublicKeyFile string `yaml:"public_key_file"`
}

// JWKSConfig fetches keys from a JSON Web Key Set URL.
type JWKSConfig struct {
	// URL of the key set (https, or http on loopback).
	URL string `yaml:"url"`
	// Refresh is how often the key set is refetched (default 1h); an
	// unknown kid triggers a refetch at most every RefreshRateLimit.
	Refresh Duration `yaml:"refresh"`
	// RefreshRateLimit bounds refetches on unknown kids (default 1m).
	RefreshRateLimit Duration `yaml:"refresh_rate_limit"`
	// Algorithms the key set's keys may be used with (default RS256, ES256,
	// EdDSA); a key's own "alg" must also match.
	Algorithms []string `yaml:"algorithms"`
}

// PolicyConfig locates the policies.
type PolicyConfig struct {
	// Dir holds .rego policies and JSON/YAML data.
	Dir string `yaml:"dir"`
}

// AuditConfig locates the audit trail.
type AuditConfig struct {
	// Dir holds the hash-chained trail.
	Dir string `yaml:"dir"`
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
	// Meta are top-level scalar members passed through (e.g. page).
	Meta []string `yaml:"meta"`
	// Counts are top-level counts passed through only when row filters
	// removed nothing (e.g. total).
	Counts []string `yaml:"counts"`
	// Filters maps record fields to the upstream query parameter that
	// filters on them, so a row filter can be pushed down.
	Filters map[string]string `yaml:"filters"`
	// Fields declares the dataset's fields: type and sensitivity level.
	Fields map[string]FieldConfig `yaml:"fields"`
}

// FieldConfig declares one field.
type FieldConfig struct {
	// Type: string, integer, number, date, id_cn, name_cn, phone_cn, ...
	Type string `yaml:"type"`
	// Level: L1 (public) .. L4 (identifies a person).
	Level string `yaml:"level"`
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
		return nil, fmt.Errorf("parse config %s: %w", path, err)
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
	if c.HMACKeyFile == "" {
		bad("hmac_key_file", "required")
	}
	c.Auth.validate(bad)
	if c.Policy.Dir == "" {
		bad("policy.dir", "required")
	}
	if c.Audit.Dir == "" {
		bad("audit.dir", "required")
	}
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
		} else if s.Name == "catalog" {
			bad(f+".name", `"catalog" is reserved`)
		}
		seen[s.Name] = true
		if u, err := url.Parse(s.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(f+".upstream", "want an http(s) URL, got %q", s.Upstream)
		} else if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			bad(f+".upstream", "must not carry a query, fragment or user info")
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
		}
	}
	return errors.Join(errs...)
}

func (a *AuthConfig) validate(bad func(field, format string, args ...any)) {
	if a.Issuer == "" {
		bad("auth.issuer", "required")
	}
	if a.Audience == "" {
		bad("auth.audience", "required")
	}
	if a.Leeway == nil {
		leeway := Duration(defaultLeeway)
		a.Leeway = &leeway
	}
	if *a.Leeway < 0 || *a.Leeway > Duration(5*time.Minute) {
		bad("auth.leeway", "want between 0s and 5m")
	}
	if len(a.Keys) == 0 && a.JWKS == nil {
		bad("auth", "set keys or jwks")
	}
	ids := map[string]bool{}
	for i, k := range a.Keys {
		f := fmt.Sprintf("auth.keys[%d]", i)
		if k.ID != "" && ids[k.ID] {
			bad(f+".id", "duplicate key id %q", k.ID)
		}
		ids[k.ID] = true
		if (k.SecretFile == "") == (k.PublicKeyFile == "") {
			bad(f, "set exactly one of secret_file and public_key_file")
		}
		if len(k.Algorithms) == 0 {
			bad(f+".algorithms", "required: list the algorithms this key may verify")
		}
		for _, alg := range k.Algorithms {
			fam, ok := algFamily[alg]
			switch {
			case !ok:
				bad(f+".algorithms", "unsupported algorithm %q", alg)
			case k.SecretFile != "" && fam != famHMAC:
				bad(f+".algorithms", "%s needs a public key, not a secret", alg)
			case k.PublicKeyFile != "" && fam == famHMAC:
				bad(f+".algorithms", "%s needs a secret, not a public key", alg)
			}
		}
	}
	if j := a.JWKS; j != nil {
		u, err := url.Parse(j.URL)
		if err != nil || u.Host == "" || !(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
			bad("auth.jwks.url", "want an https URL (http only on loopback), got %q", j.URL)
		}
		if j.Refresh == 0 {
			j.Refresh = Duration(time.Hour)
		}
		if j.Refresh < 0 {
			bad("auth.jwks.refresh", "must be positive")
		}
		if j.RefreshRateLimit == 0 {
			j.RefreshRateLimit = Duration(time.Minute)
		}
		// A zero or negative limit would let every unknown kid refetch the
		// key set: an amplifier against the identity provider.
		if j.RefreshRateLimit < 0 {
			bad("auth.jwks.refresh_rate_limit", "must be positive")
		}
		if len(j.Algorithms) == 0 {
			j.Algorithms = []string{"RS256", "ES256", "EdDSA"}
		}
		for _, alg := range j.Algorithms {
			if fam, ok := algFamily[alg]; !ok || fam == famHMAC {
				bad("auth.jwks.algorithms", "unsupported algorithm %q (no HMAC over JWKS)", alg)
			}
		}
	}
}

// defaultLeeway is the clock skew tolerated when auth.leeway is unset.
const defaultLeeway = 30 * time.Second

// leeway is the configured clock skew tolerance.
func (a *AuthConfig) leeway() time.Duration {
	if a.Leeway == nil {
		return defaultLeeway
	}
	return time.Duration(*a.Leeway)
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

// Duration is a time.Duration written as "10s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Size is a byte count written as 1048576, "64KiB", "1MiB" or "1GiB".
type Size int64

// UnmarshalYAML parses a byte size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	var str string
	if err := n.Decode(&str); err != nil {
		return err
	}
	num, mult := str, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(str, u.suffix) {
			num, mult = strings.TrimSuffix(str, u.suffix), u.mult
			break
		}
	}
	// ParseUint, unlike Sscanf, rejects signs, spaces and trailing garbage
	// ("12abc", "1.5MiB").
	v, err := strconv.ParseUint(num, 10, 63)
	if err != nil || v > math.MaxInt64/uint64(mult) {
		return fmt.Errorf("line %d: %q is not a size: want a byte count like 1048576, 64KiB, 1MiB or 1GiB", n.Line, str)
	}
	*s = Size(int64(v) * mult)
	return nil
}
