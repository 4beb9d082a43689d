package audit

import (
	"context"
	"testing"
)

// BenchmarkAppendParallel measures durable appends (each one written and
// fsync'd before it returns) from many concurrent callers.
func BenchmarkAppendParallel(b *testing.B) {
	l := openLog(b, b.TempDir(), Options{})
	tmpl := sampleEvent(1)
	b.ReportAllocs()
	b.SetParallelism(32) // callers per CPU: a gateway has many requests in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			e := *tmpl
			if err := l.Append(ctx, &e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/float64(max(l.syncs.Load(), 1)), "records/fsync")
}

// BenchmarkVerify measures verification over a 100k-record trail.
func BenchmarkVerify(b *testing.B) {
	const records = 100_000
	dir := b.TempDir()
	writeTrail(b, dir, records)
	b.SetBytes(fileSize(b, segPath(dir, 1)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(dir)
		if err != nil || !rep.OK || rep.Records != records {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
