package state

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/redistest"
)

// BenchmarkLedgerCharge measures one charge, each with a new request id,
// on three accounts as the gateway charges them (the allocation every
// caller shares, a consumer's of 100 and an organisation's of 10), from 1
// and from 64 concurrent callers (a busy gateway), on the embedded
// ledger (bbolt, an fsync per group of charges) and on Redis (the claim
// and the charge script: two round trips; the server started with
// appendfsync always). It reports the median and 99th percentile latency
// besides ns/op, whose inverse is the throughput.
func BenchmarkLedgerCharge(b *testing.B) {
	backends := []struct {
		name string
		new  func(b *testing.B) Ledger
	}{
		{"bolt", func(b *testing.B) Ledger {
			l, err := OpenBolt(filepath.Join(b.TempDir(), "sluice.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
			return l
		}},
		{"redis", func(b *testing.B) Ledger {
			r, err := NewRedis(redistest.Start(b).Client(), RedisOptions{Prefix: fmt.Sprintf("b%d", prefixes.Add(1))})
			if err != nil {
				b.Fatal(err)
			}
			return r
		}},
	}
	for _, be := range backends {
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/callers=%d", be.name, callers), func(b *testing.B) {
				l := be.new(b)
				var n atomic.Int64
				run := func(pb interface{ Next() bool }) []time.Duration {
					var mine []time.Duration
					for pb.Next() {
						i := n.Add(1)
						c := charge(fmt.Sprint("bench-", i), "health/visits", 1e-6,
							acct("analysts", 1e6), acct(fmt.Sprint("c", i%100), 1e6), acct(fmt.Sprint("o", i%10), 1e6))
						t0 := time.Now()
						if _, err := l.Charge(context.Background(), c); err != nil {
							b.Error(err)
							break
						}
						mine = append(mine, time.Since(t0))
					}
					return mine
				}
				var (
					mu  sync.Mutex
					lat []time.Duration
				)
				b.ResetTimer()
				if callers == 1 {
					lat = run(&counter{n: b.N})
				} else {
					b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						mine := run(pb)
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				}
				b.StopTimer()
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				if len(lat) > 0 {
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				}
			})
		}
	}
}

// counter is a testing.PB for one caller.
type counter struct{ n int }

func (c *counter) Next() bool { c.n--; return c.n >= 0 }
