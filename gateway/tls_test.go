package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/testpki"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/policy"
)

// lockedBuffer is a log destination the gateway's goroutines write while
// a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// replaceFile writes content beside path and renames it over path, as
// certificate tools do.
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedSerial is the serial of the certificate a new handshake with addr
// gets, trusting roots.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// serveTLS serves nothing but handshakes with cfg on a loopback port.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestListenTLSKeepsTheLastGoodCertificateUntilAGoodOneReplacesIt: a
// certificate file replaced with garbage is logged and leaves the pair in
// force; a new pair, renamed into place, is served within seconds.
func TestListenTLSKeepsTheLastGoodCertificateUntilAGoodOneReplacesIt(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "sluice test CA")
	first, second := ca.Server(t, 1001), ca.Server(t, 2002)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	replaceFile(t, certFile, first.CertPEM)
	replaceFile(t, keyFile, first.KeyPEM)
	var logs lockedBuffer
	cfg := &Config{ListenTLS: &ListenTLSConfig{CertFile: "tls.crt", KeyFile: "tls.key", MinVersion: "1.2"}, dir: dir}
	tc, err := cfg.ServerTLS(t.Context(), slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, tc)
	if got := servedSerial(t, addr, ca.Pool()); got.Cmp(first.Serial) != 0 {
		t.Fatalf("serial %v, want %v", got, first.Serial)
	}

	replaceFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"))
	waitUntil(t, "the bad certificate is refused", func() bool {
		return strings.Contains(logs.String(), "TLS certificate change not loaded")
	})
	if got := servedSerial(t, addr, ca.Pool()); got.Cmp(first.Serial) != 0 {
		t.Fatalf("after a bad file: serial %v, want the previous %v", got, first.Serial)
	}

	// The key first, then the certificate: between the two the files do
	// not match, and the pair in force stays.
	replaceFile(t, keyFile, second.KeyPEM)
	replaceFile(t, certFile, second.CertPEM)
	waitUntil(t, "the new certificate is served", func() bool {
		return servedSerial(t, addr, ca.Pool()).Cmp(second.Serial) == 0
	})
}

// TestListenTLSFollowsAKubernetesSecretVolume: such a volume holds
// symlinks tls.crt → ..data/tls.crt, and an update renames a new "..data"
// symlink over the old one; the certificate files themselves never change.
func TestListenTLSFollowsAKubernetesSecretVolume(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "sluice test CA")
	first, second := ca.Server(t, 1001), ca.Server(t, 2002)
	version := func(name string, c testpki.Issued) {
		os.Mkdir(filepath.Join(dir, name), 0o700)
		os.WriteFile(filepath.Join(dir, name, "tls.crt"), c.CertPEM, 0o600)
		os.WriteFile(filepath.Join(dir, name, "tls.key"), c.KeyPEM, 0o600)
		os.Symlink(name, filepath.Join(dir, "..data_tmp"))
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_01_01", first)
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &Config{ListenTLS: &ListenTLSConfig{CertFile: "tls.crt", KeyFile: "tls.key", MinVersion: "1.2"}, dir: dir}
	tc, err := cfg.ServerTLS(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, tc)
	if got := servedSerial(t, addr, ca.Pool()); got.Cmp(first.Serial) != 0 {
		t.Fatalf("serial %v, want %v", got, first.Serial)
	}
	version("..2026_02_01", second)
	os.RemoveAll(filepath.Join(dir, "..2026_01_01"))
	waitUntil(t, "the new certificate is served", func() bool {
		return servedSerial(t, addr, ca.Pool()).Cmp(second.Serial) == 0
	})
}

