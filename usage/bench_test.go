package usage

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/internal/redistest"
)

// BenchmarkIndex measures each backend holding a realistic index: releases
// of 20 people each, drawn from benchPeople, so that a person is in
// about 20 releases per 10^5. Bolt holds 10^6 releases (a person ~200),
// Redis 10^5 (its build pays a fsync'd script per 500 releases). Each
// reports the index's size per release, the lookup of a random person's
// releases (all of them, and one month's), and the addition of one
// release, alone and from 32 goroutines at once.
//
//	go test -run XXX -bench Index -benchtime 2000x ./usage
func BenchmarkIndex(b *testing.B) {
	b.Run("Bolt", func(b *testing.B) {
		if testing.Short() {
			b.Skip("builds an index of 10^6 releases")
		}
		path := filepath.Join(b.TempDir(), "usage.db")
		idx := openBolt(b, path)
		const releases = 1_000_000
		data := newBenchData()
		data.build(b, idx, releases, 250_000)
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		// The file holds pages the build's large transactions freed,
		// which later additions reuse; in use is what the index takes.
		inUse := 0
		err = idx.db.View(func(tx *bolt.Tx) error {
			for _, name := range allBuckets {
				s := tx.Bucket(name).Stats()
				inUse += s.BranchInuse + s.LeafInuse
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		benchIndex(b, idx, data, releases, map[string]float64{
			"file-bytes":           float64(fi.Size()),
			"file-bytes/release":   float64(fi.Size()) / releases,
			"in-use-bytes/release": float64(inUse) / releases,
		})
	})
	b.Run("Redis", func(b *testing.B) {
		srv := redistest.Start(b)
		c := srv.Client()
		idx, err := NewRedis(c, "bench")
		if err != nil {
			b.Fatal(err)
		}
		before := usedMemory(b, srv)
		const releases = 100_000
		data := newBenchData()
		data.build(b, idx, releases, 5_000)
		used := usedMemory(b, srv) - before
		benchIndex(b, idx, data, releases, map[string]float64{
			"used_memory-bytes":         used,
			"used_memory-bytes/release": used / releases,
		})
	})
}

// benchPeople is how many people the releases are about.
const benchPeople = 100_000

// benchData makes the benchmark's releases.
type benchData struct {
	units []string // the people's unit hashes
	seq   atomic.Uint64
}

func newBenchData() *benchData {
	h, err := audit.NewHasher([]byte("benchmark key of thirty-two bytes"))
	if err != nil {
		panic(err)
	}
	d := &benchData{units: make([]string, benchPeople)}
	for i := range d.units {
		d.units[i] = h.Unit(fmt.Sprintf("1101011990%08d", i))
	}
	return d
}

// next is a new release of 20 people, 30 seconds after the one before.
func (d *benchData) next(rng *rand.Rand) Entry {
	seq := d.seq.Add(1)
	units := make([]string, 0, 20)
	for len(units) < cap(units) {
		u := d.units[rng.IntN(len(d.units))]
		if !slices.Contains(units, u) {
			units = append(units, u)
		}
	}
	return Entry{
		Release: Release{
			RequestID: fmt.Sprintf("01JBENCH%018d", seq),
			Seq:       seq,
			Time:      t0.Add(time.Duration(seq) * 30 * time.Second),
			Dept:      "civil-affairs",
			Roles:     []string{"registrar"},
			Subject:   fmt.Sprintf("officer-%04d", rng.IntN(2000)),
			Purpose:   "benefit-eligibility",
			Grant:     "grt_01JB8Z2K3M4N5P6Q7R8S9T0V1W",
			Basis:     "registrars check benefit eligibility under grant",
			Dataset:   "civil/persons",
			Fields: map[string]string{"name": "mask", "id_number": "pseudonymize", "birth_date": "generalize",
				"district": "keep", "household_size": "keep", "benefit_status": "keep"},
			Rows: 20,
		},
		Units: units,
	}
}

// build adds n releases to idx, per releases at a time.
func (d *benchData) build(b *testing.B, idx Index, n, per int) {
	b.Helper()
	start := time.Now()
	rng := rand.New(rand.NewPCG(1, 1))
	for done := 0; done < n; done += per {
		entries := make([]Entry, 0, per)
		for range min(per, n-done) {
			entries = append(entries, d.next(rng))
		}
		if err := idx.Add(context.Background(), entries...); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built an index of %d releases in %v", n, time.Since(start).Round(time.Millisecond))
}

// benchIndex runs the lookups and additions on idx, which holds releases;
// the lookups report sizes too.
func benchIndex(b *testing.B, idx Index, d *benchData, releases int, sizes map[string]float64) {
	ctx := context.Background()
	span := time.Duration(releases) * 30 * time.Second
	lookup := func(b *testing.B, month bool) {
		rng := rand.New(rand.NewPCG(2, 2))
		found := 0
		for b.Loop() {
			var since, until time.Time
			if month {
				since = t0.Add(time.Duration(rng.Int64N(int64(span - 30*24*time.Hour))))
				until = since.Add(30 * 24 * time.Hour)
			}
			rels, err := idx.ByUnit(ctx, d.units[rng.IntN(len(d.units))], since, until)
			if err != nil {
				b.Fatal(err)
			}
			found += len(rels)
		}
		b.ReportMetric(float64(found)/float64(b.N), "releases/op")
		for unit, v := range sizes {
			b.ReportMetric(v, unit)
		}
	}
	b.Run("ByUnit", func(b *testing.B) { lookup(b, false) })
	b.Run("ByUnitMonth", func(b *testing.B) { lookup(b, true) })
	b.Run("Add", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(3, 3))
		for b.Loop() {
			if err := idx.Add(ctx, d.next(rng)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AddParallel32", func(b *testing.B) {
		var seed atomic.Uint64
		b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(4, seed.Add(1)))
			for pb.Next() {
				if err := idx.Add(ctx, d.next(rng)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// usedMemory is the server's used_memory (INFO memory), in bytes.
func usedMemory(b *testing.B, srv *redistest.Server) float64 {
	b.Helper()
	info, err := srv.Client().Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "used_memory:"); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

// BenchmarkLookupBesideRuns measures what large releases cost the
// embedded index's lookups: an index of 10^5 releases of 20 people (of
// benchPeople), then with runs releases of 4,096 people each (a large
// release's names records) spread over the same period, a person's
// lookup (all their releases) against the same lookup with none. A run
// is searched, not read: the lookup grows with the number of runs, not
// with their size.
//
//	go test ./usage -run '^$' -bench LookupBesideRuns -benchtime 2000x
func BenchmarkLookupBesideRuns(b *testing.B) {
	ctx := context.Background()
	idx := openBolt(b, filepath.Join(b.TempDir(), "usage.db"))
	const releases = 100_000
	data := newBenchData()
	data.build(b, idx, releases, 25_000)
	span := time.Duration(releases) * 30 * time.Second
	lookups := func(b *testing.B) float64 {
		rng := rand.New(rand.NewPCG(2, 2))
		start, found := time.Now(), 0
		for b.Loop() {
			rels, err := idx.ByUnit(ctx, data.units[rng.IntN(len(data.units))], time.Time{}, time.Time{})
			if err != nil {
				b.Fatal(err)
			}
			found += len(rels)
		}
		b.ReportMetric(float64(found)/float64(b.N), "releases/op")
		return float64(time.Since(start)) / float64(b.N)
	}
	var none float64
	b.Run("runs=0", func(b *testing.B) { none = lookups(b) })
	rng := rand.New(rand.NewPCG(5, 5))
	added := 0
	for _, runs := range []int{100, 1000} {
		for ; added < runs; added++ {
			e := data.next(rng)
			e.Time = t0.Add(time.Duration(rng.Int64N(int64(span))))
			e.Units = nil
			for _, i := range rng.Perm(len(data.units))[:4096] {
				e.Units = append(e.Units, data.units[i])
			}
			e.Part = 1 + added%8
			if err := idx.Add(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("runs=%d", runs), func(b *testing.B) {
			if none == 0 {
				b.Skip("runs=0 did not run")
			}
			b.ReportMetric(lookups(b)/none, "vs-no-runs")
		})
	}
}
