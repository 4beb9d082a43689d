package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends (each one written and synced
// before it returns): from one caller at a time, where ns/op is the
// latency of a commit, and from many concurrent callers, where records/s is
// the trail's throughput. "preallocated" is the default (zeros written
// ahead of the records); "appended" grows the file with each commit.
func BenchmarkAppend(b *testing.B) {
	for _, callers := range []int{1, 32} {
		for _, mode := range []struct {
			name string
			pad  int64
		}{{"preallocated", 0}, {"appended", -1}} {
			name := fmt.Sprintf("callers=%d/%s", callers, mode.name)
			if callers > 1 {
				name = fmt.Sprintf("callers=%dxCPU/%s", callers, mode.name)
			}
			b.Run(name, func(b *testing.B) {
				l := openLog(b, b.TempDir(), Options{Preallocate: mode.pad})
				appendInParallel(b, l, callers)
				b.ReportMetric(float64(b.N)/float64(max(l.syncs.Load(), 1)), "records/sync")
			})
		}
	}
}

// appendInParallel appends b.N records to l from callers goroutines per
// CPU (a gateway has many requests in flight) and reports records/s.
func appendInParallel(b *testing.B, l *Log, callers int) {
	tmpl := sampleEvent(1)
	b.ReportAllocs()
	b.SetParallelism(callers)
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
}

// BenchmarkVerify measures verification over a 100k-record trail.
func BenchmarkVerify(b *testing.B) {
	const records = 100_000
	dir := b.TempDir()
	writeTrail(b, dir, records)
	b.SetBytes(fileSize(b, segPath(dir, 1)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(context.Background(), dir, VerifyOptions{})
		if err != nil || !rep.OK || rep.Records != records {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkVerifyWithCheckpoints measures verification of a 100k-record
// trail in 10 segments with a signed checkpoint every 1000 records, against
// its key and a file witness.
func BenchmarkVerifyWithCheckpoints(b *testing.B) {
	const records = 100_000
	dir, opts := witnessedTrail(b, records, testKey("bench"))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(context.Background(), dir, opts)
		if err != nil || !rep.OK || rep.Records != records || rep.Covered != records {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendParallelWithCheckpoints is BenchmarkAppend's 32 callers
// per CPU with a signed checkpoint every 1000 records handed to a file
// witness.
func BenchmarkAppendParallelWithCheckpoints(b *testing.B) {
	root := b.TempDir()
	l := openLog(b, filepath.Join(root, "audit"), Options{CheckpointKey: testKey("bench"), Witness: NewFileWitness(filepath.Join(root, "witness.json"))})
	appendInParallel(b, l, 32)
}

// benchEvent is the i-th record of the search benchmark's trail: 1000
// subjects, three datasets, one request in ten denied, a record a second.
func benchEvent(i int) *Event {
	e := sampleEvent(i)
	e.Time = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	e.RequestID = fmt.Sprintf("%032x", i)
	e.Subject = fmt.Sprintf("user-%03d", i%1000)
	set := [][2]string{{"health", "visits"}, {"civil", "assistance"}, {"police", "residents"}}[i%3]
	e.Source, e.Dataset = set[0], set[1]
	if i%10 == 0 {
		e.Decision, e.Status, e.Code, e.Obligations = "deny", 403, "forbidden", nil
	}
	return e
}

// writeBenchTrail writes n benchEvent records as a Log would, per records
// to a segment, with a signed checkpoint every cpEvery records and at the
// end of each segment, without the Log's per-batch fsync.
func writeBenchTrail(b testing.TB, dir string, n, per, cpEvery int, key ed25519.PrivateKey) {
	b.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	cpf, err := os.Create(filepath.Join(dir, checkpointFile))
	if err != nil {
		b.Fatal(err)
	}
	defer cpf.Close()
	r := requests.Get().(*request)
	var (
		buf        []byte
		hash       [sha256.Size]byte
		f          *os.File
		size       int64
		cp         Checkpoint
		tmin, tmax time.Time
	)
	flush := func() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		size += int64(len(buf))
		buf = buf[:0]
	}
	for i := 1; i <= n; i++ {
		if (i-1)%per == 0 {
			if f != nil {
				f.Close()
			}
			if f, err = os.Create(segPath(dir, (i-1)/per+1)); err != nil {
				b.Fatal(err)
			}
			size, tmin, tmax = 0, time.Time{}, time.Time{}
		}
		e := benchEvent(i)
		if err := r.encode(e); err != nil {
			b.Fatal(err)
		}
		if tmin.IsZero() {
			tmin = e.Time
		}
		tmin, tmax = minTime(tmin, e.Time), maxTime(tmax, e.Time)
		buf, hash = appendRecord(buf, uint64(i), &hash, r.rest)
		if len(buf) > 1<<20 {
			flush()
		}
		if i%cpEvery == 0 || i%per == 0 || i == n {
			flush()
			next := Checkpoint{N: cp.N + 1, Segment: segmentName((i-1)/per + 1), Size: size, Seq: uint64(i),
				Head: hex.EncodeToString(hash[:]), Time: tmax, MinTime: tmin.UTC(), MaxTime: tmax.UTC()}
			if cp.N > 0 {
				next.Prev = cp.Hash()
			}
			next.sign(key)
			cp = next
			if _, err := cpf.Write(cp.line()); err != nil {
				b.Fatal(err)
			}
		}
	}
	flush()
	f.Close()
}

// benchRecords is the size of the search benchmark's trail:
// SLUICE_BENCH_RECORDS or 500,000 (about 450 MB).
func benchRecords() int {
	if n, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 500_000
}

// BenchmarkSearch measures searching a trail of benchRecords records in
// segments of 100,000, a record a second. records/s counts the trail's
// records per second of search, so that a full scan and a search that
// skips segments compare.
func BenchmarkSearch(b *testing.B) {
	n := benchRecords()
	dir := b.TempDir()
	writeBenchTrail(b, dir, n, 100_000, 1000, testKey("bench"))
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	scan := func(q Query) func(b *testing.B) {
		return func(b *testing.B) {
			matched := 0
			for b.Loop() {
				matched = 0
				for _, err := range Scan(ctx, dir, q) {
					if err != nil {
						b.Fatal(err)
					}
					matched++
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(matched), "matches")
		}
	}
	b.Run("request-id", scan(Query{RequestID: fmt.Sprintf("%032x", n/2)}))
	b.Run("subject", scan(Query{Subject: "user-042"}))
	b.Run("subject+dataset+deny", scan(Query{Subject: "user-040", Source: "health", Dataset: "visits", Decision: "deny"}))
	b.Run("deny", scan(Query{Decision: "deny"}))
	b.Run("everything", scan(Query{}))
	b.Run("everything-raw", func(b *testing.B) {
		for b.Loop() {
			for _, err := range ScanRaw(ctx, dir, Query{}) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("one-hour-window", scan(Query{Since: start.Add(time.Duration(n/2) * time.Second), Until: start.Add(time.Duration(n/2)*time.Second + time.Hour)}))
	b.Run("newest-page", func(b *testing.B) {
		for b.Loop() {
			page, err := Search(ctx, dir, Query{Newest: true, Decision: "deny"})
			if err != nil || len(page.Records) != DefaultPageSize {
				b.Fatal(page, err)
			}
		}
	})
	b.Run("summarize", func(b *testing.B) {
		for b.Loop() {
			if _, err := Summarize(ctx, dir, Query{}, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// TestVerifyPassesAnIntactTrailOfOneHundredThousandRecords: a large signed
// trail in ten segments, checkpointed and witnessed, verifies whole.
func TestVerifyPassesAnIntactTrailOfOneHundredThousandRecords(t *testing.T) {
	const records = 100_000
	dir, opts := witnessedTrail(t, records, testKey("large"))
	rep, err := Verify(context.Background(), dir, opts)
	if err != nil || !rep.OK || rep.Records != records || rep.Covered != records || rep.Segments != 10 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// witnessedTrail writes a signed trail of n records in ten segments with a
// checkpoint every 1000, puts its last checkpoint in a file witness, and
// returns the trail's directory and the options that verify it.
func witnessedTrail(tb testing.TB, n int, key ed25519.PrivateKey) (string, VerifyOptions) {
	tb.Helper()
	root := tb.TempDir()
	dir, wit := filepath.Join(root, "audit"), filepath.Join(root, "witness.json")
	writeBenchTrail(tb, dir, n, n/10, 1000, key)
	last := readCheckpoints(tb, dir)
	if err := NewFileWitness(wit).Put(context.Background(), last[len(last)-1]); err != nil {
		tb.Fatal(err)
	}
	return dir, VerifyOptions{Keys: []ed25519.PublicKey{pubOf(key)}, Witness: NewFileWitness(wit)}
}
