package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// validConfig is a complete configuration that exercises every section;
// the tests below break it one field at a time.
const validConfig = `listen: 127.0.0.1:8080
hmac_key_file: keys/hmac.key
auth:
  issuer: https://idp.example
  audience: sluice
  keys:
    - id: demo
      algorithms: [EdDSA]
      public_key_file: keys/demo.pub
    - id: shared
      algorithms: [HS256, HS512]
      secret_file: keys/shared.key
policy:
  dir: policies
audit:
  dir: /var/lib/sluice/audit
sources:
  - name: health
    upstream: http://127.0.0.1:9001/api
    credentials:
      header: Authorization
      value_env: HEALTH_TOKEN
    datasets:
      - name: visits
        path: /visits
        id_field: visit_id
        privacy_unit: patient_id
        classification: L3
        meta: [page, page_size]
        counts: [total]
        filters: {district: district}
        fields:
          visit_id: {type: string, level: L2}
          patient_id: {type: id_cn, level: L4}
          district: {type: string, level: L1}
  - name: police
    upstream: https://police.example/v2
    timeout: 3s
    datasets:
      - name: residents
        path: /residents
        records: ""
`

// writeConfig writes a configuration file into a fresh directory.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// edit replaces the one occurrence of old in validConfig.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if n := strings.Count(validConfig, old); n != 1 {
		t.Fatalf("test edit %q matches %d times in validConfig, want once", old, n)
	}
	return strings.Replace(validConfig, old, new, 1)
}

func ptr[T any](v T) *T { return &v }

