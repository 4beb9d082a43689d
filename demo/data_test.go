package demo

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/anonymize"
)

// testData is the default world, generated once for all tests.
var testData = sync.OnceValue(func() *Data { return Generate(DefaultSeed) })

func TestDistrictsAreBeijingsSixteenWithTheirRegionCodes(t *testing.T) {
	want := map[string]string{
		"东城区": "110101", "西城区": "110102", "朝阳区": "110105", "丰台区": "110106",
		"石景山区": "110107", "海淀区": "110108", "门头沟区": "110109", "房山区": "110111",
		"通州区": "110112", "顺义区": "110113", "昌平区": "110114", "大兴区": "110115",
		"怀柔区": "110116", "平谷区": "110117", "密云区": "110118", "延庆区": "110119",
	}
	if len(Districts) != len(want) {
		t.Fatalf("len(Districts) = %d, want %d", len(Districts), len(want))
	}
	for _, d := range Districts {
		if want[d.Name] != d.Code {
			t.Errorf("district %s has code %q, want %q", d.Name, d.Code, want[d.Name])
		}
	}
}

func TestGenerateMeetsMinimumCounts(t *testing.T) {
	d := testData()
	for _, c := range []struct {
		dataset  string
		got, min int
	}{
		{"residents", len(d.Residents), 3000},
		{"visits", len(d.Visits), 6000},
		{"assistance", len(d.Assistance), 2500},
	} {
		if c.got < c.min {
			t.Errorf("%s: %d records, want at least %d", c.dataset, c.got, c.min)
		}
	}
}

