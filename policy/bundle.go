package policy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"
)

// Bundle defaults.
const (
	DefaultBundlePoll     = 30 * time.Second
	DefaultBundleMaxBytes = 64 << 20
)

// BundleKey is a key signed bundles are verified with.
type BundleKey struct {
	// ID is the key id ("keyid") the bundle's signature must name.
	ID string
	// Algorithm is RS256/384/512, PS256/384/512, ES256/384/512 or
	// HS256/384/512.
	Algorithm string
	// Key is the PEM public key (or certificate), or the HMAC secret.
	Key string
	// Scope, when set, must equal the scope claim of the signature.
	Scope string
}

// BundleOptions say where a policy bundle comes from and how it is
// verified.
type BundleOptions struct {
	// URL of the bundle (a .tar.gz built with `opa build -b` and signed).
	URL string
	// Client fetches the bundle; a client with a 30s timeout when nil.
	Client *http.Client
	// Header is added to every request, e.g. the bundle server's
	// credentials.
	Header http.Header
	// Keys verify the bundle's signature.
	Keys []BundleKey
	// KeyID names the key of Keys the signature must verify with. It is
	// required: with an empty key id, OPA before 1.21.3 accepted bundles
	// stripped of their signature (GHSA-g2pf-6v5v-qcc8), and a signature
	// naming a key of its own choosing should not select the key.
	KeyID string
	// Scope, when set, must equal the signature's scope claim.
	Scope string
	// MaxBytes caps the bundle's size, compressed and each file
	// uncompressed (DefaultBundleMaxBytes when zero).
	MaxBytes int64
	// Poll is the interval between fetches (DefaultBundlePoll when zero);
	// each wait is jittered by up to a tenth so replicas spread out.
	Poll time.Duration
	// Logger receives one line per bundle put in force or refused.
	Logger *slog.Logger
}

// BundleSource fetches a signed OPA bundle from a bundle server and offers
// it to an Engine: a bundle is put in force only when its signature
// verifies with the configured key, it compiles and its Rego tests pass;
// otherwise the last good set stays. Fetches send the ETag of the last
// bundle read, so an unchanged bundle costs a 304.
type BundleSource struct {
	opts BundleOptions
	vc   *bundle.VerificationConfig
	log  *slog.Logger

	mu   sync.Mutex // one fetch at a time; guards etag
	etag string
}

// NewBundleSource checks the options and the verification keys.
func NewBundleSource(opts BundleOptions) (*BundleSource, error) {
	if opts.URL == "" {
		return nil, errors.New("bundle: a URL is required")
	}
	if opts.KeyID == "" {
		return nil, errors.New("bundle: a verification key id is required")
	}
	ks := map[string]*keys.Config{}
	for _, k := range opts.Keys {
		if k.ID == "" {
			return nil, errors.New("bundle: every key needs an id")
		}
		if _, dup := ks[k.ID]; dup {
			return nil, fmt.Errorf("bundle: duplicate key id %q", k.ID)
		}
		if !keys.IsSupportedAlgorithm(k.Algorithm) {
			return nil, fmt.Errorf("bundle: key %q: unsupported algorithm %q", k.ID, k.Algorithm)
		}
		// Not keys.NewKeyConfig: it reads a key that names an existing
		// file from that file.
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("bundle: key %q: %w", k.ID, err)
		}
		ks[k.ID] = &keys.Config{Key: k.Key, Algorithm: k.Algorithm, Scope: k.Scope}
	}
	vc := bundle.NewVerificationConfig(nil, opts.KeyID, opts.Scope, nil)
	if err := vc.ValidateAndInjectDefaults(ks); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !vc.SignatureRequired() {
		// This OPA predates the GHSA-g2pf-6v5v-qcc8 fix: refuse to run
		// rather than accept unsigned bundles.
		return nil, errors.New("bundle: this OPA version does not require bundle signatures")
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultBundleMaxBytes
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultBundlePoll
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &BundleSource{opts: opts, vc: vc, log: log}, nil
}

