package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
)

// signingKey is an RSA key pair in PEM, as `opa build --signing-key` and
// the verification config take them.
type signingKey struct{ private, public string }

func newSigningKey(t testing.TB) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{
		private: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
		public:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}
}

// buildBundle does what `opa build -b DIR --revision REV --signing-key
// KEY --verification-key-id KID` does; an empty key builds it unsigned.
func buildBundle(t testing.TB, files map[string]string, revision string, key signingKey, keyID string) []byte {
	t.Helper()
	var buf bytes.Buffer
	c := compile.New().
		WithPaths(policyDir(t, files)).
		WithAsBundle(true).
		WithRegoVersion(ast.RegoV1).
		WithRevision(revision).
		WithOutput(&buf)
	if key.private != "" {
		c = c.WithBundleSigningConfig(bundle.NewSigningConfig(key.private, "RS256", "")).WithBundleVerificationKeyID(keyID)
	}
	if err := c.Build(context.Background()); err != nil {
		t.Fatalf("build bundle: %v", err)
	}
	return buf.Bytes()
}

// rewriteBundle applies change to every file of a bundle tarball; change
// returns the new content, or nil to remove the file. add files are
// appended.
func rewriteBundle(t testing.TB, b []byte, change func(name string, content []byte) []byte, add map[string]string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	put := func(name string, content []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(content)
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(tr)
		if content = change(h.Name, content); content != nil {
			put(h.Name, content)
		}
	}
	for name, content := range add {
		put(name, []byte(content))
	}
	tw.Close()
	zw.Close()
	return out.Bytes()
}

// bundleServer serves one bundle with an ETag and counts what it sends.
type bundleServer struct {
	*httptest.Server
	mu          sync.Mutex
	body        []byte
	etag        string
	full, not   int
	authHeaders []string
}

