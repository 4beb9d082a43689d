package gateway

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluicegw/sluice/policy"
)

// SourceConfig is one department's data service.
type SourceConfig struct {
	// Name is the source's name in URLs: /v1/{name}/... Required:
	// lower-case letters, digits, - or _; not the name of a route of the
	// gateway's own (catalog, explain, requests, grants, demands,
	// objections, notices, me).
	//
	//config:pattern nameRE
	Name string `yaml:"name"`
	// Upstream is the base URL of the service: http or https, without
	// query, fragment or user info. Required.
	Upstream string `yaml:"upstream"`
	// Timeout bounds a whole upstream exchange, body included (default 10s).
	Timeout Duration `yaml:"timeout"`
	// Credentials are added to every upstream request; the caller's own
	// credentials never are.
	Credentials *CredentialConfig `yaml:"credentials"`
	// TLS verifies an https upstream against its own CA, and presents a
	// client certificate to it (see config_tls.go).
	TLS *SourceTLSConfig `yaml:"tls"`
	// Datasets are the collections the source serves. Required: at least
	// one.
	Datasets []DatasetConfig `yaml:"datasets"`
}

// CredentialConfig is a header the gateway sends upstream.
type CredentialConfig struct {
	// Header name, e.g. Authorization. Required.
	Header string `yaml:"header"`
	// ValueFile holds the header value (trailing newline ignored). Set
	// value_file or value_env.
	ValueFile string `yaml:"value_file"`
	// ValueEnv names an environment variable holding the value.
	ValueEnv string `yaml:"value_env"`
}

// DatasetConfig is one collection of records.
type DatasetConfig struct {
	// Name is the dataset's name in URLs: /v1/{source}/{name}. Required:
	// lower-case letters, digits, - or _.
	//
	//config:pattern nameRE
	Name string `yaml:"name"`
	// Path is the upstream path of the collection; a record is at
	// path/{id}. Required: an absolute path, without query or fragment.
	Path string `yaml:"path"`
	// Records is the top-level member of the upstream body holding the
	// records (default "items"; "" for a body that is the array itself).
	Records *string `yaml:"records"`
	// IDField is the field a record is looked up by at /{id}.
	IDField string `yaml:"id_field"`
	// PrivacyUnit is the field identifying the person a record is about.
	PrivacyUnit string `yaml:"privacy_unit"`
	// Classification is the dataset's sensitivity level (L1..L4).
	//
	//config:enum L1 L2 L3 L4
	Classification string `yaml:"classification"`
	// Meta are top-level scalar members passed through (e.g. page); not
	// one the gateway writes itself.
	Meta []string `yaml:"meta"`
	// Counts are top-level counts passed through only when row filters
	// removed nothing (e.g. total).
	Counts []string `yaml:"counts"`
	// Filters maps record fields to the upstream query parameter that
	// filters on them, so a row filter can be pushed down.
	Filters map[string]string `yaml:"filters"`
	// Fields declares the dataset's fields: type and sensitivity level.
	Fields map[string]FieldConfig `yaml:"fields"`

	// The settings below shape statistics (GET .../stats); they are
	// checked in config_stats.go.

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
	// in one release (default 1; at most 1000); a unit in more counts in a
	// random few.
	MaxPartitions int `yaml:"max_partitions"`
	// Delta is the δ a release spends when it selects partitions privately
	// and, under zCDP accounting, the δ its Gaussian noise is calibrated
	// for (default 1e-6; at most 0.001).
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
	// Noise marks the dataset as aggregated upstream: its rows are
	// aggregates, not records about people, and statistics add noise
	// calibrated to what the owner declares here.
	Noise *NoiseConfig `yaml:"noise"`

	// The hub's catalogue entry of the dataset (checked in
	// config_hub.go).

	// Sharing says whether the dataset's records may be requested through
	// the hub: unconditional (a request is approved at once), conditional
	// (the default: a steward of the owning department decides) or none (a
	// request is refused, with basis).
	//
	//config:enum unconditional conditional none
	Sharing string `yaml:"sharing"`
	// Owner is the department whose stewards decide requests for the
	// dataset (default the source's name).
	//
	//config:pattern nameRE
	Owner string `yaml:"owner"`
	// Basis is the rule that forbids sharing the dataset. Required with
	// sharing none.
	Basis string `yaml:"basis"`
}