// waitUntil polls cond for up to 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s did not happen", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestListenTLSDoesNotStartWithoutAGoodCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "sluice test CA")
	good, other := ca.Server(t, 1), ca.Server(t, 2)
	tests := []struct {
		name  string
		files map[string][]byte
		lt    ListenTLSConfig
		want  string
	}{
		{"missing certificate", map[string][]byte{"key.pem": good.KeyPEM},
			ListenTLSConfig{CertFile: "cert.pem", KeyFile: "key.pem"}, "listen_tls.cert_file: open "},
		{"missing key", map[string][]byte{"cert.pem": good.CertPEM},
			ListenTLSConfig{CertFile: "cert.pem", KeyFile: "key.pem"}, "listen_tls.key_file: open "},
		{"key of another certificate", map[string][]byte{"cert.pem": good.CertPEM, "key.pem": other.KeyPEM},
			ListenTLSConfig{CertFile: "cert.pem", KeyFile: "key.pem"}, "listen_tls: cert_file and key_file: tls: private key does not match public key"},
		{"client CAs without a certificate", map[string][]byte{"cert.pem": good.CertPEM, "key.pem": good.KeyPEM, "ca.pem": good.KeyPEM},
			ListenTLSConfig{CertFile: "cert.pem", KeyFile: "key.pem", ClientCAFile: "ca.pem"}, "listen_tls.client_ca_file: no PEM certificate in it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			tt.lt.MinVersion = "1.2"
			cfg := &Config{ListenTLS: &tt.lt, dir: dir}
			_, err := cfg.ServerTLS(t.Context(), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ServerTLS error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "BEGIN") {
				t.Errorf("the error quotes a file: %v", err)
			}
		})
	}
}

func TestListenTLSHonoursMinVersion(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "sluice test CA")
	c := ca.Server(t, 1)
	os.WriteFile(filepath.Join(dir, "cert.pem"), c.CertPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), c.KeyPEM, 0o600)
	cfg := &Config{ListenTLS: &ListenTLSConfig{CertFile: "cert.pem", KeyFile: "key.pem", MinVersion: "1.3"}, dir: dir}
	tc, err := cfg.ServerTLS(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, tc)
	old := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS12}
	if conn, err := tls.Dial("tcp", addr, old); err == nil {
		conn.Close()
		t.Fatal("a TLS 1.2 client was served under min_version 1.3")
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", v)
	}
}

// tlsUpstream is a department's HTTPS service: records under items, and
// what each request it answered looked like.
type tlsUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	protos []int    // each request's HTTP major version
	peers  []string // each request's client certificate name, "" without
}

// newTLSUpstream serves cert; with clientCAs, it requires a client
// certificate they signed.
func newTLSUpstream(t *testing.T, cert testpki.Issued, clientCAs *x509.CertPool) *tlsUpstream {
	t.Helper()
	u := &tlsUpstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.protos = append(u.protos, r.ProtoMajor)
		peer := ""
		if len(r.TLS.PeerCertificates) > 0 {
			peer = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		u.peers = append(u.peers, peer)
		u.mu.Unlock()
		serveItems(w, r)
	}))
	u.TLS = &tls.Config{Certificates: []tls.Certificate{cert.Pair(t)}}
	if clientCAs != nil {
		u.TLS.ClientAuth, u.TLS.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs
	}
	u.EnableHTTP2 = true
	// Refused handshakes are what these tests are about: not news.
	u.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.StartTLS()
	t.Cleanup(u.Close)
	return u
}