func newBundleServer(t testing.TB) *bundleServer {
	s := &bundleServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.authHeaders = append(s.authHeaders, r.Header.Get("Authorization"))
		if s.body == nil {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("If-None-Match") == s.etag {
			s.not++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		s.full++
		w.Header().Set("ETag", s.etag)
		w.Header().Set("Content-Type", "application/gzip")
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *bundleServer) serve(body []byte, etag string) {
	s.mu.Lock()
	s.body, s.etag = body, `"`+etag+`"`
	s.mu.Unlock()
}

// bundleFiles are a policy set whose decision names its version, with a
// Rego test.
func bundleFiles(n int) map[string]string {
	return map[string]string{"sluice.rego": versioned(n), "sluice_test.rego": allowsTest, "registry/data.json": `{"levels": ["L1"]}`}
}

func newSource(t testing.TB, url string, key signingKey, extra ...BundleKey) *BundleSource {
	t.Helper()
	src, err := NewBundleSource(BundleOptions{
		URL: url, KeyID: "sluice", Keys: append([]BundleKey{{ID: "sluice", Algorithm: "RS256", Key: key.public}}, extra...),
		Header: http.Header{"Authorization": {"Bearer bundle-server-token"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestBundleSignedAndTestedIsPutInForceWithItsRevision(t *testing.T) {
	key := newSigningKey(t)
	srv := newBundleServer(t)
	srv.serve(buildBundle(t, bundleFiles(1), "release-1", key, "sluice"), "e1")
	src := newSource(t, srv.URL, key)
	e := NewEngine(nil)
	if err := src.Update(context.Background(), e); err != nil {
		t.Fatalf("Update: %v", err)
	}
	set := e.Current()
	if set.Revision() != "release-1" || set.Source() != srv.URL || set.Dir() != "" {
		t.Errorf("set revision %q from %q (dir %q), want release-1 from the bundle server", set.Revision(), set.Source(), set.Dir())
	}
	if got := version(t, set); got != 1 {
		t.Errorf("version %d in force, want 1", got)
	}
	if srv.authHeaders[0] != "Bearer bundle-server-token" {
		t.Errorf("bundle server got Authorization %q, want the configured credentials", srv.authHeaders[0])
	}

	// Unchanged: a 304, nothing reloaded.
	if err := src.Update(context.Background(), e); err != nil {
		t.Fatalf("Update unchanged: %v", err)
	}
	if srv.not != 1 || e.Current() != set {
		t.Errorf("unchanged bundle: %d not-modified answers, set changed %v; want one 304 and the same set", srv.not, e.Current() != set)
	}

	// A new release is put in force.
	srv.serve(buildBundle(t, bundleFiles(2), "release-2", key, "sluice"), "e2")
	if err := src.Update(context.Background(), e); err != nil {
		t.Fatalf("Update to release-2: %v", err)
	}
	if e.Current().Revision() != "release-2" || version(t, e.Current()) != 2 {
		t.Errorf("revision %s in force, want release-2", e.Current().Revision())
	}
	if a := e.Stats().Activations.Load(); a != 2 {
		t.Errorf("%d activations, want 2", a)
	}
}

func TestBundleDataReachesThePolicy(t *testing.T) {
	key := newSigningKey(t)
	srv := newBundleServer(t)
	files := map[string]string{
		"sluice.rego":        "package sluice\n\ndecision := {\"allow\": false, \"reason\": data.registry.levels[0]}\n",
		"registry/data.json": `{"levels": ["from-the-bundle"]}`,
	}
	srv.serve(buildBundle(t, files, "r", key, "sluice"), "e")
	e := NewEngine(nil)
	if err := newSource(t, srv.URL, key).Update(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	d, _ := e.Current().Decide(context.Background(), analystRead())
	if d.Reason != "from-the-bundle" {
		t.Errorf("reason %q, want the bundle's data", d.Reason)
	}
}

func TestBundleTamperedOrUnsignedIsRefusedAndTheLastGoodStays(t *testing.T) {
	key, other := newSigningKey(t), newSigningKey(t)
	good := buildBundle(t, bundleFiles(1), "good", key, "sluice")
	tests := []struct {
		name   string
		bundle func() []byte
		extra  []BundleKey
		want   string
	}{
		{"policy changed after signing", func() []byte {
			return rewriteBundle(t, good, func(name string, c []byte) []byte {
				if !strings.HasSuffix(name, "/sluice.rego") {
					return c
				}
				return bytes.ReplaceAll(c, []byte(`"v1"`), []byte(`"v9"`))
			}, nil)
		}, nil, "digest mismatch"},
		{"data changed after signing", func() []byte {
			return rewriteBundle(t, good, func(name string, c []byte) []byte {
				if !strings.HasSuffix(name, "data.json") {
					return c
				}
				return bytes.ReplaceAll(c, []byte(`L1`), []byte(`L4`))
			}, nil)
		}, nil, "digest mismatch"},
		{"file added after signing", func() []byte {
			return rewriteBundle(t, good, func(_ string, c []byte) []byte { return c },
				map[string]string{"/backdoor.rego": "package sluice.backdoor\n\nx := 1\n"})
		}, nil, "not included in bundle signature"},
		{"file removed after signing", func() []byte {
			return rewriteBundle(t, good, func(name string, c []byte) []byte {
				if strings.HasSuffix(name, "sluice_test.rego") {
					return nil
				}
				return c
			}, nil)
		}, nil, "not found in the target bundle"},
		{"signature stripped", func() []byte {
			return rewriteBundle(t, good, func(name string, c []byte) []byte {
				if strings.HasSuffix(name, ".signatures.json") {
					return nil
				}
				return c
			}, nil)
		}, nil, "missing .signatures.json"},
		{"unsigned", func() []byte { return buildBundle(t, bundleFiles(1), "unsigned", signingKey{}, "") }, nil, "missing .signatures.json"},
		{"signed with an unknown key", func() []byte { return buildBundle(t, bundleFiles(1), "other", other, "sluice") }, nil, "verify"},
		// The signature names a key the gateway also knows, but not the
		// one the configuration requires: the bundle does not choose.
		{"signed with a known key the config does not name", func() []byte { return buildBundle(t, bundleFiles(1), "other", other, "legacy") },
			[]BundleKey{{ID: "legacy", Algorithm: "RS256", Key: other.public}}, "verify"},
		{"signed but failing its Rego tests", func() []byte {
			files := bundleFiles(1)
			files["sluice.rego"] = "package sluice\n\ndecision := {\"allow\": false}\n"
			return buildBundle(t, files, "failing", key, "sluice")
		}, nil, "Rego tests failed"},
		{"not a bundle", func() []byte { return []byte("<html>maintenance</html>") }, nil, "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newBundleServer(t)
			srv.serve(good, "good")
			src := newSource(t, srv.URL, key, tt.extra...)
			e := NewEngine(nil)
			if err := src.Update(context.Background(), e); err != nil {
				t.Fatalf("good bundle: %v", err)
			}
			last := e.Current()
			srv.serve(tt.bundle(), "bad")
			err := src.Update(context.Background(), e)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Update error %v, want one saying %q", err, tt.want)
			}
			if e.Current() != last || version(t, e.Current()) != 1 {
				t.Fatal("a refused bundle replaced the last good one")
			}
			if st := e.Status(); st.Revision != "good" || !strings.Contains(st.LastError, tt.want) {
				t.Errorf("Status = %+v, want revision good and the refusal", st)
			}
			if n := e.Stats().Rejections.Load(); n != 1 {
				t.Errorf("%d rejections, want 1", n)
			}
			// The refused bundle is not downloaded again until it changes.
			src.Update(context.Background(), e)
			if srv.not != 1 {
				t.Errorf("%d not-modified answers after the refusal, want 1", srv.not)
			}
		})
	}
}

func TestBundleFetchFailuresKeepTheLastGood(t *testing.T) {
	key := newSigningKey(t)
	srv := newBundleServer(t)
	src := newSource(t, srv.URL, key)
	e := NewEngine(nil)
	// Nothing served yet: no policy, and Status says why.
	if err := src.Update(context.Background(), e); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Fatalf("Update error %v, want status 404", err)
	}
	if e.Current() != nil || !strings.Contains(e.Status().LastError, "404") || e.Stats().FetchErrors.Load() != 1 {
		t.Errorf("after a failed first fetch: current %v, status %+v", e.Current(), e.Status())
	}
	srv.serve(buildBundle(t, bundleFiles(1), "r1", key, "sluice"), "e1")
	if err := src.Update(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := src.Update(context.Background(), e); err == nil {
		t.Fatal("Update from a closed server succeeded")
	}
	if e.Current().Revision() != "r1" {
		t.Errorf("revision %q after the server went away, want r1", e.Current().Revision())
	}
}

func TestBundleSourceNeedsAKeyID(t *testing.T) {
	key := newSigningKey(t)
	for _, tt := range []struct {
		name string
		opts BundleOptions
		want string
	}{
		{"no key id", BundleOptions{URL: "https://b.example/b.tar.gz", Keys: []BundleKey{{ID: "k", Algorithm: "RS256", Key: key.public}}}, "key id is required"},
		{"key id not among the keys", BundleOptions{URL: "https://b.example/b.tar.gz", KeyID: "nope", Keys: []BundleKey{{ID: "k", Algorithm: "RS256", Key: key.public}}}, "nope"},
		{"no keys", BundleOptions{URL: "https://b.example/b.tar.gz", KeyID: "k"}, "k"},
		{"unsupported algorithm", BundleOptions{URL: "https://b.example/b.tar.gz", KeyID: "k", Keys: []BundleKey{{ID: "k", Algorithm: "none", Key: key.public}}}, "unsupported algorithm"},
		{"no URL", BundleOptions{KeyID: "k", Keys: []BundleKey{{ID: "k", Algorithm: "RS256", Key: key.public}}}, "URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewBundleSource(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewBundleSource error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