// checkKey fails for a key that cannot verify its algorithm's
// signatures, so a bad key is found at start rather than at the first
// bundle.
func checkKey(k BundleKey) error {
	if strings.HasPrefix(k.Algorithm, "HS") {
		if len(k.Key) < 32 {
			return errors.New("an HMAC secret needs at least 32 bytes")
		}
		return nil
	}
	block, _ := pem.Decode([]byte(k.Key))
	if block == nil {
		return errors.New("want a PEM public key or certificate")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return fmt.Errorf("want a PEM public key or certificate, got %s", block.Type)
	}
	if err != nil {
		return err
	}
	switch pub.(type) {
	case *rsa.PublicKey:
		if k.Algorithm[:2] != "RS" && k.Algorithm[:2] != "PS" {
			return fmt.Errorf("an RSA key does not verify %s", k.Algorithm)
		}
	case *ecdsa.PublicKey:
		if k.Algorithm[:2] != "ES" {
			return fmt.Errorf("an EC key does not verify %s", k.Algorithm)
		}
	default:
		return fmt.Errorf("%T keys are not supported for bundles", pub)
	}
	return nil
}

// Update fetches the bundle once and offers it to e. It returns nil when
// the bundle is unchanged (304, or the same content) or was put in force.
func (b *BundleSource) Update(ctx context.Context, e *Engine) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	body, etag, err := b.fetch(ctx)
	if err != nil {
		e.fetchFailed(err)
		b.log.Warn("policy bundle fetch failed; the policy in force stays", "url", b.opts.URL, "error", err)
		return err
	}
	e.fetchOK()
	if body == nil {
		return nil // not modified
	}
	snap, err := b.read(body)
	if err != nil {
		err = fmt.Errorf("bundle refused: %w", err)
		e.refuse(err)
		b.log.Error("policy change refused; the policy in force stays",
			"source", b.opts.URL, "revision", e.Current().Revision(), "error", err)
		// The same bytes will be refused again: do not fetch them again.
		b.etag = etag
		return err
	}
	err = e.offer(ctx, snap, "", b.opts.URL, b.log)
	b.etag = etag
	return err
}

// Poll updates e every opts.Poll until ctx ends. Failures are logged and
// shown by e.Status(); the set in force stays.
func (b *BundleSource) Poll(ctx context.Context, e *Engine) {
	for {
		wait := b.opts.Poll + time.Duration(rand.Int64N(int64(b.opts.Poll)/10+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		b.Update(ctx, e)
	}
}

// fetch downloads the bundle; a nil body means it is unchanged.
func (b *BundleSource) fetch(ctx context.Context) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.opts.URL, nil)
	if err != nil {
		return nil, "", err
	}
	for k, vs := range b.opts.Header {
		req.Header[k] = vs
	}
	// The ETag is of the last bundle read, put in force or refused: either
	// way, the same bytes need not be judged again.
	if b.etag != "" {
		req.Header.Set("If-None-Match", b.etag)
	}
	resp, err := b.opts.Client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("fetch bundle: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, "", nil
	default:
		return nil, "", fmt.Errorf("fetch bundle: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, b.opts.MaxBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("fetch bundle: %w", err)
	}
	if int64(len(body)) > b.opts.MaxBytes {
		return nil, "", fmt.Errorf("fetch bundle: larger than %d bytes", b.opts.MaxBytes)
	}
	return body, resp.Header.Get("ETag"), nil
}

// read verifies a bundle and turns it into a snapshot of policy files: its
// Rego modules and its data as one data.json at the root.
func (b *BundleSource) read(body []byte) (*snapshot, error) {
	bun, err := bundle.NewReader(bytes.NewReader(body)).
		WithBundleVerificationConfig(b.vc).
		WithRegoVersion(ast.RegoV1).
		WithSizeLimitBytes(b.opts.MaxBytes).
		Read()
	if err != nil {
		return nil, err
	}
	if bun.Type() != bundle.SnapshotBundleType {
		return nil, errors.New("delta bundles are not supported")
	}
	if len(bun.WasmModules) > 0 || len(bun.PlanModules) > 0 {
		return nil, errors.New("wasm and plan bundles are not supported: build the bundle from Rego")
	}
	files := map[string][]byte{}
	for _, m := range bun.Modules {
		p := path.Clean("/" + strings.TrimPrefix(m.Path, "/"))[1:]
		if !strings.HasSuffix(p, ".rego") || p == "" {
			return nil, fmt.Errorf("module %q: not a .rego path", m.Path)
		}
		if _, dup := files[p]; dup {
			return nil, fmt.Errorf("module %q twice", p)
		}
		files[p] = m.Raw
	}
	if len(bun.Data) > 0 {
		data, err := json.Marshal(bun.Data)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		files["data.json"] = data
	}
	snap := newSnapshot(files)
	if rev := bun.Manifest.Revision; rev != "" {
		// A new revision of the same files is still news for the audit
		// trail.
		snap.revision = rev
		h := sha256.Sum256([]byte(snap.digest + "\x00" + rev))
		snap.digest = hex.EncodeToString(h[:])[:16]
	}
	return snap, nil
}
