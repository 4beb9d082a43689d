package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	rtmetrics "runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/usage"
)

// largeVisits is how many visits, of 5,000 patients, the upstream of
// BenchmarkLargeReleaseNames answers in one page (some 33 MiB).
const largeVisits = 400_000

// BenchmarkLargeReleaseNames measures a release too large to name its
// people in one record: 400,000 visits of 5,000 patients in one answer,
// each visit a record of its own, through a gateway with a real trail and
// usage index, embedded (bbolt) or shared (a real redis-server) — names
// spilled, some 200 names records, each added to the index before the
// release leaves — against the same release from a dataset that names
// nobody. It reports the time ratio and the peak Go
// heap in use of each (sampled every 10 ms; garbage not yet collected
// included): what invariant 6 asks to stay bounded.
//
//	go test ./gateway -run '^$' -bench LargeReleaseNames -benchtime 2x
func BenchmarkLargeReleaseNames(b *testing.B) {
	for _, backend := range []string{"bolt", "redis"} {
		b.Run(backend, func(b *testing.B) { benchLargeRelease(b, backend) })
	}
}

func benchLargeRelease(b *testing.B, backend string) {
	named, plain := largeGateway(b, backend), largeGateway(b, "")
	var took [2]time.Duration
	var peak [2]uint64
	for b.Loop() {
		for i, g := range []*usageGateway{plain, named} {
			stop := sampleHeap(&peak[i])
			t0 := time.Now()
			r := httptest.NewRequest("GET", "/v1/health/visits", nil)
			r.Header.Set("Authorization", "Bearer "+g.token(b, "bulk", "stats-bureau", []string{"bulk"}))
			w := &countingWriter{header: http.Header{}}
			g.srv.ServeHTTP(w, r)
			took[i] += time.Since(t0)
			stop()
			if w.status != http.StatusOK || w.n < 30<<20 {
				b.Fatalf("status %d, %d bytes", w.status, w.n)
			}
		}
	}
	b.ReportMetric(float64(took[1])/float64(took[0]), "named/plain")
	b.ReportMetric(float64(peak[0])/(1<<20), "plain-peak-heap-MiB")
	b.ReportMetric(float64(peak[1])/(1<<20), "named-peak-heap-MiB")
}

// largeGateway is a gateway over an upstream of largeVisits visits, whose
// "bulk" role reads them all (no max_rows); its usage index is backend's
// ("bolt" or "redis"), and for "" the dataset declares no privacy unit
// and no id (it names nobody).
func largeGateway(b *testing.B, backend string) *usageGateway {
	g := newUsageFixture(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		bw := bufio.NewWriterSize(w, 64<<10)
		bw.WriteString(`{"items":[`)
		for i := range largeVisits {
			if i > 0 {
				bw.WriteByte(',')
			}
			fmt.Fprintf(bw, `{"visit_id":"S%d","patient_id":"P%05d","patient_name":"x","district":"D1","hospital":"H","diagnosis":"I10","visit_date":"2026-03-17","cost":100}`, i, i%5000)
		}
		bw.WriteString(`]}`)
		bw.Flush()
	})
	const pol = `package sluice

default decision := {"allow": false, "reason": "bulk readers only"}

decision := {"allow": true, "reason": "bulk", "fields": {"visit_id": "keep", "patient_id": "pseudonymize", "district": "keep"},
	"params": ["page", "page_size"]} if {
	input.action == "read"
	"bulk" in input.subject.roles
}
`
	y, err := os.ReadFile(g.cfg.Path("sluice.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := strings.Replace(string(y), "policy: {dir: ", "policy: {dir: policies} #", 1)
	cfg = strings.ReplaceAll(cfg, "timeout: 5s", "timeout: 10m")
	if backend == "" {
		cfg = strings.Replace(strings.Replace(cfg, "id_field: visit_id", "", 1), "privacy_unit: patient_id", "", 1)
	}
	g.cfg, g.set = loadFixture(b, map[string][]byte{"hs.key": g.secret, "policies/sluice.rego": []byte(pol), "sluice.yaml": []byte(cfg)})
	switch backend {
	case "redis":
		idx, err := usage.NewRedis(redistest.Start(b).Client(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		g.idx = idx
	default:
		idx, err := usage.OpenBolt(filepath.Join(g.cfg.Path(g.cfg.Audit.Dir), UsageIndexFile))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { idx.Close() })
		g.idx = idx
	}
	g.store = hub.NewMemory()
	g.startReplicas(b, 1)
	return g
}

// sampleHeap keeps the highest Go heap in use seen in *peak until stop.
func sampleHeap(peak *uint64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var done atomic.Bool
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for !done.Load() {
			rtmetrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() { done.Store(true); cancel(); <-ch }
}

// countingWriter is a ResponseWriter that counts the body and keeps
// none of it.
type countingWriter struct {
	header http.Header
	status int
	n      int64
}

func (w *countingWriter) Header() http.Header { return w.header }

func (w *countingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += int64(len(p))
	return len(p), nil
}