func TestGenerateIsDeterministicPerSeed(t *testing.T) {
	encode := func(seed uint64) []byte {
		t.Helper()
		b, err := json.Marshal(Generate(seed))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first, again, other := encode(DefaultSeed), encode(DefaultSeed), encode(DefaultSeed+1)
	if !bytes.Equal(first, again) {
		t.Error("two worlds from the same seed encode differently")
	}
	if bytes.Equal(first, other) {
		t.Error("worlds from different seeds encode the same")
	}
}

func TestResidentIDsAreValidAndAgreeWithTheRecord(t *testing.T) {
	codes := make(map[string]string)
	for _, d := range Districts {
		codes[d.Name] = d.Code
	}
	seen := make(map[string]bool)
	for _, r := range testData().Residents {
		id := r.IDNumber
		if !anonymize.ValidIDCN(id) {
			t.Errorf("%s: invalid check character", id)
			continue
		}
		if seen[id] {
			t.Errorf("%s: issued twice", id)
		}
		seen[id] = true
		if got, want := id[:6], codes[r.District]; got != want {
			t.Errorf("%s: region %s, want %s for %s", id, got, want, r.District)
		}
		if got, want := id[6:14], strings.ReplaceAll(r.BirthDate, "-", ""); got != want {
			t.Errorf("%s: birth date %s, record says %s", id, got, r.BirthDate)
		}
		wantGender := "女"
		if (id[16]-'0')%2 == 1 {
			wantGender = "男"
		}
		if r.Gender != wantGender {
			t.Errorf("%s: gender %q, ID says %q", id, r.Gender, wantGender)
		}
	}
}

func TestSomeResidentIDsEndInX(t *testing.T) {
	for _, r := range testData().Residents {
		if strings.HasSuffix(r.IDNumber, "X") {
			return
		}
	}
	t.Error("no resident ID ends in X")
}

func TestResidentsAreAgedZeroToNinetyFive(t *testing.T) {
	for _, r := range testData().Residents {
		born, err := time.Parse(time.DateOnly, r.BirthDate)
		if err != nil {
			t.Errorf("%s: birth_date %q: %v", r.IDNumber, r.BirthDate, err)
			continue
		}
		if born.After(windowEnd) || !born.AddDate(96, 0, 0).After(windowEnd) {
			t.Errorf("%s: born %s, not 0 to 95 years old on %s", r.IDNumber, r.BirthDate, windowEnd.Format(time.DateOnly))
		}
	}
}

func TestAboutFivePercentOfNamesHaveCompoundSurnames(t *testing.T) {
	compound := []string{"欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐"}
	residents := testData().Residents
	n := 0
	for _, r := range residents {
		length := len([]rune(r.Name))
		hasCompound := false
		for _, s := range compound {
			hasCompound = hasCompound || strings.HasPrefix(r.Name, s)
		}
		if hasCompound {
			n++
			length--
		}
		if length < 2 || length > 3 {
			t.Errorf("%s: name %q is not a surname and a one- or two-character given name", r.IDNumber, r.Name)
		}
	}
	if share := float64(n) / float64(len(residents)); share < 0.03 || share > 0.07 {
		t.Errorf("%.1f%% of names have compound surnames, want about 5%%", 100*share)
	}
}

func TestPhonesAreElevenDigitMobileNumbers(t *testing.T) {
	mobile := regexp.MustCompile(`^1(3[0-9]|5[0-35-9]|7[0-9]|8[0-9])[0-9]{8}$`)
	for _, r := range testData().Residents {
		if !mobile.MatchString(r.Phone) {
			t.Errorf("%s: phone %q is not an 11-digit mobile number", r.IDNumber, r.Phone)
		}
	}
}

func TestAddressesAreInTheResidentsDistrict(t *testing.T) {
	street := regexp.MustCompile(`^\p{Han}+\d+号院\d+号楼\d单元\d{3,4}$`)
	for _, r := range testData().Residents {
		rest, ok := strings.CutPrefix(r.Address, "北京市"+r.District)
		if !ok || !street.MatchString(rest) {
			t.Errorf("%s: address %q is not a street address in %s", r.IDNumber, r.Address, r.District)
		}
	}
}

func TestVisitsAreByResidentsInTheWindow(t *testing.T) {
	d := testData()
	residents := make(map[string]Resident)
	for _, r := range d.Residents {
		residents[r.IDNumber] = r
	}
	hospitals := make(map[string]string)
	for _, di := range beijing {
		for _, h := range di.hospitals {
			hospitals[h] = di.Name
		}
	}
	visitID := regexp.MustCompile(`^V(2025|2026)\d{6}$`)
	icd10 := regexp.MustCompile(`^[A-Z]\d{2}(\.\d)?$`)
	ids := make(map[string]bool)
	perPatient := make(map[string]int)
	for _, v := range d.Visits {
		if !visitID.MatchString(v.VisitID) || ids[v.VisitID] {
			t.Errorf("visit_id %q is malformed or repeated", v.VisitID)
		}
		ids[v.VisitID] = true
		r, ok := residents[v.PatientID]
		if !ok {
			t.Errorf("%s: patient %s is not a resident", v.VisitID, v.PatientID)
			continue
		}
		perPatient[v.PatientID]++
		if v.PatientName != r.Name {
			t.Errorf("%s: patient_name %q, resident is %q", v.VisitID, v.PatientName, r.Name)
		}
		if hospitals[v.Hospital] != v.District {
			t.Errorf("%s: hospital %q is not in %s", v.VisitID, v.Hospital, v.District)
		}
		if !icd10.MatchString(v.Diagnosis) {
			t.Errorf("%s: diagnosis %q is not an ICD-10 code", v.VisitID, v.Diagnosis)
		}
		if v.VisitDate < "2025-01-01" || v.VisitDate > "2026-10-31" || v.VisitDate < r.BirthDate {
			t.Errorf("%s: visit_date %s outside the window or before birth on %s", v.VisitID, v.VisitDate, r.BirthDate)
		}
		if v.VisitID[1:5] != v.VisitDate[:4] {
			t.Errorf("%s: numbered in a different year than %s", v.VisitID, v.VisitDate)
		}
		if v.Cost < 20 || v.Cost > 50000 {
			t.Errorf("%s: cost %d outside 20..50000", v.VisitID, v.Cost)
		}
	}
	frequent := 0
	for _, n := range perPatient {
		if n >= 5 {
			frequent++
		}
	}
	if frequent < 100 {
		t.Errorf("%d patients visit five times or more, want at least 100", frequent)
	}
}

func TestAssistanceCasesAreOneAdultResidentEach(t *testing.T) {
	d := testData()
	residents := make(map[string]Resident)
	for _, r := range d.Residents {
		residents[r.IDNumber] = r
	}
	caseID := regexp.MustCompile(`^C20\d\d-\d{5}$`)
	ids := make(map[string]bool)
	applicants := make(map[string]bool)
	for _, c := range d.Assistance {
		if !caseID.MatchString(c.CaseID) || ids[c.CaseID] {
			t.Errorf("case_id %q is malformed or repeated", c.CaseID)
		}
		ids[c.CaseID] = true
		r, ok := residents[c.IDNumber]
		if !ok {
			t.Errorf("%s: applicant %s is not a resident", c.CaseID, c.IDNumber)
			continue
		}
		if applicants[c.IDNumber] {
			t.Errorf("%s: applicant %s has another case", c.CaseID, c.IDNumber)
		}
		applicants[c.IDNumber] = true
		if got, want := [3]string{c.Name, c.Phone, c.District}, [3]string{r.Name, r.Phone, r.District}; got != want {
			t.Errorf("%s: name, phone, district %v, resident has %v", c.CaseID, got, want)
		}
		born, _ := time.Parse(time.DateOnly, r.BirthDate)
		if c.StartDate > "2026-10-31" || c.StartDate < born.AddDate(18, 0, 0).Format(time.DateOnly) {
			t.Errorf("%s: start_date %s after the window or before the applicant, born %s, came of age", c.CaseID, c.StartDate, r.BirthDate)
		}
		if c.CaseID[1:5] != c.StartDate[:4] {
			t.Errorf("%s: numbered in a different year than %s", c.CaseID, c.StartDate)
		}
		if c.HouseholdSize < 1 || c.HouseholdSize > 8 {
			t.Errorf("%s: household_size %d outside 1..8", c.CaseID, c.HouseholdSize)
		}
		if c.MonthlyAllowance < 300 || c.MonthlyAllowance > 3000 {
			t.Errorf("%s: monthly_allowance %d outside 300..3000", c.CaseID, c.MonthlyAllowance)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		Generate(DefaultSeed)
	}
}

func TestTheDemoCitizenIsInEveryDataset(t *testing.T) {
	d := Generate(DefaultSeed)
	id := d.InEveryDataset()
	if !anonymize.ValidIDCN(id) {
		t.Fatalf("citizen %q", id)
	}
	in := func(found bool, what string) {
		if !found {
			t.Errorf("citizen %s not in %s", id, what)
		}
	}
	in(slices.ContainsFunc(d.Residents, func(r Resident) bool { return r.IDNumber == id }), "residents")
	in(slices.ContainsFunc(d.Visits, func(v Visit) bool { return v.PatientID == id }), "visits")
	in(slices.ContainsFunc(d.Assistance, func(c Case) bool { return c.IDNumber == id }), "assistance")
}
