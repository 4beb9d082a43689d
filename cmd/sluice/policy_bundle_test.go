package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
)

// opaBuild builds a signed bundle of dir as `opa build -b DIR --revision
// REV --signing-key KEY --signing-alg RS256 --verification-key-id KID`
// does (the same OPA code).
func opaBuild(t *testing.T, dir, revision, privateKey, keyID string) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := compile.New().WithPaths(dir).WithAsBundle(true).WithRegoVersion(ast.RegoV1).
		WithRevision(revision).WithOutput(&buf).
		WithBundleSigningConfig(bundle.NewSigningConfig(privateKey, "RS256", "")).
		WithBundleVerificationKeyID(keyID).
		Build(context.Background())
	if err != nil {
		t.Fatalf("opa build: %v", err)
	}
	return buf.Bytes()
}

// tamper changes one file of a bundle tarball after it was signed.
func tamper(t *testing.T, b []byte, file, old, new string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	changed := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(tr)
		if strings.HasSuffix(h.Name, file) && strings.Contains(string(content), old) {
			content, changed = []byte(strings.Replace(string(content), old, new, 1)), true
		}
		tw.WriteHeader(&tar.Header{Name: h.Name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
		tw.Write(content)
	}
	tw.Close()
	zw.Close()
	if !changed {
		t.Fatalf("bundle has no %s containing %q", file, old)
	}
	return out.Bytes()
}

// TestSignedBundlesReachTheGatewayAndTamperedOnesDoNot serves the shipped
// policies as a signed bundle: the gateway puts it in force and names its
// revision in the audit trail; a bundle tampered with after signing (one
// that would let the public read health records) is refused and the last
// good one keeps answering; the next good release is put in force.
func TestSignedBundlesReachTheGatewayAndTamperedOnesDoNot(t *testing.T) {
	d := startDemo(t, t.TempDir())
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(d.dir, "bundle-verify.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
	private := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	pol := copyPolicies(t)
	release1 := opaBuild(t, pol, "release-1", private, "sluice-bundles")

	var (
		mu      sync.Mutex
		body    = release1
		etag    = `"r1"`
		fetches int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		if r.Header.Get("Authorization") != "Bearer bundle-reader" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Write(body)
	}))
	defer srv.Close()
	serve := func(b []byte, tag string) {
		mu.Lock()
		body, etag = b, `"`+tag+`"`
		mu.Unlock()
	}
	os.WriteFile(filepath.Join(d.dir, "bundle.cred"), []byte("Bearer bundle-reader\n"), 0o600)
	p, gw, auditDir := serveDerived(t, d, "bundle", func(cfg string) string {
		return setPolicy(cfg, fmt.Sprintf(`  bundle:
    url: %s/bundles/sluice.tar.gz
    poll: 1s
    credentials: {header: Authorization, value_file: bundle.cred}
    signing:
      key_id: sluice-bundles
      keys:
        - {id: sluice-bundles, algorithm: RS256, public_key_file: bundle-verify.pem}
`, srv.URL))
	})
	waitReady(t, p, gw)
	analyst, public := d.manifest.Tokens["analyst"], d.manifest.Tokens["public"]

	r := get(t, gw+"/v1/health/visits?page_size=2", analyst)
	if r.status != http.StatusOK {
		t.Fatalf("analyst read under the bundle: %d %s", r.status, r.body)
	}
	if rec := recordFor(t, auditDir, r.header.Get("X-Request-Id")); rec["policy_revision"] != "release-1" {
		t.Errorf("audit policy_revision %v, want the bundle's release-1", rec["policy_revision"])
	}
	expectError(t, get(t, gw+"/v1/health/visits", public), http.StatusForbidden, "forbidden")

	// Tampered: the public may read every health record. Refused.
	serve(tamper(t, release1, "sluice.rego", `grant["public"] := {`, `grant["public"] := {
	"allow": true, "reason": "tampered", "fields": {"patient_name": "keep"},
} if { input.action == "read" }

grant["nobody"] := {`), "tampered")
	waitRefused(t, gw, "digest mismatch")
	expectError(t, get(t, gw+"/v1/health/visits", public), http.StatusForbidden, "forbidden")
	r = get(t, gw+"/v1/health/visits?page_size=2", analyst)
	if rec := recordFor(t, auditDir, r.header.Get("X-Request-Id")); r.status != http.StatusOK || rec["policy_revision"] != "release-1" {
		t.Errorf("after the tampered bundle: %d, revision %v; want release-1 answering", r.status, rec["policy_revision"])
	}

	// Signed by someone else: refused too.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	serve(opaBuild(t, pol, "release-evil", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})), "sluice-bundles"), "evil")
	waitRefused(t, gw, "verification error")

	// The next good release is put in force.
	rewrite(t, filepath.Join(pol, "sluice.rego"), `"max_rows": 1000,`, `"max_rows": 900,`)
	serve(opaBuild(t, pol, "release-2", private, "sluice-bundles"), "r2")
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = get(t, gw+"/v1/health/visits?page_size=2", analyst)
		rec := recordFor(t, auditDir, r.header.Get("X-Request-Id"))
		if rec["policy_revision"] == "release-2" {
			if ob, _ := rec["obligations"].(map[string]any); ob["max_rows"] != float64(900) {
				t.Errorf("release-2 obligations %v, want max_rows 900", ob)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release-2 not in force after 30s; stderr:\n%s", p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ready := get(t, gw+"/readyz", "").String(); strings.Contains(ready, "refused") || !strings.Contains(ready, "revision release-2") {
		t.Errorf("readyz after a good release: %s", ready)
	}
	metrics := get(t, gw+"/metrics", "").String()
	for _, want := range []string{`sluice_policy_rejections_total{set="active"} 2`, `sluice_policy_activations_total{set="active"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
