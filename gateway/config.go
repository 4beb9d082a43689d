package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// The configuration file: this file holds its top level and the order its
// sections are checked in; each section's types and validation are in a
// file named for it (config_state.go for state, config_sources.go for
// sources and their datasets; cors.go keeps cors beside the middleware).
// docs/config.md and docs/config.schema.json are generated from the doc
// comments of these types (config_doc.go): a field's doc comment is the
// reference text of its key, and says its default and whether it is
// required.

// Config is the gateway's configuration file (sluice.yaml). Relative paths
// in it are relative to the file's directory.
type Config struct {
	// Listen is the address the gateway serves on, e.g. 127.0.0.1:8080.
	// Required.
	Listen string `yaml:"listen"`
	// ListenTLS serves HTTPS on listen instead of plain HTTP (see
	// config_tls.go).
	ListenTLS *ListenTLSConfig `yaml:"listen_tls"`
	// HMACKeyFile holds the gateway's secret (at least 32 bytes). Audit
	// hashes of query values and identifiers, and pseudonyms, are keyed with
	// keys derived from it. Required.
	HMACKeyFile string `yaml:"hmac_key_file"`
	// Auth says which bearer tokens the gateway accepts. Required.
	Auth AuthConfig `yaml:"auth"`
	// Policy says where the Rego policies are. Required: a dir or a
	// bundle.
	Policy PolicyConfig `yaml:"policy"`
	// Audit says where the audit trail is kept. Required.
	Audit AuditConfig `yaml:"audit"`
	// State says where privacy budgets and statistics answers are kept.
	State StateConfig `yaml:"state"`
	// Limits bound requests and upstream responses.
	Limits LimitsConfig `yaml:"limits"`
	// RateLimits bound how often callers may ask (see config_limits.go).
	RateLimits RateLimitsConfig `yaml:"rate_limits"`
	// Sources are the departments' data services behind the gateway.
	// Required: at least one.
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

// Validate checks the configuration and fills in defaults; errors name the
// offending field. Each section checks itself, reporting every problem it
// finds through bad, so that one run names them all.
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
	c.Audit.validate(c, bad)
	c.State.validate(bad)
	c.RateLimits.validate(bad)
	c.CORS.validate(bad)
	c.Open.validate(bad)
	c.Hub.validate(bad)
	c.Limits.validate(bad)
	validateSources(c.Sources, bad)
	c.validatePopulations(bad)
	return errors.Join(errs...)
}

// nameRE is what a name in URLs and in the configuration's own references
// (sources, datasets, populations, replicas, departments) may be.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
