package dp

import (
	"fmt"
	"testing"
)

// benchRecords are a million visit-like records: 200,000 people, each with
// a few records spread over 16 districts, and an integer cost.
type benchRecord struct {
	unit, district string
	cost           int64
}

var benchData = func() func() []benchRecord {
	var data []benchRecord
	return func() []benchRecord {
		if data != nil {
			return data
		}
		rng := seeded(42)
		districts := make([]string, 16)
		for i := range districts {
			districts[i] = fmt.Sprintf("district-%02d", i)
		}
		units := make([]string, 200000)
		for i := range units {
			units[i] = fmt.Sprintf("11010519%010d", i)
		}
		data = make([]benchRecord, 1_000_000)
		for i := range data {
			data[i] = benchRecord{units[rng.IntN(len(units))], districts[rng.IntN(len(districts))], rng.Int64N(5000)}
		}
		return data
	}
}()

var domain16 = func() []string {
	d := make([]string, 16)
	for i := range d {
		d[i] = fmt.Sprintf("district-%02d", i)
	}
	return d
}()

func reportRate(b *testing.B, records int) {
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDPSumByDistrict1M is a DP sum of cost by district over 1M
// records: contribution bounding, clamping, noise, public domain.
func BenchmarkDPSumByDistrict1M(b *testing.B) {
	data := benchData()
	b.ResetTimer()
	for b.Loop() {
		a, err := NewAggregator(Query{Metric: Sum, Epsilon: 1, Grouped: true, Domain: domain16, MaxPartitions: 1,
			Lower: 0, Upper: 5000, Integer: true}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range data {
			a.AddInt(r.unit, r.district, r.cost)
		}
		if _, err := a.Release(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, len(data))
}

// BenchmarkDPCountByDistrictSelected1M is a DP count with private
// partition selection over 1M records.
func BenchmarkDPCountByDistrictSelected1M(b *testing.B) {
	data := benchData()
	b.ResetTimer()
	for b.Loop() {
		a, err := NewAggregator(Query{Metric: Count, Epsilon: 1, Delta: 1e-6, Grouped: true}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range data {
			a.Add(r.unit, r.district)
		}
		if _, err := a.Release(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, len(data))
}

// BenchmarkPlainSumByDistrict1M is the non-private group-by of the same
// data, for comparison.
func BenchmarkPlainSumByDistrict1M(b *testing.B) {
	data := benchData()
	b.ResetTimer()
	for b.Loop() {
		sums := map[string]int64{}
		for _, r := range data {
			sums[r.district] += r.cost
		}
		if len(sums) != 16 {
			b.Fatal(len(sums))
		}
	}
	reportRate(b, len(data))
}
