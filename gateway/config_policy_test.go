package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// bundleConfig is a valid policy block fetching a signed bundle.
const bundleConfig = `policy:
  bundle:
    url: https://bundles.example/sluice.tar.gz
    signing:
      key_id: release
      keys:
        - {id: release, algorithm: RS256, public_key_file: keys/bundle.pem}
        - {id: shared, algorithm: HS256, secret_file: keys/bundle.key}
`

func TestLoadConfigReadsABundleSourceWithDefaults(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, edit(t, "policy:\n  dir: policies\n", bundleConfig)))
	if err != nil {
		t.Fatal(err)
	}
	want := &BundleConfig{
		URL: "https://bundles.example/sluice.tar.gz", Poll: Duration(30 * time.Second), Timeout: Duration(30 * time.Second),
		MaxBytes: 64 << 20,
		Signing: BundleSigningConfig{KeyID: "release", Keys: []BundleKeyConfig{
			{ID: "release", Algorithm: "RS256", PublicKeyFile: "keys/bundle.pem"},
			{ID: "shared", Algorithm: "HS256", SecretFile: "keys/bundle.key"},
		}},
	}
	if diff := cmp.Diff(want, c.Policy.Bundle); diff != "" {
		t.Errorf("policy.bundle (-want +got):\n%s", diff)
	}
}

func TestLoadConfigNamesTheInvalidPolicyField(t *testing.T) {
	bundle := func(old, new string) string {
		if strings.Count(bundleConfig, old) != 1 {
			t.Fatalf("edit %q does not match the bundle config once", old)
		}
		return strings.Replace(validConfig, "policy:\n  dir: policies\n", strings.Replace(bundleConfig, old, new, 1), 1)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"dir and bundle", bundle("policy:\n", "policy:\n  dir: policies\n"), "policy: set one of dir and bundle, not both"},
		{"negative debounce", edit(t, "  dir: policies\n", "  dir: policies\n  debounce: -1s\n"), "policy.debounce: want between 0s and 1m"},
		{"no key id", bundle("      key_id: release\n", ""), "policy.bundle.signing.key_id: required"},
		{"key id of no key", bundle("key_id: release", "key_id: other"), `policy.bundle.signing.key_id: "other" is not among policy.bundle.signing.keys`},
		{"no keys", bundle(bundleConfig[strings.Index(bundleConfig, "      keys:"):], ""), "policy.bundle.signing.keys: required"},
		{"plain http", bundle("https://bundles.example", "http://bundles.example"), "policy.bundle.url: want an https URL (http only on loopback)"},
		{"user info in the url", bundle("https://bundles.example", "https://u:p@bundles.example"), "policy.bundle.url: must not carry user info"},
		{"poll too often", bundle("    signing:\n", "    poll: 100ms\n    signing:\n"), "policy.bundle.poll: at least 1s"},
		{"unsupported algorithm", bundle("algorithm: RS256", "algorithm: EdDSA"), `policy.bundle.signing.keys[0].algorithm: want RS256/384/512`},
		{"HMAC with a public key", bundle("algorithm: RS256", "algorithm: HS256"), "policy.bundle.signing.keys[0].algorithm: HS256 needs secret_file"},
		{"RSA with a secret", bundle("algorithm: HS256", "algorithm: RS256"), "policy.bundle.signing.keys[1].algorithm: RS256 needs public_key_file"},
		{"duplicate key id", bundle("{id: shared,", "{id: release,"), `policy.bundle.signing.keys[1].id: duplicate key id "release"`},
		{"credentials without a value", bundle("    signing:\n", "    credentials: {header: Authorization}\n    signing:\n"),
			"policy.bundle.credentials: set exactly one of value_file and value_env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadConfig error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
