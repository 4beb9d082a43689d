package gateway

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// PolicyConfig locates the policies: a directory (watched and reloaded
// live) or a signed OPA bundle on a bundle server.
type PolicyConfig struct {
	// Dir holds .rego policies and JSON/YAML data. Required unless bundle
	// is set; set one of them, not both.
	Dir string `yaml:"dir"`
	// Watch reloads dir when a file in it changes (default true). A change
	// is put in force only when it compiles and its Rego tests
	// (*_test.rego) pass; otherwise the policy in force stays.
	Watch *bool `yaml:"watch"`
	// Debounce is how long dir must stay quiet after a change before it is
	// reloaded (default 200ms; at most 1m).
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
	// URL of the bundle: https, or http on loopback. Required.
	URL string `yaml:"url"`
	// Poll is the interval between fetches (default 30s; at least 1s).
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
	// Keys are the verification keys. Required: bundles are always
	// verified.
	Keys []BundleKeyConfig `yaml:"keys"`
}

// BundleKeyConfig is one bundle verification key.
type BundleKeyConfig struct {
	// ID is the key's id. Required, and unique among the keys.
	ID string `yaml:"id"`
	// Algorithm: RS256/384/512, PS256/384/512 or ES256/384/512 with
	// public_key_file; HS256/384/512 with secret_file. Required.
	//
	//config:enum bundleAlgs
	Algorithm string `yaml:"algorithm"`
	// PublicKeyFile holds a PEM public key or certificate. Set
	// public_key_file or secret_file.
	PublicKeyFile string `yaml:"public_key_file"`
	// SecretFile holds an HMAC secret.
	SecretFile string `yaml:"secret_file"`
}

// bundleAlgs are the signature algorithms OPA verifies bundles with.
var bundleAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true, "HS256": true, "HS384": true, "HS512": true,
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
	if p.Bundle != nil {
		p.Bundle.validate(bad)
	}
}

func (b *BundleConfig) validate(bad func(field, format string, args ...any)) {
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
	b.Credentials.validate("policy.bundle.credentials", bad)
	b.Signing.validate(bad)
}

func (sg *BundleSigningConfig) validate(bad func(field, format string, args ...any)) {
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
