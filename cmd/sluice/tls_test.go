package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/testpki"
)

// httpsClient trusts ca only and, with a client certificate, presents it.
func httpsClient(t *testing.T, ca *testpki.CA, cert *testpki.Issued) *http.Client {
	t.Helper()
	tc := &tls.Config{RootCAs: ca.Pool()}
	if cert != nil {
		pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// tlsGateway is `sluice serve` with listen_tls.
type tlsGateway struct {
	*proc
	dir string
	url string // https://127.0.0.1:PORT
}

func (g *tlsGateway) addr(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(g.url)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// writeTLSGateway writes keys, policy, files and a configuration whose
// listen_tls is listenTLS (a YAML flow mapping) into a new directory, and
// returns the configuration's path.
func writeTLSGateway(t *testing.T, listenTLS string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	files["hmac.key"] = []byte(strings.Repeat("k", 40))
	files["hs.key"] = []byte(strings.Repeat("s", 40))
	files["policies/test.rego"] = []byte(testPolicy)
	files["sluice.yaml"] = []byte(`listen: 127.0.0.1:0
listen_tls: ` + listenTLS + `
hmac_key_file: hmac.key
auth:
  issuer: test-issuer
  audience: test-audience
  keys:
    - {id: hs, algorithms: [HS256], secret_file: hs.key}
policy: {dir: policies}
audit: {dir: audit}
sources:
  - name: bad
    upstream: http://127.0.0.1:1
    datasets:
      - {name: good, path: /good}
`)
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "sluice.yaml")
}

// startTLSGateway runs `sluice serve` over the configuration
// writeTLSGateway writes, and waits until client finds it ready.
func startTLSGateway(t *testing.T, listenTLS string, files map[string][]byte, client *http.Client) *tlsGateway {
	t.Helper()
	cfg := writeTLSGateway(t, listenTLS, files)
	p := start(t, "serve", "--config", cfg)
	g := &tlsGateway{proc: p, dir: filepath.Dir(cfg), url: listening(t, p)}
	if !strings.HasPrefix(g.url, "https://") {
		t.Fatalf("the gateway says it listens at %s, want an https URL", g.url)
	}
	waitFor(t, p, func() bool {
		resp, err := client.Get(g.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return g
}

// gatewayFiles are the gateway's certificate and key at tls/gw.crt and
// tls/gw.key.
func gatewayFiles(c testpki.Issued) map[string][]byte {
	return map[string][]byte{"tls/gw.crt": c.CertPEM, "tls/gw.key": c.KeyPEM}
}

func TestServeOverTLSAnswersClientsThatTrustItsCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "sluice test CA")
	client := httpsClient(t, ca, nil)
	g := startTLSGateway(t, "{cert_file: tls/gw.crt, key_file: tls/gw.key}", gatewayFiles(ca.Server(t, 1)), client)

	resp, err := client.Get(g.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !json.Valid(body) {
		t.Fatalf("GET /healthz: %d %s %s, want 200 and JSON", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("served over %s, want HTTP/2", resp.Proto)
	}
	if v := resp.TLS.Version; v < tls.VersionTLS12 {
		t.Errorf("TLS version %x, want 1.2 or later", v)
	}

	// A client trusting only the system's roots does not get in.
	if resp, err := http.Get(g.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a client without the CA got %d, want a failed handshake", resp.StatusCode)
	}
	// Plain HTTP to the TLS port gets no answer from the gateway: Go's
	// server says "Client sent an HTTP request to an HTTPS server" and
	// hangs up.
	plain := "http://" + g.addr(t) + "/healthz"
	if resp, err := http.Get(plain); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || json.Valid(body) || resp.Header.Get("X-Request-Id") != "" {
			t.Errorf("GET %s: %d %s, want no answer of the gateway's", plain, resp.StatusCode, body)
		}
	}
}

func TestServeOverTLSPicksUpARenewedCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "sluice test CA")
	first, renewed := ca.Server(t, 1001), ca.Server(t, 2002)
	g := startTLSGateway(t, "{cert_file: tls/gw.crt, key_file: tls/gw.key}", gatewayFiles(first), httpsClient(t, ca, nil))
	serial := func() *big.Int {
		conn, err := tls.Dial("tcp", g.addr(t), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	if got := serial(); got.Cmp(first.Serial) != 0 {
		t.Fatalf("serial %v, want %v", got, first.Serial)
	}
	// As certificate tools do: write beside, rename over.
	for name, b := range map[string][]byte{"gw.key": renewed.KeyPEM, "gw.crt": renewed.CertPEM} {
		path := filepath.Join(g.dir, "tls", name)
		if err := os.WriteFile(path+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for serial().Cmp(renewed.Serial) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the gateway still serves serial %v, want %v; log:\n%s", first.Serial, renewed.Serial, g.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeOverTLSWithClientCAsServesOnlyCertificatesTheySigned(t *testing.T) {
	ca := testpki.NewCA(t, "sluice test CA")
	otherCA := testpki.NewCA(t, "another CA")
	member, stranger := ca.Client(t, 11, "app"), otherCA.Client(t, 12, "stranger")
	files := gatewayFiles(ca.Server(t, 1))
	files["tls/clients.pem"] = ca.CertPEM
	g := startTLSGateway(t, "{cert_file: tls/gw.crt, key_file: tls/gw.key, client_ca_file: tls/clients.pem}", files, httpsClient(t, ca, &member))

	for _, tc := range []struct {
		name string
		cert *testpki.Issued
	}{{"no client certificate", nil}, {"a certificate of another CA", &stranger}} {
		if resp, err := httpsClient(t, ca, tc.cert).Get(g.url + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("%s: %d, want a refused handshake", tc.name, resp.StatusCode)
		}
	}
	resp, err := httpsClient(t, ca, &member).Get(g.url + "/healthz")
	if err != nil {
		t.Fatalf("a certificate of the client CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a certificate of the client CA: %d, want 200", resp.StatusCode)
	}
}

func TestServeWithoutItsCertificateDoesNotStart(t *testing.T) {
	ca := testpki.NewCA(t, "sluice test CA")
	c := ca.Server(t, 1)
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"no certificate file", map[string][]byte{"tls/gw.key": c.KeyPEM}, "listen_tls.cert_file: open "},
		{"a key of another certificate", map[string][]byte{"tls/gw.crt": c.CertPEM, "tls/gw.key": ca.Server(t, 2).KeyPEM},
			"listen_tls: cert_file and key_file: tls: private key does not match public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeTLSGateway(t, "{cert_file: tls/gw.crt, key_file: tls/gw.key}", tc.files)
			_, stderr, err := runCmd(t, "serve", "--config", cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve: %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(stderr, "gateway listening") {
				t.Errorf("the gateway listened:\n%s", stderr)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "audit")); err == nil {
				t.Error("the audit trail was opened before the certificate was read")
			}
		})
	}
}
