package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/anonymize"
)

// DefaultSeed is the seed the demo, its tests and the benchmarks use.
const DefaultSeed = 20261126

// Dataset sizes. Every dataset holds thousands of records so that paging,
// filtering and differentially private statistics have something to chew on.
const (
	residentCount   = 8000
	visitCount      = 16000
	assistanceCount = 2600
)

// The data window. Visits fall inside it, assistance cases start before its
// end, and ages are counted as of its last day.
var (
	windowStart     = day(2025, time.January, 1)
	windowEnd       = day(2026, time.October, 31)
	assistanceSince = day(2012, time.January, 1)
)

// Data is the whole synthetic world for one seed.
type Data struct {
	// Residents are the police department's population register.
	Residents []Resident `json:"residents"`
	// Visits are the health department's hospital visits; every patient is
	// a resident, and some visit many times.
	Visits []Visit `json:"visits"`
	// Assistance are the civil affairs department's minimum-living-allowance
	// cases, at most one per resident.
	Assistance []Case `json:"assistance"`
}

// Resident is one entry of the police population register.
type Resident struct {
	// IDNumber is the 18-character resident identity number: the district's
	// region code, the birth date as YYYYMMDD, a three-digit sequence that is
	// odd for men and even for women, and the GB 11643 check character.
	IDNumber string `json:"id_number"`
	// Name is the surname followed by a one- or two-character given name.
	Name string `json:"name"`
	// Gender is "男" or "女".
	Gender string `json:"gender"`
	// BirthDate is YYYY-MM-DD.
	BirthDate string `json:"birth_date"`
	// Phone is an 11-digit mobile number.
	Phone string `json:"phone"`
	// Address is a street address in District.
	Address string `json:"address"`
	// District is the name of the district the resident is registered in.
	District string `json:"district"`
}

// Visit is one hospital visit recorded by the health department.
type Visit struct {
	// VisitID is "V", the visit's year and a six-digit sequence within it.
	VisitID string `json:"visit_id"`
	// PatientID is the patient's resident identity number.
	PatientID string `json:"patient_id"`
	// PatientName is the patient's name.
	PatientName string `json:"patient_name"`
	// District is the name of the hospital's district, which need not be the
	// patient's.
	District string `json:"district"`
	// Hospital is the name of the hospital.
	Hospital string `json:"hospital"`
	// Diagnosis is an ICD-10 code such as "J06.9".
	Diagnosis string `json:"diagnosis"`
	// VisitDate is YYYY-MM-DD.
	VisitDate string `json:"visit_date"`
	// Cost is what the visit cost, in whole yuan.
	Cost int64 `json:"cost"`
}

// Case is one minimum-living-allowance case of the civil affairs department.
type Case struct {
	// CaseID is "C", the year the case started, "-" and a five-digit
	// sequence within that year.
	CaseID string `json:"case_id"`
	// IDNumber is the applicant's resident identity number.
	IDNumber string `json:"id_number"`
	// Name is the applicant's name.
	Name string `json:"name"`
	// Phone is the applicant's phone.
	Phone string `json:"phone"`
	// District is the applicant's district.
	District string `json:"district"`
	// HouseholdSize is how many people the allowance supports, 1 to 8.
	HouseholdSize int `json:"household_size"`
	// MonthlyAllowance is the allowance paid each month, in whole yuan.
	MonthlyAllowance int64 `json:"monthly_allowance"`
	// StartDate is YYYY-MM-DD.
	StartDate string `json:"start_date"`
}

// Generate draws the synthetic world for seed. The same seed always gives
// the same data, down to the bytes of its JSON encoding.
func Generate(seed uint64) *Data {
	people := drawResidents(stream(seed, 1))
	residents := make([]Resident, len(people))
	for i, p := range people {
		residents[i] = p.Resident
	}
	return &Data{
		Residents:  residents,
		Visits:     drawVisits(stream(seed, 2), people),
		Assistance: drawAssistance(stream(seed, 3), people),
	}
}

// stream gives each dataset its own random stream, so that changing how one
// dataset is drawn does not reshuffle the others.
func stream(seed, dataset uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, dataset))
}

// person is a resident with what the other datasets need to stay
// consistent with them.
type person struct {
	Resident
	district int // index into beijing
	born     time.Time
}

var (
	pickDistrict         = newWeighted(districtWeights())
	pickSurname          = newWeighted(surnames)
	pickCompoundSurname  = newWeighted(compoundSurnames)
	pickAge              = newWeighted(ages)
	pickDiagnosis        = newWeighted(diagnoses)
	pickChronicDiagnosis = newWeighted(chronicDiagnoses)
	pickHouseholdSize    = newWeighted(householdSizes)
)

