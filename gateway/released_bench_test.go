package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/usage"
)

// BenchmarkReleaseWhoseRecords measures what knowing whose records a
// release held costs a release of 100 visits to a researcher under a
// grant, against the same release with nothing learned of it: each
// gateway has a real trail on disk (fsync), the tapped ones a real usage
// index (bbolt) and wait for their outcome record; "marked" also has 10
// of the page's records under an open objection, listed under
// "disputed". Each iteration reads all three, in rotating order, and the
// ratios are reported (issue 23: the usage index's effect on release
// throughput, and the disputed marks' cost).
//
//	go test ./gateway -run '^$' -bench BenchmarkReleaseWhoseRecords -benchtime 2000x -count 4
func BenchmarkReleaseWhoseRecords(b *testing.B) {
	plain := newUsageFixture(b, benchVisits)
	plain.cfg.Sources[0].Datasets[0].IDField, plain.cfg.Sources[0].Datasets[0].PrivacyUnit = "", ""
	plain.store = hub.NewMemory()
	plain.startReplicas(b, 1)
	tapped := benchUsageGateway(b)
	marked := benchUsageGateway(b)
	toks := []string{plain.granted(b, "rita", "stats-bureau"), tapped.granted(b, "rita", "stats-bureau"),
		marked.granted(b, "rita", "stats-bureau")}
	gws := []*usageGateway{plain, tapped, marked}
	read := func(i int) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/health/visits?page_size=100", nil)
		r.Header.Set("Authorization", "Bearer "+toks[i])
		r.Header.Set(PurposeHeader, "research")
		w := httptest.NewRecorder()
		gws[i].srv.ServeHTTP(w, r)
		return w
	}
	for i := range gws {
		if w := read(i); w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	for i := 0; i < 100; i += 10 {
		w := call(b, marked.srv, "POST", "/v1/objections", toks[2], map[string]any{"dataset": "health/visits",
			"record_id": "V" + strconv.Itoa(i), "field": "diagnosis", "claim": "bench"})
		if w.Code != http.StatusCreated {
			b.Fatalf("objection: %d %s", w.Code, w.Body)
		}
	}
	if err := marked.srv.grants.refresh(context.Background(), marked.store, time.Now()); err != nil {
		b.Fatal(err)
	}
	var p recordsPage
	if w := read(2); w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &p) != nil || len(p.Disputed) != 10 {
		b.Fatalf("marked release: %d, %d marks", w.Code, len(p.Disputed))
	}
	var took [3]time.Duration
	before := [2]int64{trailSize(b, plain.dirs[0]), trailSize(b, tapped.dirs[0])}
	n := 0
	for b.Loop() {
		for k := range 3 {
			i := (n + k) % 3
			t0 := time.Now()
			read(i)
			took[i] += time.Since(t0)
		}
		n++
	}
	b.ReportMetric(float64(took[1])/float64(took[0]), "tapped/plain")
	b.ReportMetric(float64(took[2])/float64(took[0]), "marked/plain")
	b.ReportMetric(float64(took[0].Nanoseconds())/float64(n), "plain-ns/read")
	// What naming the people costs the trail, per record released.
	grown := (trailSize(b, tapped.dirs[0]) - before[1]) - (trailSize(b, plain.dirs[0]) - before[0])
	b.ReportMetric(float64(grown)/float64(100*n), "trail-B/record")
}

// trailSize is the bytes of records in the trail's segments (the
// segment being written ends in zeros written ahead, not counted).
func trailSize(b *testing.B, dir string) int64 {
	names, _ := filepath.Glob(filepath.Join(dir, "trail-*.jsonl"))
	var n int64
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		n += int64(len(bytes.TrimRight(data, "\x00")))
	}
	return n
}

// BenchmarkReleaseThroughputWhoseRecords is BenchmarkReleaseWhoseRecords
// under load: each iteration sends 64 reads from 16 clients at once to
// each gateway in turn, so that the trail's group commits and the index's
// batches serve many releases each, as they do in service; the ratio is
// of the rounds' times, i.e. the inverse of the throughputs' ratio.
//
//	go test ./gateway -run '^$' -bench BenchmarkReleaseThroughputWhoseRecords -benchtime 100x -count 4
func BenchmarkReleaseThroughputWhoseRecords(b *testing.B) {
	plain := newUsageFixture(b, benchVisits)
	plain.cfg.Sources[0].Datasets[0].IDField, plain.cfg.Sources[0].Datasets[0].PrivacyUnit = "", ""
	plain.store = hub.NewMemory()
	plain.startReplicas(b, 1)
	tapped := benchUsageGateway(b)
	gws := []*usageGateway{plain, tapped}
	toks := []string{plain.granted(b, "rita", "stats-bureau"), tapped.granted(b, "rita", "stats-bureau")}
	round := func(i int) time.Duration {
		var wg sync.WaitGroup
		next := make(chan int, 256)
		for k := range 256 {
			next <- k
		}
		close(next)
		t0 := time.Now()
		for range 64 {
			wg.Go(func() {
				for k := range next {
					r := httptest.NewRequest("GET", "/v1/health/visits?page_size=100&page="+strconv.Itoa(1+k%20), nil)
					r.Header.Set("Authorization", "Bearer "+toks[i])
					r.Header.Set(PurposeHeader, "research")
					w := httptest.NewRecorder()
					gws[i].srv.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Errorf("%d %s", w.Code, w.Body)
					}
				}
			})
		}
		wg.Wait()
		return time.Since(t0)
	}
	round(0)
	round(1)
	var took [2]time.Duration
	n := 0
	for b.Loop() {
		took[n%2] += round(n % 2)
		took[(n+1)%2] += round((n + 1) % 2)
		n++
	}
	b.ReportMetric(float64(took[1])/float64(took[0]), "tapped/plain")
	b.ReportMetric(256*float64(n)/took[0].Seconds(), "plain-reads/s")
}

// benchUsageGateway is newUsageGateway over benchVisits.
func benchUsageGateway(b *testing.B) *usageGateway {
	g := newUsageFixture(b, benchVisits)
	idx, err := usage.OpenBolt(filepath.Join(g.cfg.Path(g.cfg.Audit.Dir), UsageIndexFile))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { idx.Close() })
	g.idx, g.store = idx, hub.NewMemory()
	g.startReplicas(b, 1)
	return g
}