func TestLoadConfigFillsDefaults(t *testing.T) {
	path := writeConfig(t, validConfig)
	got, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := &Config{
		Listen:      "127.0.0.1:8080",
		HMACKeyFile: "keys/hmac.key",
		Auth: AuthConfig{
			Issuer:   "https://idp.example",
			Audience: "sluice",
			Leeway:   ptr(Duration(30 * time.Second)),
			Keys: []KeyConfig{
				{ID: "demo", Algorithms: []string{"EdDSA"}, PublicKeyFile: "keys/demo.pub"},
				{ID: "shared", Algorithms: []string{"HS256", "HS512"}, SecretFile: "keys/shared.key"},
			},
		},
		Policy: PolicyConfig{Dir: "policies", Watch: ptr(true), Debounce: Duration(200 * time.Millisecond)},
		Audit:  AuditConfig{Dir: "/var/lib/sluice/audit"},
		State: StateConfig{OnFailure: "closed",
			Revocations: RevocationsConfig{Poll: Duration(250 * time.Millisecond), MaxStale: Duration(5 * time.Second)}},
		Limits: LimitsConfig{
			MaxRecordBytes:   1 << 20,
			MaxResponseBytes: 1 << 30,
			SpoolMemoryBytes: 4 << 20,
			ShutdownTimeout:  Duration(30 * time.Second),
		},
		Sources: []SourceConfig{
			{
				Name:        "health",
				Upstream:    "http://127.0.0.1:9001/api",
				Timeout:     Duration(10 * time.Second),
				Credentials: &CredentialConfig{Header: "Authorization", ValueEnv: "HEALTH_TOKEN"},
				Datasets: []DatasetConfig{{
					Name:           "visits",
					Path:           "/visits",
					Records:        ptr("items"),
					IDField:        "visit_id",
					PrivacyUnit:    "patient_id",
					Classification: "L3",
					Meta:           []string{"page", "page_size"},
					Counts:         []string{"total"},
					Filters:        map[string]string{"district": "district"},
					Fields: map[string]FieldConfig{
						"visit_id":   {Type: "string", Level: "L2"},
						"patient_id": {Type: "id_cn", Level: "L4"},
						"district":   {Type: "string", Level: "L1"},
					},
					MaxRecords: 100_000, StatsPageSize: 1000, MaxPartitions: 1, Delta: 1e-6,
					StatsTimeout: Duration(time.Minute), KAnonymityRefresh: Duration(24 * time.Hour),
					Sharing: "conditional", Owner: "health",
				}},
			},
			{
				Name:     "police",
				Upstream: "https://police.example/v2",
				Timeout:  Duration(3 * time.Second),
				Datasets: []DatasetConfig{{Name: "residents", Path: "/residents", Records: ptr(""),
					MaxRecords: 100_000, StatsPageSize: 1000, MaxPartitions: 1, Delta: 1e-6,
					StatsTimeout: Duration(time.Minute), KAnonymityRefresh: Duration(24 * time.Hour),
					Sharing: "conditional", Owner: "police"}},
			},
		},
		CORS: CORSConfig{MaxAge: Duration(10 * time.Minute)},
		Open: OpenConfig{Publisher: "Sluice", Rate: &RateConfig{Rate: 120, Per: Duration(time.Minute), Burst: 60}},
		Hub:  HubConfig{Due: HubDue{Request: 10, Demand: 10, ObjectionAccept: 2, ObjectionResolve: 10}},
		dir:  filepath.Dir(path),
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Config{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestLoadConfigFillsJWKSDefaults(t *testing.T) {
	got, err := LoadConfig(writeConfig(t, edit(t, "  keys:\n", "  jwks:\n    url: https://idp.example/jwks.json\n  keys:\n")))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := &JWKSConfig{
		URL:              "https://idp.example/jwks.json",
		Refresh:          Duration(time.Hour),
		RefreshRateLimit: Duration(time.Minute),
		Algorithms:       []string{"RS256", "ES256", "EdDSA"},
	}
	if diff := cmp.Diff(want, got.Auth.JWKS); diff != "" {
		t.Errorf("jwks (-want +got):\n%s", diff)
	}
}

func TestLoadConfigReadsSettingsAsWritten(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string
		got, want func(c *Config) any
	}{
		{name: "leeway", old: "  audience: sluice\n", new: "  audience: sluice\n  leeway: 2m\n",
			got: func(c *Config) any { return c.Auth.leeway() }, want: func(*Config) any { return 2 * time.Minute }},
		{name: "zero leeway stays zero", old: "  audience: sluice\n", new: "  audience: sluice\n  leeway: 0s\n",
			got: func(c *Config) any { return c.Auth.leeway() }, want: func(*Config) any { return time.Duration(0) }},
		{name: "sizes", old: "policy:\n", new: "limits:\n  max_record_bytes: 64KiB\n  max_response_bytes: 2GiB\n  spool_memory_bytes: 1048576\n  shutdown_timeout: 5s\n  spool_dir: /tmp/spool\npolicy:\n",
			got: func(c *Config) any { return c.Limits },
			want: func(*Config) any {
				return LimitsConfig{MaxRecordBytes: 64 << 10, MaxResponseBytes: 2 << 30, SpoolMemoryBytes: 1 << 20,
					ShutdownTimeout: Duration(5 * time.Second), SpoolDir: "/tmp/spool"}
			}},
		{name: "size in plain bytes as a YAML string", old: "policy:\n", new: "limits:\n  max_record_bytes: \"2048\"\npolicy:\n",
			got: func(c *Config) any { return c.Limits.MaxRecordBytes }, want: func(*Config) any { return Size(2048) }},
		{name: "jwks settings", old: "  keys:\n", new: "  jwks:\n    url: http://[::1]:9000/jwks\n    refresh: 10m\n    refresh_rate_limit: 5s\n    algorithms: [PS256]\n  keys:\n",
			got: func(c *Config) any { return *c.Auth.JWKS },
			want: func(*Config) any {
				return JWKSConfig{URL: "http://[::1]:9000/jwks", Refresh: Duration(10 * time.Minute),
					RefreshRateLimit: Duration(5 * time.Second), Algorithms: []string{"PS256"}}
			}},
		{name: "credentials from a file", old: "      value_env: HEALTH_TOKEN\n", new: "      value_file: secrets/health.token\n",
			got:  func(c *Config) any { return *c.Sources[0].Credentials },
			want: func(*Config) any { return CredentialConfig{Header: "Authorization", ValueFile: "secrets/health.token"} }},
		{name: "listen on all interfaces", old: "listen: 127.0.0.1:8080\n", new: "listen: \":8443\"\n",
			got: func(c *Config) any { return c.Listen }, want: func(*Config) any { return ":8443" }},
		{name: "relative paths resolve against the config file", old: "", new: "",
			got: func(c *Config) any {
				return []string{c.Path(c.HMACKeyFile), c.Path(c.Policy.Dir), c.Path(c.Audit.Dir), c.Path("")}
			},
			want: func(c *Config) any {
				return []string{filepath.Join(c.dir, "keys/hmac.key"), filepath.Join(c.dir, "policies"), "/var/lib/sluice/audit", ""}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := validConfig
			if tt.old != "" {
				yaml = edit(t, tt.old, tt.new)
			}
			c, err := LoadConfig(writeConfig(t, yaml))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if diff := cmp.Diff(tt.want(c), tt.got(c)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadConfigNamesTheInvalidField(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     string // the error names the field and says what is wrong
	}{
		// top level
		{"listen missing", "listen: 127.0.0.1:8080\n", "", "listen: required"},
		{"listen without port", "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1\n", `listen: want host:port, got "127.0.0.1"`},
		{"listen with empty port", "listen: 127.0.0.1:8080\n", "listen: \"127.0.0.1:\"\n", `listen: want host:port`},
		{"hmac key missing", "hmac_key_file: keys/hmac.key\n", "", "hmac_key_file: required"},
		{"policy dir missing", "  dir: policies\n", "  dir: \"\"\n", "policy.dir: required"},
		{"audit dir missing", "  dir: /var/lib/sluice/audit\n", "  dir: \"\"\n", "audit.dir: required"},
		{"negative preallocate", "  dir: /var/lib/sluice/audit\n", "  dir: /var/lib/sluice/audit\n  preallocate: -1\n", `"-1" is not a size`},
		{"preallocate too large", "  dir: /var/lib/sluice/audit\n", "  dir: /var/lib/sluice/audit\n  preallocate: 1GiB\n", "audit.preallocate: between 0 and 64MiB"},

		// auth
		{"issuer missing", "  issuer: https://idp.example\n", "", "auth.issuer: required"},
		{"audience missing", "  audience: sluice\n", "", "auth.audience: required"},
		{"negative leeway", "  audience: sluice\n", "  audience: sluice\n  leeway: -1s\n", "auth.leeway: want between 0s and 5m"},
		{"leeway too long", "  audience: sluice\n", "  audience: sluice\n  leeway: 10m\n", "auth.leeway: want between 0s and 5m"},
		{"no keys and no jwks", validConfig[strings.Index(validConfig, "  keys:\n"):strings.Index(validConfig, "policy:\n")], "",
			"auth: set keys or jwks"},
		{"duplicate key id", "    - id: shared\n", "    - id: demo\n", `auth.keys[1].id: duplicate key id "demo"`},
		{"key without algorithms", "      algorithms: [EdDSA]\n", "", "auth.keys[0].algorithms: required"},
		{"unsupported algorithm", "[EdDSA]", "[Ed448]", `auth.keys[0].algorithms: unsupported algorithm "Ed448"`},
		{"none algorithm", "[EdDSA]", "[none]", `auth.keys[0].algorithms: unsupported algorithm "none"`},
		{"HS256 with a public key", "[EdDSA]", "[EdDSA, HS256]", "auth.keys[0].algorithms: HS256 needs a secret, not a public key"},
		{"RS256 with a secret", "[HS256, HS512]", "[HS256, RS256]", "auth.keys[1].algorithms: RS256 needs a public key, not a secret"},
		{"both key files", "      secret_file: keys/shared.key\n", "      secret_file: keys/shared.key\n      public_key_file: keys/shared.pub\n",
			"auth.keys[1]: set exactly one of secret_file and public_key_file"},
		{"neither key file", "      public_key_file: keys/demo.pub\n", "", "auth.keys[0]: set exactly one of secret_file and public_key_file"},
		{"jwks without url", "  keys:\n", "  jwks:\n    refresh: 1h\n  keys:\n", `auth.jwks.url: want an https URL (http only on loopback), got ""`},
		{"jwks over plain http", "  keys:\n", "  jwks:\n    url: http://idp.example/jwks\n  keys:\n", "auth.jwks.url: want an https URL"},
		{"jwks over http on a host named like loopback", "  keys:\n", "  jwks:\n    url: http://localhost.evil.example/jwks\n  keys:\n", "auth.jwks.url: want an https URL"},
		{"jwks with another scheme", "  keys:\n", "  jwks:\n    url: ftp://idp.example/jwks\n  keys:\n", "auth.jwks.url: want an https URL"},
		{"jwks with HMAC", "  keys:\n", "  jwks:\n    url: https://idp.example/jwks\n    algorithms: [RS256, HS256]\n  keys:\n",
			`auth.jwks.algorithms: unsupported algorithm "HS256" (no HMAC over JWKS)`},
		{"jwks with negative refresh", "  keys:\n", "  jwks:\n    url: https://idp.example/jwks\n    refresh: -1m\n  keys:\n", "auth.jwks.refresh: must be positive"},
		{"jwks with negative refresh limit", "  keys:\n", "  jwks:\n    url: https://idp.example/jwks\n    refresh_rate_limit: -1s\n  keys:\n",
			"auth.jwks.refresh_rate_limit: must be positive"},

		// limits
		{"record limit too small", "policy:\n", "limits:\n  max_record_bytes: 512\npolicy:\n", "limits.max_record_bytes: at least 1KiB"},
		{"negative shutdown timeout", "policy:\n", "limits:\n  shutdown_timeout: -1s\npolicy:\n", "limits.shutdown_timeout: must be positive"},

		// sources
		{"no sources", validConfig[strings.Index(validConfig, "sources:\n"):], "", "sources: at least one source is required"},
		{"source name missing", "  - name: police\n", "  - name: \"\"\n", `sources[1].name: want lower-case letters, digits, - or _, got ""`},
		{"source name upper case", "  - name: police\n", "  - name: Police\n", `sources[1].name: want lower-case letters, digits, - or _, got "Police"`},
		{"source name with a slash", "  - name: police\n", "  - name: po/lice\n", `sources[1].name: want lower-case letters`},
		{"duplicate source", "  - name: police\n", "  - name: health\n", `sources[1].name: duplicate source "health"`},
		{"catalog is reserved", "  - name: police\n", "  - name: catalog\n", `sources[1].name: "catalog" is reserved`},
		{"upstream missing", "    upstream: https://police.example/v2\n", "", `sources[1].upstream: want an http(s) URL, got ""`},
		{"upstream not a URL", "https://police.example/v2", "police.example", `sources[1].upstream: want an http(s) URL, got "police.example"`},
		{"upstream without host", "https://police.example/v2", "https:///v2", `sources[1].upstream: want an http(s) URL`},
		{"upstream of another scheme", "https://police.example/v2", "file:///etc/passwd", `sources[1].upstream: want an http(s) URL`},
		{"upstream with a query", "https://police.example/v2", "https://police.example/v2?key=1", "sources[1].upstream: must not carry a query, fragment or user info"},
		{"upstream with user info", "https://police.example/v2", "https://u:p@police.example/v2", "sources[1].upstream: must not carry a query, fragment or user info"},
		{"negative timeout", "    timeout: 3s\n", "    timeout: -3s\n", "sources[1].timeout: must be positive"},
		{"credentials without header", "      header: Authorization\n", "", "sources[0].credentials.header: required"},
		{"credentials with a bad header name", "      header: Authorization\n", "      header: \"Authorization: Bearer\"\n",
			`sources[0].credentials.header: "Authorization: Bearer" is not a header name`},
		{"credentials with both values", "      value_env: HEALTH_TOKEN\n", "      value_env: HEALTH_TOKEN\n      value_file: token\n",
			"sources[0].credentials: set exactly one of value_file and value_env"},
		{"credentials with neither value", "      value_env: HEALTH_TOKEN\n", "", "sources[0].credentials: set exactly one of value_file and value_env"},
		{"no datasets", "      - name: residents\n        path: /residents\n        records: \"\"\n", "", "sources[1].datasets: at least one dataset is required"},

		// datasets
		{"dataset name missing", "      - name: residents\n", "      - name: \"\"\n", `sources[1].datasets[0].name: want lower-case letters, digits, - or _, got ""`},
		{"duplicate dataset", "        records: \"\"\n", "        records: \"\"\n      - name: residents\n        path: /people\n",
			`sources[1].datasets[1].name: duplicate dataset "residents"`},
		{"path missing", "        path: /residents\n", "", `sources[1].datasets[0].path: want an absolute path without query, got ""`},
		{"relative path", "        path: /visits\n", "        path: visits\n", `sources[0].datasets[0].path: want an absolute path without query, got "visits"`},
		{"path with a query", "        path: /visits\n", "        path: /visits?all=1\n", `sources[0].datasets[0].path: want an absolute path without query`},
		{"path with a fragment", "        path: /visits\n", "        path: \"/visits#x\"\n", `sources[0].datasets[0].path: want an absolute path without query`},
		{"bad classification", "classification: L3", "classification: secret", `sources[0].datasets[0].classification: want L1..L4, got "secret"`},
		{"bad field level", "{type: id_cn, level: L4}", "{type: id_cn, level: L5}", `sources[0].datasets[0].fields.patient_id.level: want L1..L4, got "L5"`},
		{"id field not declared", "id_field: visit_id", "id_field: id", `sources[0].datasets[0].id_field: "id" is not a declared field`},
		{"privacy unit not declared", "privacy_unit: patient_id", "privacy_unit: person", `sources[0].datasets[0].privacy_unit: "person" is not a declared field`},
		{"filter without parameter", "filters: {district: district}", "filters: {district: \"\"}", "sources[0].datasets[0].filters.district: needs an upstream parameter name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(writeConfig(t, edit(t, tt.old, tt.new)))
			if err == nil {
				t.Fatalf("LoadConfig accepted the config: %+v", c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigReportsEveryInvalidField(t *testing.T) {
	yaml := edit(t, "listen: 127.0.0.1:8080\n", "")
	yaml = strings.Replace(yaml, "https://police.example/v2", "police", 1)
	_, err := LoadConfig(writeConfig(t, yaml))
	if err == nil {
		t.Fatal("LoadConfig accepted an invalid config")
	}
	for _, want := range []string{"listen: required", "sources[1].upstream: want an http(s) URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
}

// lineOf is the line of the first occurrence of sub in yaml.
func lineOf(t *testing.T, yaml, sub string) int {
	t.Helper()
	i := strings.Index(yaml, sub)
	if i < 0 {
		t.Fatalf("%q not in the test YAML", sub)
	}
	return 1 + strings.Count(yaml[:i], "\n")
}

func TestLoadConfigRejectsMalformedYAML(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		at       string   // the error names the line holding this
		want     []string // and says this
	}{
		{"unknown top-level key", "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\nlisten_addr: :80\n", "listen_addr",
			[]string{"field listen_addr not found"}},
		{"unknown nested key", "    timeout: 3s\n", "    timeout: 3s\n    timout: 3s\n", "timout",
			[]string{"field timout not found"}},
		{"misspelt key of a key", "      public_key_file: keys/demo.pub\n", "      public_key: keys/demo.pub\n", "public_key",
			[]string{"field public_key not found"}},
		{"duplicate key", "  audience: sluice\n", "  audience: sluice\n  audience: other\n", "audience: other",
			[]string{`"audience" already defined`}},
		{"bad duration", "    timeout: 3s\n", "    timeout: 3 seconds\n", "3 seconds", []string{`"3 seconds"`}},
		{"duration without unit", "    timeout: 3s\n", "    timeout: 3\n", "timeout: 3", []string{"missing unit"}},
		{"bad leeway", "  audience: sluice\n", "  audience: sluice\n  leeway: soon\n", "soon", []string{`"soon"`}},
		{"size with trailing garbage", "policy:\n", "limits:\n  max_record_bytes: 12abc\npolicy:\n", "12abc", []string{`"12abc" is not a size`}},
		{"fractional size", "policy:\n", "limits:\n  max_record_bytes: 1.5MiB\npolicy:\n", "1.5MiB", []string{`"1.5MiB" is not a size`}},
		{"size with a space", "policy:\n", "limits:\n  max_record_bytes: 1 MiB\npolicy:\n", "1 MiB", []string{`"1 MiB" is not a size`}},
		{"size in decimal units", "policy:\n", "limits:\n  max_record_bytes: 1MB\npolicy:\n", "1MB", []string{`"1MB" is not a size`}},
		{"size with a sign", "policy:\n", "limits:\n  max_record_bytes: +2048\npolicy:\n", "+2048", []string{`"+2048" is not a size`}},
		{"negative size", "policy:\n", "limits:\n  max_response_bytes: -1\npolicy:\n", "-1", []string{`"-1" is not a size`}},
		{"size with only a unit", "policy:\n", "limits:\n  max_response_bytes: MiB\npolicy:\n", ": MiB", []string{`"MiB" is not a size`}},
		{"size that overflows", "policy:\n", "limits:\n  max_response_bytes: 9223372036854775807GiB\npolicy:\n", "GiB", []string{"not a size"}},
		{"size that overflows without a unit", "policy:\n", "limits:\n  max_response_bytes: 9223372036854775808\npolicy:\n", "9223372036854775808", []string{"not a size"}},
		{"list where a string belongs", "listen: 127.0.0.1:8080\n", "listen: [a, b]\n", "listen", []string{"cannot unmarshal"}},
		{"tab indentation", "policy:\n  dir: policies\n", "policy:\n\tdir: policies\n", "\tdir", []string{"tab"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := edit(t, tt.old, tt.new)
			path := writeConfig(t, yaml)
			c, err := LoadConfig(path)
			if err == nil {
				t.Fatalf("LoadConfig accepted the config: %+v", c)
			}
			want := append([]string{path, fmt.Sprintf("line %d:", lineOf(t, yaml, tt.at))}, tt.want...)
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigOfAnEmptyFileNamesWhatIsMissing(t *testing.T) {
	_, err := LoadConfig(writeConfig(t, ""))
	if err == nil {
		t.Fatal("LoadConfig accepted an empty file")
	}
	for _, want := range []string{"listen: required", "auth.issuer: required", "sources: at least one source is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
}

func TestLoadConfigOfAMissingFileFails(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "nope.yaml")); err == nil {
		t.Error("LoadConfig of a missing file succeeded")
	}
}

func TestSizeParsesUnits(t *testing.T) {
	tests := []struct {
		in   string
		want Size
	}{
		{"0", 0},
		{"1", 1},
		{"1048576", 1 << 20},
		{"64KiB", 64 << 10},
		{"1MiB", 1 << 20},
		{"3GiB", 3 << 30},
		{"0MiB", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			yaml := edit(t, "policy:\n", "limits:\n  max_response_bytes: "+tt.in+"\n  max_record_bytes: 2KiB\npolicy:\n")
			c, err := LoadConfig(writeConfig(t, yaml))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			want := tt.want
			if want == 0 {
				want = 1 << 30 // unset: the default
			}
			if got := c.Limits.MaxResponseBytes; got != want {
				t.Errorf("max_response_bytes %q = %d, want %d", tt.in, got, want)
			}
		})
	}
}

func TestDurationWritesBackAsItReads(t *testing.T) {
	got, err := Duration(90 * time.Second).MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	if got != "1m30s" {
		t.Errorf("MarshalYAML = %v, want 1m30s", got)
	}
}