func districtWeights() []option[int] {
	out := make([]option[int], len(beijing))
	for i, d := range beijing {
		out[i] = option[int]{i, d.population}
	}
	return out
}

func drawResidents(r *rand.Rand) []person {
	people := make([]person, 0, residentCount)
	ids := make(map[string]bool, residentCount)
	phones := make(map[string]bool, residentCount)
	for range residentCount {
		d := pickDistrict.pick(r)
		male := r.IntN(100) < 51
		born := birthDate(r)
		gender := "女"
		if male {
			gender = "男"
		}
		people = append(people, person{
			Resident: Resident{
				IDNumber:  idNumber(r, beijing[d].Code, born, male, ids),
				Name:      fullName(r, male),
				Gender:    gender,
				BirthDate: born.Format(time.DateOnly),
				Phone:     phone(r, phones),
				Address:   address(r, beijing[d]),
				District:  beijing[d].Name,
			},
			district: d,
			born:     born,
		})
	}
	return people
}

// birthDate draws a birth date whose age at the end of the window falls in
// an age band drawn from the population pyramid.
func birthDate(r *rand.Rand) time.Time {
	band := pickAge.pick(r)
	earliest := windowEnd.AddDate(-band.hi-1, 0, 1)
	latest := windowEnd.AddDate(-band.lo, 0, 0)
	return dayBetween(r, earliest, latest)
}

// idNumber draws a resident identity number not yet in taken and adds it.
func idNumber(r *rand.Rand, region string, born time.Time, male bool, taken map[string]bool) string {
	for {
		var seq int
		if male {
			seq = 2*r.IntN(500) + 1 // odd, 001..999
		} else {
			seq = 2 * (1 + r.IntN(499)) // even, 002..998
		}
		first17 := fmt.Sprintf("%s%s%03d", region, born.Format("20060102"), seq)
		check, _ := anonymize.CheckDigitCN(first17)
		id := first17 + string(check)
		if !taken[id] {
			taken[id] = true
			return id
		}
	}
}

func fullName(r *rand.Rand, male bool) string {
	var surname string
	if r.IntN(100) < compoundSurnamePercent {
		surname = pickCompoundSurname.pick(r)
	} else {
		surname = pickSurname.pick(r)
	}
	chars := femaleGiven
	if male {
		chars = maleGiven
	}
	given := string(chars[r.IntN(len(chars))])
	if r.IntN(100) < 70 {
		given += string(chars[r.IntN(len(chars))])
	}
	return surname + given
}

// phone draws a mobile number not yet in taken and adds it.
func phone(r *rand.Rand, taken map[string]bool) string {
	for {
		p := fmt.Sprintf("%s%08d", mobilePrefixes[r.IntN(len(mobilePrefixes))], r.IntN(100_000_000))
		if !taken[p] {
			taken[p] = true
			return p
		}
	}
}

func address(r *rand.Rand, d districtInfo) string {
	return fmt.Sprintf("北京市%s%s%d号院%d号楼%d单元%d%02d",
		d.Name, d.streets[r.IntN(len(d.streets))], 1+r.IntN(200),
		1+r.IntN(24), 1+r.IntN(6), 1+r.IntN(18), 1+r.IntN(4))
}

// chronicShare percent of visits are made by the chronically ill: a pool of
// chronicPoolLen residents aged chronicMinAge or more, who therefore visit
// many times each.
const (
	chronicShare   = 40
	chronicPoolLen = 600
	chronicMinAge  = 45
)

func drawVisits(r *rand.Rand, people []person) []Visit {
	var older []int
	for i, p := range people {
		if !p.born.AddDate(chronicMinAge, 0, 0).After(windowEnd) {
			older = append(older, i)
		}
	}
	r.Shuffle(len(older), func(i, j int) { older[i], older[j] = older[j], older[i] })
	chronic := older[:min(chronicPoolLen, len(older))]
	referral := make([]int, len(referralDistricts))
	for i, name := range referralDistricts {
		referral[i] = districtIndex(name)
	}

	visits := make([]Visit, 0, visitCount)
	var seq yearSeq
	for _, date := range sortedDays(r, visitCount, windowStart, windowEnd) {
		var p person
		var dx diagnosis
		for {
			if r.IntN(100) < chronicShare {
				p, dx = people[chronic[r.IntN(len(chronic))]], pickChronicDiagnosis.pick(r)
			} else {
				p, dx = people[r.IntN(len(people))], pickDiagnosis.pick(r)
			}
			if !p.born.After(date) { // no visits before birth
				break
			}
		}
		// Most patients go to a hospital in their own district; the rest
		// travel to the big teaching hospitals in the centre.
		d := beijing[p.district]
		if r.IntN(100) < 25 {
			d = beijing[referral[r.IntN(len(referral))]]
		}
		visits = append(visits, Visit{
			VisitID:     fmt.Sprintf("V%d%06d", date.Year(), seq.next(date.Year())),
			PatientID:   p.IDNumber,
			PatientName: p.Name,
			District:    d.Name,
			Hospital:    d.hospitals[r.IntN(len(d.hospitals))],
			Diagnosis:   dx.code,
			VisitDate:   date.Format(time.DateOnly),
			Cost:        cost(r, dx.medianCost),
		})
	}
	return visits
}