// newTLSSourceGateway is a gateway whose source health is up, with the
// source's tls block (YAML flow mapping, "" for none) and files beside
// the configuration; it logs into logs.
func newTLSSourceGateway(t *testing.T, a *orderAudit, up string, tlsBlock string, files map[string][]byte, logs io.Writer) *testGateway {
	t.Helper()
	g := &testGateway{secret: make([]byte, 32)}
	rand.Read(g.secret)
	head := hsHealth(up)
	if tlsBlock != "" {
		head = strings.Replace(head, "    datasets:\n", "    tls: "+tlsBlock+"\n    datasets:\n", 1)
	}
	files["hs.key"] = g.secret
	files["policies/sluice.rego"] = []byte(testPolicy)
	files["sluice.yaml"] = []byte(head + `      - name: visits
        path: /visits
        fields:
          visit_id: {type: string, level: L2}
          patient_id: {type: id_cn, level: L4}
          district: {type: string, level: L1}
`)
	cfg, set := loadFixture(t, files)
	var err error
	g.srv, err = New(context.Background(), cfg, Deps{Audit: a, Policies: policy.NewEngine(set), Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestSourceTLSReachesOnlyTheUpstreamItWasToldToTrust: a department's
// HTTPS service is reached when the source trusts its CA (ca_file), and
// the name its certificate carries (server_name when that is not the
// URL's host) or presents the client certificate it requires. Otherwise
// the caller gets 502 upstream_invalid, and the trail and the log say why
// in the gateway's words, never quoting the certificate.
func TestSourceTLSReachesOnlyTheUpstreamItWasToldToTrust(t *testing.T) {
	ca := testpki.NewCA(t, "Sluice Test Department CA")
	otherCA := testpki.NewCA(t, "Sluice Test Other CA")
	gatewayCert := ca.Client(t, 7, "sluice-gateway")
	strangerCert := otherCA.Client(t, 8, "stranger")
	plain := newTLSUpstream(t, ca.Server(t, 100), nil)
	named := newTLSUpstream(t, ca.Server(t, 101, "dept.internal"), nil)
	mutual := newTLSUpstream(t, ca.Server(t, 102), ca.Pool())
	files := func() map[string][]byte {
		return map[string][]byte{
			"tls/ca.pem": ca.CertPEM, "tls/other-ca.pem": otherCA.CertPEM,
			"tls/gw.crt": gatewayCert.CertPEM, "tls/gw.key": gatewayCert.KeyPEM,
			"tls/stranger.crt": strangerCert.CertPEM, "tls/stranger.key": strangerCert.KeyPEM,
		}
	}
	// Under TLS 1.3 a client learns that its certificate was refused only
	// after its side of the handshake is done: usually from the
	// department's alert, sometimes from the connection closing under the
	// request it is writing. Each is a refusal, in the gateway's words.
	const refused = "(TLS handshake refused|connection cut short|network error|invalid response)"
	tests := []struct {
		name     string
		up       *tlsUpstream
		tlsBlock string
		status   int
		class    string // the fault class in the audit reason, for a 502 (a regexp)
		peer     string // the client certificate the upstream saw
	}{
		{"trusted through ca_file", plain, "{ca_file: tls/ca.pem}", http.StatusOK, "", ""},
		{"system roots only", plain, "", http.StatusBadGateway, "certificate not trusted", ""},
		{"an empty tls block: system roots", plain, "{}", http.StatusBadGateway, "certificate not trusted", ""},
		{"another CA", plain, "{ca_file: tls/other-ca.pem}", http.StatusBadGateway, "certificate not trusted", ""},
		{"a certificate for another name", named, "{ca_file: tls/ca.pem}", http.StatusBadGateway, "certificate not trusted", ""},
		{"server_name names the certificate's name", named, "{ca_file: tls/ca.pem, server_name: dept.internal}", http.StatusOK, "", ""},
		{"server_name names another", plain, "{ca_file: tls/ca.pem, server_name: dept.internal}", http.StatusBadGateway, "certificate not trusted", ""},
		{"client certificate presented", mutual, "{ca_file: tls/ca.pem, cert_file: tls/gw.crt, key_file: tls/gw.key}", http.StatusOK, "", "sluice-gateway"},
		{"client certificate missing", mutual, "{ca_file: tls/ca.pem}", http.StatusBadGateway, refused, ""},
		{"client certificate of another CA", mutual, "{ca_file: tls/ca.pem, cert_file: tls/stranger.crt, key_file: tls/stranger.key}",
			http.StatusBadGateway, refused, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &orderAudit{}
			var logs lockedBuffer
			g := newTLSSourceGateway(t, a, tt.up.URL, tt.tlsBlock, files(), &logs)
			tt.up.mu.Lock()
			before := len(tt.up.protos)
			tt.up.mu.Unlock()
			w := g.do(t, a, "/v1/health/visits", g.token(t, "reader"))
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			ev := a.events[len(a.events)-1]
			if tt.status == http.StatusOK {
				tt.up.mu.Lock()
				defer tt.up.mu.Unlock()
				if got := tt.up.protos[before:]; len(got) != 1 || got[0] != 2 {
					t.Errorf("upstream requests' HTTP versions %v, want one over HTTP/2", got)
				}
				if got := tt.up.peers[len(tt.up.peers)-1]; got != tt.peer {
					t.Errorf("the upstream saw client certificate %q, want %q", got, tt.peer)
				}
				if !strings.Contains(w.Body.String(), `"items"`) {
					t.Errorf("body %s", w.Body)
				}
				return
			}
			if code := decodeErrorCode(t, w.Body.Bytes()); code != "upstream_invalid" || ev.Code != "upstream_invalid" {
				t.Errorf("error code %q, audited %q, want upstream_invalid", code, ev.Code)
			}
			if !regexp.MustCompile(`department: ` + tt.class + ` \(`).MatchString(ev.Reason) {
				t.Errorf("audit reason %q, want the class %q", ev.Reason, tt.class)
			}
			// Nothing of the certificates or of crypto/tls's own words
			// reaches the caller, the trail or the log.
			leaks := []string{"Sluice Test", "dept.internal", "sluice-gateway", "x509", "tls:",
				base64.StdEncoding.EncodeToString(tt.up.Certificate().Raw)[:40]}
			for _, where := range []struct{ name, text string }{
				{"body", w.Body.String()}, {"audit reason", ev.Reason}, {"log", logs.String()},
			} {
				for _, leak := range leaks {
					if strings.Contains(where.text, leak) {
						t.Errorf("the %s holds %q: %s", where.name, leak, where.text)
					}
				}
			}
		})
	}
}

// decodeErrorCode is the code of a JSON error body.
func decodeErrorCode(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not a JSON error: %s", body)
	}
	return v.Error.Code
}

func TestSourceTLSFilesAreReadAtStart(t *testing.T) {
	ca := testpki.NewCA(t, "sluice test CA")
	c := ca.Client(t, 1, "sluice-gateway")
	tests := []struct {
		name     string
		tlsBlock string
		files    map[string][]byte
		want     string
	}{
		{"missing CA file", "{ca_file: ca.pem}", map[string][]byte{}, "sources[0]: tls.ca_file: open "},
		{"CA file without certificates", "{ca_file: ca.pem}", map[string][]byte{"ca.pem": []byte("nothing")},
			"sources[0]: tls.ca_file: no PEM certificate in it"},
		{"key of another certificate", "{cert_file: c.pem, key_file: k.pem}",
			map[string][]byte{"c.pem": c.CertPEM, "k.pem": ca.Client(t, 2, "x").KeyPEM},
			"sources[0]: tls.cert_file and tls.key_file: tls: private key does not match public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files["hs.key"] = make([]byte, 32)
			tt.files["policies/sluice.rego"] = []byte(testPolicy)
			tt.files["sluice.yaml"] = []byte(strings.Replace(hsHealth("https://127.0.0.1:1"), "    datasets:\n",
				"    tls: "+tt.tlsBlock+"\n    datasets:\n", 1) + "      - {name: visits, path: /visits}\n")
			cfg, set := loadFixture(t, tt.files)
			_, err := New(t.Context(), cfg, Deps{Audit: &orderAudit{}, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigNamesInvalidTLSSettings(t *testing.T) {
	const listen = "listen: 127.0.0.1:8080\n"
	const police = "    timeout: 3s\n"
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{"listen_tls without cert_file", listen, listen + "listen_tls: {key_file: tls.key}\n", "listen_tls.cert_file: required"},
		{"listen_tls without key_file", listen, listen + "listen_tls: {cert_file: tls.crt}\n", "listen_tls.key_file: required"},
		{"listen_tls empty", listen, listen + "listen_tls: {}\n", "listen_tls.cert_file: required"},
		{"min_version 1.1", listen, listen + "listen_tls: {cert_file: tls.crt, key_file: tls.key, min_version: \"1.1\"}\n",
			`listen_tls.min_version: want "1.2" or "1.3", got "1.1"`},
		{"min_version 1.0 unquoted", listen, listen + "listen_tls: {cert_file: tls.crt, key_file: tls.key, min_version: 1.0}\n",
			`listen_tls.min_version: want "1.2" or "1.3", got "1.0"`},
		{"min_version by name", listen, listen + "listen_tls: {cert_file: tls.crt, key_file: tls.key, min_version: TLS13}\n",
			`listen_tls.min_version: want "1.2" or "1.3", got "TLS13"`},
		{"listen_tls with an unknown setting", listen, listen + "listen_tls: {cert_file: tls.crt, key_file: tls.key, ciphers: [RC4]}\n",
			"field ciphers not found"},
		{"tls on a plain http upstream", "    upstream: http://127.0.0.1:9001/api\n",
			"    upstream: http://127.0.0.1:9001/api\n    tls: {ca_file: ca.pem}\n",
			"sources[0].tls: the upstream is plain http: use an https upstream, or remove tls"},
		{"client certificate without key", police, police + "    tls: {cert_file: gw.crt}\n",
			"sources[1].tls: set both cert_file and key_file, or neither"},
		{"client key without certificate", police, police + "    tls: {key_file: gw.key}\n",
			"sources[1].tls: set both cert_file and key_file, or neither"},
		{"server_name with a port", police, police + "    tls: {server_name: \"police.example:443\"}\n",
			`sources[1].tls.server_name: want a host name or IP address, got "police.example:443"`},
		{"server_name as a URL", police, police + "    tls: {server_name: \"https://police.example\"}\n",
			`sources[1].tls.server_name: want a host name or IP address, got "https://police.example"`},
		{"source tls with an unknown setting", police, police + "    tls: {insecure_skip_verify: true}\n",
			"field insecure_skip_verify not found"},
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

func TestLoadConfigReadsTLSSettings(t *testing.T) {
	yaml := edit(t, "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8443\nlisten_tls:\n  cert_file: tls/gw.crt\n  key_file: tls/gw.key\n")
	yaml = strings.Replace(yaml, "    timeout: 3s\n", "    timeout: 3s\n    tls:\n      ca_file: tls/police-ca.pem\n"+
		"      cert_file: tls/client.crt\n      key_file: tls/client.key\n      server_name: api.police.internal\n", 1)
	c, err := LoadConfig(writeConfig(t, yaml))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if diff := cmp.Diff(&ListenTLSConfig{CertFile: "tls/gw.crt", KeyFile: "tls/gw.key", MinVersion: "1.2"}, c.ListenTLS); diff != "" {
		t.Errorf("listen_tls (-want +got):\n%s", diff)
	}
	want := &SourceTLSConfig{CAFile: "tls/police-ca.pem", CertFile: "tls/client.crt", KeyFile: "tls/client.key", ServerName: "api.police.internal"}
	if diff := cmp.Diff(want, c.Sources[1].TLS); diff != "" {
		t.Errorf("sources[1].tls (-want +got):\n%s", diff)
	}
	if c.Sources[0].TLS != nil {
		t.Errorf("sources[0].tls = %+v, want none", c.Sources[0].TLS)
	}

	c, err = LoadConfig(writeConfig(t, edit(t, "listen: 127.0.0.1:8080\n",
		"listen: 127.0.0.1:8443\nlisten_tls: {cert_file: gw.crt, key_file: gw.key, client_ca_file: clients.pem, min_version: 1.3}\n")))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if got := *c.ListenTLS; got.MinVersion != "1.3" || got.ClientCAFile != "clients.pem" {
		t.Errorf("listen_tls = %+v, want min_version 1.3 and client_ca_file clients.pem", got)
	}
}

func TestFaultClassNamesTLSFailures(t *testing.T) {
	ca := testpki.NewCA(t, "Sluice Test CA")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unknown authority", &url.Error{Op: "Get", URL: "https://dept", Err: &tls.CertificateVerificationError{
			Err: x509.UnknownAuthorityError{Cert: ca.Cert}}}, "certificate not trusted"},
		{"another name", &url.Error{Op: "Get", URL: "https://dept", Err: &tls.CertificateVerificationError{
			Err: x509.HostnameError{Certificate: ca.Cert, Host: "dept"}}}, "certificate not trusted"},
		{"an alert from the department", &url.Error{Op: "Get", URL: "https://dept", Err: &net.OpError{
			Op: "remote error", Net: "tcp", Err: errors.New("tls: certificate required")}}, "TLS handshake refused"},
		{"not TLS at all", &url.Error{Op: "Get", URL: "https://dept", Err: tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}},
			"not TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := faultClass(tt.err); got != tt.want {
				t.Errorf("faultClass(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