// FieldConfig declares one field.
type FieldConfig struct {
	// Type: string, integer, number, date, id_cn, name_cn, phone_cn, ...
	Type string `yaml:"type"`
	// Level: L1 (public) .. L4 (identifies a person).
	//
	//config:enum L1 L2 L3 L4
	Level string `yaml:"level"`
	// Class is the field's part in re-identification, for the risk
	// report: quasi (the default: with other fields it may single a
	// person out, e.g. district, birth date), sensitive (what must not be
	// learned of a person, e.g. diagnosis) or id (identifies a person on
	// its own, e.g. an ID number).
	//
	//config:enum quasi sensitive id
	Class string `yaml:"class"`
}

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

// reservedSources are the names of /v1/ routes of the gateway's own, which
// no source may take.
var reservedSources = map[string]bool{"catalog": true, "explain": true, "requests": true, "grants": true,
	"demands": true, "objections": true, "notices": true, "me": true}

// levelRE is a sensitivity level.
var levelRE = regexp.MustCompile(`^L[1-4]$`)

// validateSources checks the sources, each with its datasets.
func validateSources(sources []SourceConfig, bad func(field, format string, args ...any)) {
	if len(sources) == 0 {
		bad("sources", "at least one source is required")
	}
	seen := map[string]bool{}
	for i := range sources {
		s := &sources[i]
		f := fmt.Sprintf("sources[%d]", i)
		if !nameRE.MatchString(s.Name) {
			bad(f+".name", "want lower-case letters, digits, - or _, got %q", s.Name)
		} else if seen[s.Name] {
			bad(f+".name", "duplicate source %q", s.Name)
		} else if reservedSources[s.Name] {
			bad(f+".name", "%q is reserved: a route of the gateway's own", s.Name)
		}
		seen[s.Name] = true
		s.validate(f, bad)
	}
}

// validate checks the source at field path f, but for its name, which
// validateSources checks against the others'.
func (s *SourceConfig) validate(f string, bad func(field, format string, args ...any)) {
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
	s.Credentials.validate(f+".credentials", bad)
	if len(s.Datasets) == 0 {
		bad(f+".datasets", "at least one dataset is required")
	}
	seen := map[string]bool{}
	for j := range s.Datasets {
		d := &s.Datasets[j]
		df := fmt.Sprintf("%s.datasets[%d]", f, j)
		if !nameRE.MatchString(d.Name) {
			bad(df+".name", "want lower-case letters, digits, - or _, got %q", d.Name)
		} else if seen[d.Name] {
			bad(df+".name", "duplicate dataset %q", d.Name)
		}
		seen[d.Name] = true
		d.validate(df, s.Name, bad)
	}
}

// validate checks the credentials at field path f, if any.
func (cr *CredentialConfig) validate(f string, bad func(field, format string, args ...any)) {
	if cr == nil {
		return
	}
	if cr.Header == "" {
		bad(f+".header", "required")
	} else if !validHeaderName(cr.Header) {
		bad(f+".header", "%q is not a header name", cr.Header)
	}
	if (cr.ValueFile == "") == (cr.ValueEnv == "") {
		bad(f, "set exactly one of value_file and value_env")
	}
}

// validate checks the dataset at field path df of the named source, but
// for its name, which the source checks against its other datasets'.
func (d *DatasetConfig) validate(df, source string, bad func(field, format string, args ...any)) {
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
	d.validateSharing(df, source, bad)
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