// cost draws a log-normal cost around median, so most visits are cheap and
// a few are very expensive.
func cost(r *rand.Rand, median float64) int64 {
	c := int64(math.Round(median * math.Exp(0.7*r.NormFloat64())))
	return min(max(c, 20), 50000)
}

func drawAssistance(r *rand.Rand, people []person) []Case {
	cases := make([]Case, 0, assistanceCount)
	taken := make([]bool, len(people))
	var seq yearSeq
	for _, start := range sortedDays(r, assistanceCount, assistanceSince, windowEnd) {
		// Each case is a different resident, of age when the case starts.
		i := r.IntN(len(people))
		for taken[i] || people[i].born.AddDate(18, 0, 0).After(start) {
			i = r.IntN(len(people))
		}
		taken[i] = true
		p := people[i]
		size := pickHouseholdSize.pick(r)
		// The allowance tops household income up to the local minimum, so
		// it grows with the household; it is paid in tens of yuan.
		allowance := min(int64(300+r.IntN(400*size+400))/10*10, 3000)
		cases = append(cases, Case{
			CaseID:           fmt.Sprintf("C%d-%05d", start.Year(), seq.next(start.Year())),
			IDNumber:         p.IDNumber,
			Name:             p.Name,
			Phone:            p.Phone,
			District:         p.District,
			HouseholdSize:    size,
			MonthlyAllowance: allowance,
			StartDate:        start.Format(time.DateOnly),
		})
	}
	return cases
}

// sortedDays draws n days from lo to hi inclusive, in order. Drawing the
// dates first lets records be drawn, and numbered, in date order.
func sortedDays(r *rand.Rand, n int, lo, hi time.Time) []time.Time {
	span := int(hi.Sub(lo).Hours()/24) + 1
	offsets := make([]int, n)
	for i := range offsets {
		offsets[i] = r.IntN(span)
	}
	slices.Sort(offsets)
	days := make([]time.Time, n)
	for i, off := range offsets {
		days[i] = lo.AddDate(0, 0, off)
	}
	return days
}

// yearSeq numbers records in date order the way departments number their
// files: the sequence restarts at 1 each year.
type yearSeq struct{ year, n int }

func (s *yearSeq) next(year int) int {
	if year != s.year {
		s.year, s.n = year, 0
	}
	s.n++
	return s.n
}

func districtIndex(name string) int {
	for i, d := range beijing {
		if d.Name == name {
			return i
		}
	}
	panic("demo: no district " + strconv.Quote(name))
}

func day(year int, month time.Month, d int) time.Time {
	return time.Date(year, month, d, 0, 0, 0, 0, time.UTC)
}

// dayBetween draws a day from lo to hi inclusive.
func dayBetween(r *rand.Rand, lo, hi time.Time) time.Time {
	days := int(hi.Sub(lo).Hours() / 24)
	return lo.AddDate(0, 0, r.IntN(days+1))
}

// option is a value with the weight it is drawn with.
type option[T any] struct {
	value  T
	weight int
}

// weighted draws values with probability proportional to their weight.
type weighted[T any] struct {
	values []T
	upTo   []int // running sum of weights up to and including each value
}

func newWeighted[T any](options []option[T]) weighted[T] {
	w := weighted[T]{values: make([]T, len(options)), upTo: make([]int, len(options))}
	sum := 0
	for i, o := range options {
		sum += o.weight
		w.values[i], w.upTo[i] = o.value, sum
	}
	return w
}

func (w weighted[T]) pick(r *rand.Rand) T {
	n := r.IntN(w.upTo[len(w.upTo)-1]) + 1
	i, _ := slices.BinarySearch(w.upTo, n)
	return w.values[i]
}

// InEveryDataset is the resident identity number of the first resident
// (in the residents' order) who is also a patient with a visit and an
// assistance case: the demo's citizen, whose data every department holds.
func (d *Data) InEveryDataset() string {
	patients, cases := map[string]bool{}, map[string]bool{}
	for _, v := range d.Visits {
		patients[v.PatientID] = true
	}
	for _, c := range d.Assistance {
		cases[c.IDNumber] = true
	}
	for _, r := range d.Residents {
		if patients[r.IDNumber] && cases[r.IDNumber] {
			return r.IDNumber
		}
	}
	return ""
}
