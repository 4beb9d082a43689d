package gateway

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/policy"
)

// Every gateway a test builds from a fixture has each of its answers
// checked against openapi.json (openapi_test.go says how): an answer
// whose status, headers or body the description does not allow fails the
// test that got it. Benchmarks are left unchecked, so that they measure
// the gateway alone.
func init() { testHookHandler = checkedBySpec }

// specTests maps the configuration a test loaded with loadFixture to the
// test, so that the gateway built from it reports to that test.
var specTests sync.Map // *Config → *testing.T

// checkedBySpec wraps a gateway's handler with the description's checks
// when a test built it from a fixture.
func checkedBySpec(s *Server, h http.Handler) http.Handler {
	t, ok := specTests.Load(s.cfg)
	if !ok {
		return h
	}
	return specChecker(t.(*testing.T), h)
}

// hsHealth is the head of a test gateway's configuration: HS256 tokens
// from test-idp with the secret in hs.key, the policies in policies/, the
// trail in audit/, and the health source at upstream. The fixture appends
// the source's datasets.
func hsHealth(upstream string) string {
	return `listen: 127.0.0.1:0
hmac_key_file: hmac.key
auth:
  issuer: test-idp
  audience: sluice
  keys:
    - {id: hs, algorithms: [HS256], secret_file: hs.key}
policy: {dir: policies}
audit: {dir: audit}
sources:
  - name: health
    upstream: ` + upstream + `
    timeout: 5s
    datasets:
`
}

// loadFixture writes files (slash-separated path → content) and a fresh
// hmac.key into a new directory, then loads its sluice.yaml and the policy
// set the configuration names.
func loadFixture(t testing.TB, files map[string][]byte) (*Config, *policy.Set) {
	t.Helper()
	dir := t.TempDir()
	hk := make([]byte, 32)
	rand.Read(hk)
	files["hmac.key"] = hk
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadConfig(filepath.Join(dir, "sluice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if tt, ok := t.(*testing.T); ok {
		specTests.Store(cfg, tt)
		t.Cleanup(func() { specTests.Delete(cfg) })
	}
	set, err := policy.Load(context.Background(), cfg.Path(cfg.Policy.Dir))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, set
}
