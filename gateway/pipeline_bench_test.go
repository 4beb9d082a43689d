package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/demo"
	"github.com/sluicegw/sluice/policy"
)

// BenchmarkPipeline measures the whole gateway on the workload of the
// bench harness (a 20-record page of health/visits for the demo analyst,
// under the shipped policies) against a bare httputil.ReverseProxy before
// the same upstream: the demo's health department on loopback.
//
//   - bare-proxy: the baseline, a ReverseProxy that sets the credential.
//   - sluice: the full pipeline, the audit record fsync'd before release.
//   - sluice-noaudit: the same with an audit log that only counts, so
//     the difference is the trail's share (encoding, hashing, writing,
//     fsync and the wait for the group commit).
//
// "serial" runs one request at a time (each sluice request waits for its
// own fsync); "parallel" keeps 16 per CPU in flight, so the audit log's
// group commit shares fsyncs, as under load. x-bare is ns/op over the bare
// proxy's in the same mode; cpu-ns/op is the process's CPU time per
// request (upstream and client included), steadier than ns/op on a busy
// machine. Profile with
//
//	go test ./gateway -run '^$' -bench 'Pipeline/parallel/sluice$' -cpuprofile cpu.out
func BenchmarkPipeline(b *testing.B) {
	f := newPipelineFixture(b)
	for _, mode := range []struct {
		name     string
		parallel bool
	}{{"serial", false}, {"parallel", true}} {
		var bare float64
		b.Run(mode.name+"/bare-proxy", func(b *testing.B) {
			bare = f.run(b, f.bare, "Bearer "+f.token, mode.parallel)
		})
		for _, gw := range []struct {
			name string
			h    http.Handler
		}{{"sluice", f.sluice}, {"sluice-noaudit", f.noAuditSluice}} {
			b.Run(mode.name+"/"+gw.name, func(b *testing.B) {
				commits := f.commits.Load()
				ns := f.run(b, gw.h, "Bearer "+f.token, mode.parallel)
				if bare > 0 {
					b.ReportMetric(ns/bare, "x-bare")
				}
				if n := f.commits.Load() - commits; n > 0 {
					b.ReportMetric(float64(n)/float64(b.N), "fsyncs/op")
				}
			})
		}
	}
}

// pipelineFixture is a gateway configured as the demo's health source,
// with the shipped policies and a real audit trail, and a bare proxy
// before the same upstream.
type pipelineFixture struct {
	sluice, noAuditSluice, bare http.Handler
	token                       string
	commits                     atomic.Int64 // the audit trail's group commits
}

var (
	demoDataOnce sync.Once
	demoData     *demo.Data
)

func newPipelineFixture(b *testing.B) *pipelineFixture {
	b.Helper()
	demoDataOnce.Do(func() { demoData = demo.Generate(demo.DefaultSeed) })
	const credential = "bench-upstream-credential"
	h, err := demo.Handler("health", demoData, credential)
	if err != nil {
		b.Fatal(err)
	}
	up := httptest.NewServer(h)
	b.Cleanup(up.Close)

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	policies, err := filepath.Abs("../policies")
	if err != nil {
		b.Fatal(err)
	}
	cfg, set := loadFixture(b, map[string][]byte{
		"token-verify.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}),
		"upstream.header":  []byte("Bearer " + credential + "\n"),
		"sluice.yaml": []byte(`listen: 127.0.0.1:0
hmac_key_file: hmac.key
auth:
  issuer: sluice-demo
  audience: sluice
  keys:
    - {id: demo-ed25519, algorithms: [EdDSA], public_key_file: token-verify.pem}
policy: {dir: ` + policies + `}
audit: {dir: audit}
sources:
  - name: health
    upstream: ` + up.URL + `
    timeout: 10s
    credentials: {header: Authorization, value_file: upstream.header}
    datasets:
      - name: visits
        path: /visits
        records: items
        id_field: visit_id
        privacy_unit: patient_id
        classification: L3
        meta: [page, page_size]
        counts: [total]
        filters: {district: district}
        fields:
          visit_id: {type: string, level: L2}
          patient_id: {type: id_cn, level: L4}
          patient_name: {type: name_cn, level: L4}
          district: {type: string, level: L1}
          hospital: {type: string, level: L1}
          diagnosis: {type: icd10, level: L3}
          visit_date: {type: date, level: L3}
          cost: {type: integer, level: L2}
`)})
	f := &pipelineFixture{}
	trail, err := audit.Open(cfg.Path(cfg.Audit.Dir), audit.Options{Logger: slog.New(slog.DiscardHandler),
		OnCommit: func(int, time.Duration, error) { f.commits.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { trail.Close() })
	// The gateway logs every request at info, as `sluice serve` does; the
	// handler's cost is part of the pipeline, the bytes go nowhere.
	logger := slog.New(slog.NewJSONHandler(discard{}, nil))
	newServer := func(log AuditLog) http.Handler {
		s, err := New(context.Background(), cfg, Deps{Audit: log, Policies: policy.NewEngine(set), Logger: logger})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	f.sluice = newServer(trail)
	f.noAuditSluice = newServer(&nullAudit{})

	target, err := url.Parse(up.URL)
	if err != nil {
		b.Fatal(err)
	}
	f.bare = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/v1/health")
			pr.Out.URL.RawPath = ""
			pr.Out.Header.Set("Authorization", "Bearer "+credential)
		},
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128},
	}

	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "sluice-demo", "aud": "sluice", "sub": "alice", "roles": []string{"analyst"},
		"dept": "health", "purpose": "public-health", "jti": "bench",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(12 * time.Hour).Unix(),
	})
	tok.Header["kid"] = "demo-ed25519"
	if f.token, err = tok.SignedString(priv); err != nil {
		b.Fatal(err)
	}
	return f
}

// run serves the workload's request through h b.N times and returns ns/op.
func (f *pipelineFixture) run(b *testing.B, h http.Handler, auth string, parallel bool) float64 {
	b.Helper()
	one := func() error {
		r := httptest.NewRequest(http.MethodGet, "/v1/health/visits?page_size=20", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Body.Len() < 1000 {
			return fmt.Errorf("status %d, %d bytes: %.300s", w.Code, w.Body.Len(), w.Body.Bytes())
		}
		return nil
	}
	if err := one(); err != nil { // warm the connection pool and caches
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	if parallel {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := one(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if err := one(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if cpu := processCPU() - cpu0; cpu > 0 {
		// The whole process: the gateway (or bare proxy), the upstream
		// and the in-process client alike.
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// nullAudit is an audit log that only counts: the pipeline's cost without
// the trail.
type nullAudit struct {
	mu sync.Mutex
	n  int
}

func (a *nullAudit) Append(ctx context.Context, e *audit.Event) error {
	a.mu.Lock()
	a.n++
	a.mu.Unlock()
	return nil
}

func (a *nullAudit) Begin(e *audit.Event) (audit.Pending, error) {
	return a, a.Append(context.Background(), e)
}

func (a *nullAudit) Queue(e *audit.Event) error { return a.Append(context.Background(), e) }

// Wait: every record is durable at once.
func (a *nullAudit) Wait(context.Context) error { return nil }

func (a *nullAudit) Err() error { return nil }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
