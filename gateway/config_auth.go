package gateway

import (
	"fmt"
	"net/url"
	"time"
)

// AuthConfig configures bearer-token validation.
type AuthConfig struct {
	// Issuer is the "iss" claim tokens must carry. Required.
	Issuer string `yaml:"issuer"`
	// Audience must be one of the token's "aud" audiences. Required.
	Audience string `yaml:"audience"`
	// Leeway tolerates clock skew on exp, nbf and iat (default 30s when
	// unset, at most 5m; 0s allows no skew).
	Leeway *Duration `yaml:"leeway"`
	// Keys are the verification keys. Each key accepts only its algorithms.
	Keys []KeyConfig `yaml:"keys"`
	// JWKS fetches further keys from the identity provider. With
	// discovery its url stays empty and its other settings apply to the
	// key set the discovery document names.
	JWKS *JWKSConfig `yaml:"jwks"`
	// Discovery finds the identity provider's key set through OpenID
	// Connect Discovery: at start the gateway reads
	// {issuer}/.well-known/openid-configuration (issuer without its
	// trailing slash) and verifies tokens with the keys at the document's
	// jwks_uri, refreshed and limited to the algorithms as jwks says
	// (default false). The issuer must then be an https URL (http only on
	// loopback) without query or fragment; the document must name exactly
	// that issuer and an https jwks_uri (http only on loopback). When the
	// document cannot be read or is not valid, the gateway does not start.
	// It is read once: a new jwks_uri takes a restart.
	Discovery bool `yaml:"discovery"`
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
	// URL of the key set (https, or http on loopback). Required unless
	// discovery is true; leave it empty then, as discovery reads it from
	// the identity provider's discovery document.
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
	if a.Discovery {
		if a.Issuer != "" {
			if _, err := discoveryURL(a.Issuer); err != nil {
				bad("auth.issuer", "with auth.discovery, %v", err)
			}
		}
		if a.JWKS == nil {
			a.JWKS = &JWKSConfig{}
		}
	}
	if len(a.Keys) == 0 && a.JWKS == nil {
		bad("auth", "set keys or jwks, or discovery: true")
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
		if a.Discovery {
			// Two sources for one key set would leave a reader guessing
			// which the gateway trusts.
			if j.URL != "" {
				bad("auth.jwks.url", "leave empty with auth.discovery, which reads the key set's URL from the discovery document")
			}
		} else if err := checkFetchURL(j.URL); err != nil {
			bad("auth.jwks.url", "%v", err)
		}
		j.setDefaults()
		if j.Refresh < 0 {
			bad("auth.jwks.refresh", "must be positive")
		}
		// A zero or negative limit would let every unknown kid refetch the
		// key set: an amplifier against the identity provider.
		if j.RefreshRateLimit < 0 {
			bad("auth.jwks.refresh_rate_limit", "must be positive")
		}
		for _, alg := range j.Algorithms {
			if fam, ok := algFamily[alg]; !ok || fam == famHMAC {
				bad("auth.jwks.algorithms", "unsupported algorithm %q (no HMAC over JWKS)", alg)
			}
		}
	}
}

// setDefaults fills in the key set settings left unset.
func (j *JWKSConfig) setDefaults() {
	if j.Refresh == 0 {
		j.Refresh = Duration(time.Hour)
	}
	if j.RefreshRateLimit == 0 {
		j.RefreshRateLimit = Duration(time.Minute)
	}
	if len(j.Algorithms) == 0 {
		j.Algorithms = []string{"RS256", "ES256", "EdDSA"}
	}
}

// checkFetchURL refuses a URL the gateway may not fetch keys or provider
// metadata from: anything but https, except http on a loopback host,
// where no one can tamper with the exchange.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || !(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return fmt.Errorf("want an https URL (http only on loopback), got %q", raw)
	}
	return nil
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
