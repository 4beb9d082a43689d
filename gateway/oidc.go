package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OpenID Connect Discovery 1.0: with auth.discovery the gateway reads the
// identity provider's configuration once, at start, to learn where its
// key set is; from then on the key set is fetched, refreshed and limited
// to the allowed algorithms exactly as one configured by auth.jwks.url.

const (
	// idpTimeout bounds one request to the identity provider.
	idpTimeout = 10 * time.Second
	// idpMaxBytes bounds a discovery document or key set. Real ones are a
	// few KiB; the bound keeps a broken or hostile provider from filling
	// the gateway's memory.
	idpMaxBytes = 1 << 20
	// idpMaxRedirects bounds the redirects followed for one request.
	idpMaxRedirects = 5
)

// idpClient fetches discovery documents and key sets. It refuses a body
// longer than idpMaxBytes, and follows a redirect only to a URL the
// gateway could have been configured with (checkFetchURL), never from
// https to http: a redirect must not take the exchange where it can be
// tampered with.
var idpClient = &http.Client{
	Transport: limitedTransport{next: http.DefaultTransport, max: idpMaxBytes},
	CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if len(via) >= idpMaxRedirects {
			return fmt.Errorf("stopped after %d redirects", len(via))
		}
		if err := checkFetchURL(r.URL.String()); err != nil {
			return fmt.Errorf("redirect refused: %w", err)
		}
		if via[len(via)-1].URL.Scheme == "https" && r.URL.Scheme != "https" {
			return fmt.Errorf("redirect refused: from https to %s", r.URL.Redacted())
		}
		return nil
	},
}

// providerMetadata is the part of an OpenID Provider's configuration
// (OpenID Connect Discovery 1.0 §3) the gateway uses.
//
// The document's id_token_signing_alg_values_supported is deliberately
// not used to narrow auth.jwks.algorithms: it lists the algorithms of ID
// tokens, while callers present access tokens, which a provider may sign
// otherwise. The allow-list stays the configured one, which never admits
// "none" nor HMAC with a key set's keys.
type providerMetadata struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// discoveryURL is where the configuration of issuer is published (§4):
// the issuer without its trailing slash, then
// /.well-known/openid-configuration. The issuer must be an https URL (http
// only on loopback) without query or fragment (§3, issuer).
func discoveryURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if checkFetchURL(issuer) != nil || err != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("want an https URL (http only on loopback) without query or fragment, got %q", issuer)
	}
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration", nil
}

// discoverKeySet reads the configuration of issuer and returns the URL of
// its key set.
//
// When the provider cannot be reached, or its document is not valid, the
// gateway does not start: a gateway without keys would refuse every
// caller while looking healthy, whereas an error at start names the URL
// that failed, and the service manager retries with its own backoff
// (deploy/sluice.service restarts on failure; Kubernetes restarts the
// pod).
func discoverKeySet(ctx context.Context, issuer string) (string, error) {
	u, err := discoveryURL(issuer)
	if err != nil {
		return "", fmt.Errorf("auth.issuer: with auth.discovery, %w", err)
	}
	md, err := fetchProviderMetadata(ctx, u)
	if err != nil {
		return "", fmt.Errorf("auth.discovery: %s: %w", u, err)
	}
	// §4.3: a document that names another issuer would let one provider
	// vouch for keys that sign another's tokens (a mix-up attack).
	if md.Issuer != issuer {
		return "", fmt.Errorf("auth.discovery: %s names issuer %q, want exactly auth.issuer %q", u, md.Issuer, issuer)
	}
	if md.JWKSURI == "" {
		return "", fmt.Errorf("auth.discovery: %s names no jwks_uri", u)
	}
	if err := checkFetchURL(md.JWKSURI); err != nil {
		return "", fmt.Errorf("auth.discovery: %s: jwks_uri: %w", u, err)
	}
	return md.JWKSURI, nil
}

// fetchProviderMetadata GETs the configuration document at u. A
// successful response is 200 with an application/json object (§4.2).
func fetchProviderMetadata(ctx context.Context, u string) (*providerMetadata, error) {
	ctx, cancel := context.WithTimeout(ctx, idpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := idpClient.Do(req)
	if err != nil {
		// The caller names the URL; *url.Error would repeat it.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d, want 200", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("content type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var md providerMetadata
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return &md, nil
}

// errResponseTooLarge is a response body longer than limitedTransport allows.
var errResponseTooLarge = fmt.Errorf("response larger than %d MiB", idpMaxBytes>>20)

// limitedTransport makes reading past max bytes of a response body fail,
// for readers that would otherwise read it all, such as the key set
// client's JSON decoder.
type limitedTransport struct {
	next http.RoundTripper
	max  int64
}

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.max}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly max bytes from a longer one.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, errResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
