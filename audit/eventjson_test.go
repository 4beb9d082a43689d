package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkAppendEvent asserts that appendEvent encodes e exactly as json.Marshal
// does, that both fail together with the same message, that what appendEvent
// appends to leaves what was there alone, and that on error it appends
// nothing.
func checkAppendEvent(t testing.TB, e *Event) {
	t.Helper()
	want, wantErr := json.Marshal(e)
	prefix := []byte("prefix:")
	got, gotErr := appendEvent(prefix, e)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("appendEvent error = %v, json.Marshal error = %v\nevent: %#v", gotErr, wantErr, e)
	}
	if !bytes.HasPrefix(got, []byte("prefix:")) {
		t.Fatalf("appendEvent overwrote dst: %q", got)
	}
	got = got[len("prefix:"):]
	if wantErr != nil {
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("appendEvent error = %q, json.Marshal error = %q", gotErr, wantErr)
		}
		if len(got) != 0 {
			t.Fatalf("appendEvent appended %q with error %v", got, gotErr)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendEvent mismatch\n got: %s\nwant: %s\nevent: %#v", got, want, e)
	}
}

// fullEvent is an event with every field set.
func fullEvent() *Event {
	return &Event{
		Seq:       42,
		Prev:      strings.Repeat("ab", 32),
		Time:      time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
		RequestID: "req-0001",
		Subject:   "alice@example.org",
		Roles:     []string{"analyst", "auditor"},
		Purpose:   "research",
		Client:    "127.0.0.1",
		Action:    "read",
		Phase:     PhaseOutcome,
		Source:    "health",
		Dataset:   "visits",
		Method:    "GET",
		Path:      "/v1/health/visits/{id}",
		Query: map[string][]string{
			"page_size": {"100"},
			"district":  {"朝阳区", "海淀区"},
			"a":         nil,
			"b":         {},
		},
		Decision: "allow",
		Reason:   "policy analysts-read", Stage: "parameters",
		Grant: "grt_1", Object: "req_2", Change: &StateChange{From: "submitted", To: "approved"},
		Obligations: &Obligations{
			Fields:     map[string]string{"patient_id": "pseudonymize", "name": "drop", "age": "generalize"},
			Dropped:    []string{"name"},
			Rows:       []string{"district in [朝阳区]"},
			Params:     []string{"page_size"},
			MaxRows:    100,
			Fallbacks:  2,
			Suppressed: 3, MinK: 5, MinL: 3,
			EpsilonSpent:   0.5,
			DeltaSpent:     1e-9,
			ConsumerBudget: 10,
			OrgBudget:      1e21,
			Population:     "residents",
			Allocation:     "analyst",
			Period:         "2026-01-01T00:00:00Z",
			Accounting:     "zcdp",
			RhoSpent:       0.125,
		},
		Rows:             20,
		Status:           200,
		Code:             "E_NONE",
		Bytes:            3900,
		DurationMS:       1.234,
		PolicyRevision:   "sha256:" + strings.Repeat("0f", 32),
		EpsilonRequested: 0.25,
		Flags:            []string{"break_glass"},
		Shadow:           &ShadowDiff{Revision: "sha256:shadow", Differences: []string{"allow: true → false"}},
	}
}

// withEvent returns fullEvent changed by f.
func withEvent(f func(e *Event)) *Event {
	e := fullEvent()
	f(e)
	return e
}

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	negZero := math.Copysign(0, -1)
	cases := []struct {
		name string
		e    *Event
	}{
		{"zero", &Event{}},
		{"full", fullEvent()},
		{"minimal with zero time", &Event{Seq: 1, Action: "read", Method: "GET", Path: "/", Decision: "deny"}},

		// nil versus empty slices and maps
		{"empty roles and flags", withEvent(func(e *Event) { e.Roles = []string{}; e.Flags = []string{} })},
		{"nil roles and flags", withEvent(func(e *Event) { e.Roles = nil; e.Flags = nil })},
		{"empty role string", withEvent(func(e *Event) { e.Roles = []string{""} })},
		{"empty query", withEvent(func(e *Event) { e.Query = map[string][]string{} })},
		{"nil query", withEvent(func(e *Event) { e.Query = nil })},
		{"query nil value only", withEvent(func(e *Event) { e.Query = map[string][]string{"k": nil} })},
		{"query empty value only", withEvent(func(e *Event) { e.Query = map[string][]string{"k": {}} })},
		{"query empty key", withEvent(func(e *Event) { e.Query = map[string][]string{"": {""}} })},
		{"query keys needing escapes", withEvent(func(e *Event) {
			e.Query = map[string][]string{"<b>": {"&"}, "Z": {"z"}, "a\x00": {"\u2028"}, "\xff": {"\xff"}, "é": {"e"}, "~": nil}
		})},
		{"query many keys", withEvent(func(e *Event) {
			e.Query = map[string][]string{}
			for i := range 100 {
				e.Query["k"+strconv.Itoa(i*7919%100)] = []string{strconv.Itoa(i)}
			}
		})},
		{"nil shadow", withEvent(func(e *Event) { e.Shadow = nil })},
		{"shadow nil differences", withEvent(func(e *Event) { e.Shadow = &ShadowDiff{Revision: "r"} })},
		{"shadow empty differences", withEvent(func(e *Event) { e.Shadow = &ShadowDiff{Differences: []string{}} })},
		{"nil obligations", withEvent(func(e *Event) { e.Obligations = nil })},
		{"empty obligations", withEvent(func(e *Event) { e.Obligations = &Obligations{} })},
		{"obligations empty slices and map", withEvent(func(e *Event) {
			e.Obligations = &Obligations{Fields: map[string]string{}, Dropped: []string{}, Rows: []string{}, Params: []string{}}
		})},
		{"obligations only last field", withEvent(func(e *Event) { e.Obligations = &Obligations{OrgBudget: 3} })},
		{"obligations only max rows", withEvent(func(e *Event) { e.Obligations = &Obligations{MaxRows: -1} })},
		{"obligations negative zero floats", withEvent(func(e *Event) {
			e.Obligations = &Obligations{EpsilonSpent: negZero, DeltaSpent: negZero, ConsumerBudget: negZero, OrgBudget: negZero, RhoSpent: negZero}
		})},
		{"obligations tiny floats", withEvent(func(e *Event) {
			e.Obligations = &Obligations{EpsilonSpent: 1e-7, DeltaSpent: 5e-324, ConsumerBudget: 1e-100, OrgBudget: 9.999999e-7}
		})},
		{"obligations NaN", withEvent(func(e *Event) { e.Obligations.DeltaSpent = math.NaN() })},
		{"obligations Inf", withEvent(func(e *Event) { e.Obligations.OrgBudget = math.Inf(-1) })},

		// strings
		{"unicode", withEvent(func(e *Event) { e.Subject = "张伟"; e.Reason = "emoji 😀 ok"; e.Path = "/ünïcödé" })},
		{"control chars", withEvent(func(e *Event) { e.Reason = "\x00\x01\x07\x0b\x0e\x1b\x1f\x7f end" })},
		{"short escapes", withEvent(func(e *Event) { e.Reason = "\b\f\n\r\t" })},
		{"quotes and backslashes", withEvent(func(e *Event) { e.Reason = `say "hi" \ \\ \u0041` })},
		{"html", withEvent(func(e *Event) { e.Reason = "<script>alert('x' && 1)</script>"; e.Prev = "&amp;" })},
		{"invalid utf8", withEvent(func(e *Event) { e.Reason = "a\xffb\xfe\xfdc" })},
		{"truncated utf8", withEvent(func(e *Event) { e.Reason = "abc\xe6\x9c"; e.Subject = "\xe6" })},
		{"surrogate utf8", withEvent(func(e *Event) { e.Reason = "\xed\xa0\x80\xed\xbf\xbf" })},
		{"overlong utf8", withEvent(func(e *Event) { e.Reason = "\xc0\x80\xe0\x80\x80\xf8\x88\x80\x80\x80" })},
		{"beyond U+10FFFF", withEvent(func(e *Event) { e.Reason = "\xf4\x90\x80\x80" })},
		{"replacement char", withEvent(func(e *Event) { e.Reason = "\ufffd\uffff\U0010ffff" })},
		{"line and paragraph separators", withEvent(func(e *Event) { e.Reason = "a\u2028b\u2029c\u2027d\u202ae" })},
		{"only separators", withEvent(func(e *Event) { e.Reason = "\u2028\u2029" })},
		{"all bytes", withEvent(func(e *Event) {
			var b []byte
			for i := range 256 {
				b = append(b, byte(i))
			}
			e.Reason = string(b)
		})},
		{"all ascii runes in map", withEvent(func(e *Event) {
			e.Obligations.Fields = map[string]string{}
			for i := range 128 {
				e.Obligations.Fields[string(rune(i))] = string(rune(i))
			}
		})},

		// numbers
		{"max ints", withEvent(func(e *Event) {
			e.Seq = math.MaxUint64
			e.Rows = math.MaxInt
			e.Status = math.MinInt
			e.Bytes = math.MinInt64
			e.Obligations.MaxRows = math.MaxInt
			e.Obligations.Fallbacks = math.MinInt
		})},
		{"duration zero", withEvent(func(e *Event) { e.DurationMS = 0 })},
		{"duration negative zero", withEvent(func(e *Event) { e.DurationMS = negZero; e.EpsilonRequested = negZero })},
		{"duration 1e-7", withEvent(func(e *Event) { e.DurationMS = 1e-7 })},
		{"duration 1e-6", withEvent(func(e *Event) { e.DurationMS = 1e-6 })},
		{"duration just under 1e-6", withEvent(func(e *Event) { e.DurationMS = math.Nextafter(1e-6, 0) })},
		{"duration 1e21", withEvent(func(e *Event) { e.DurationMS = 1e21 })},
		{"duration just under 1e21", withEvent(func(e *Event) { e.DurationMS = math.Nextafter(1e21, 0) })},
		{"duration 1e20", withEvent(func(e *Event) { e.DurationMS = 1e20 })},
		{"duration -1e21", withEvent(func(e *Event) { e.DurationMS = -1e21 })},
		{"duration 123.456", withEvent(func(e *Event) { e.DurationMS = 123.456 })},
		{"duration -123.456", withEvent(func(e *Event) { e.DurationMS = -123.456 })},
		{"duration 0.1+0.2", withEvent(func(e *Event) { e.DurationMS = 0.1 + 0.2 })},
		{"duration -1e-7", withEvent(func(e *Event) { e.DurationMS = -1e-7 })},
		{"duration 1.5e-10", withEvent(func(e *Event) { e.DurationMS = 1.5e-10 })},
		{"duration 1e-100", withEvent(func(e *Event) { e.DurationMS = 1e-100 })},
		{"duration 1e100", withEvent(func(e *Event) { e.DurationMS = 1e100 })},
		{"duration max float", withEvent(func(e *Event) { e.DurationMS = math.MaxFloat64 })},
		{"duration smallest float", withEvent(func(e *Event) { e.DurationMS = math.SmallestNonzeroFloat64 })},
		{"duration integral", withEvent(func(e *Event) { e.DurationMS = 12345678 })},
		{"duration NaN", withEvent(func(e *Event) { e.DurationMS = math.NaN() })},
		{"duration +Inf", withEvent(func(e *Event) { e.DurationMS = math.Inf(1) })},
		{"duration -Inf", withEvent(func(e *Event) { e.DurationMS = math.Inf(-1) })},
		{"epsilon NaN", withEvent(func(e *Event) { e.EpsilonRequested = math.NaN() })},
		{"epsilon tiny", withEvent(func(e *Event) { e.EpsilonRequested = 3e-8 })},
		{"NaN after bad time", withEvent(func(e *Event) {
			e.DurationMS = math.NaN()
			e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		})},

		// times
		{"time without nanoseconds", withEvent(func(e *Event) { e.Time = time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC) })},
		{"time with 100ns", withEvent(func(e *Event) { e.Time = time.Date(2024, 2, 29, 23, 59, 59, 100, time.UTC) })},
		{"time with ms", withEvent(func(e *Event) { e.Time = time.Date(2024, 2, 29, 23, 59, 59, 120_000_000, time.UTC) })},
		{"time in +01:00", withEvent(func(e *Event) { e.Time = time.Date(2024, 7, 1, 12, 0, 0, 1, time.FixedZone("CET", 3600)) })},
		{"time in -05:30", withEvent(func(e *Event) { e.Time = time.Date(2024, 7, 1, 12, 0, 0, 0, time.FixedZone("", -(5*3600+1800))) })},
		{"time in +23:59", withEvent(func(e *Event) { e.Time = time.Date(2024, 7, 1, 12, 0, 0, 0, time.FixedZone("", 23*3600+59*60)) })},
		{"time in +24:00", withEvent(func(e *Event) { e.Time = time.Date(2024, 7, 1, 12, 0, 0, 0, time.FixedZone("", 24*3600)) })},
		{"time in -100:00", withEvent(func(e *Event) { e.Time = time.Date(2024, 7, 1, 12, 0, 0, 0, time.FixedZone("", -100*3600)) })},
		{"time in +00:00:30", withEvent(func(e *Event) { e.Time = time.Date(2024, 7, 1, 12, 0, 0, 0, time.FixedZone("", 30)) })},
		{"time in -00:00:30", withEvent(func(e *Event) { e.Time = time.Date(2024, 7, 1, 12, 0, 0, 0, time.FixedZone("", -30)) })},
		{"time local", withEvent(func(e *Event) { e.Time = time.Date(2024, 7, 1, 12, 0, 0, 5, time.Local) })},
		{"time now with monotonic clock", withEvent(func(e *Event) { e.Time = time.Now() })},
		{"time year 0", withEvent(func(e *Event) { e.Time = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"time year 9999", withEvent(func(e *Event) { e.Time = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) })},
		{"time year 10000", withEvent(func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"time year -1", withEvent(func(e *Event) { e.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"time year 9999 pushed over by zone", withEvent(func(e *Event) {
			e.Time = time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC).In(time.FixedZone("", 2*3600))
		})},
		{"time extreme", withEvent(func(e *Event) { e.Time = time.Unix(math.MaxInt64, 999999999) })},
		{"time extreme negative", withEvent(func(e *Event) { e.Time = time.Unix(math.MinInt64, 0) })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkAppendEvent(t, c.e) })
	}
}

// TestAppendEventMatchesTheLogsEncoder checks the claim the Log relies on:
// json.Encoder's output is json.Marshal's with a newline.
func TestAppendEventMatchesTheLogsEncoder(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range []*Event{{}, fullEvent(), benchEncodeEvent()} {
		buf.Reset()
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
		got, err := appendEvent(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Fatalf("appendEvent mismatch\n got: %s\nwant: %s", got, want)
		}
	}
}

// TestAppendEventCoversEveryField fills every field of Event, and of the
// structs it points to, by reflection, so that a field added to them that
// appendEvent does not know about fails here.
func TestAppendEventCoversEveryField(t *testing.T) {
	var e Event
	fillEventFields(t, reflect.ValueOf(&e).Elem(), "Event")
	checkAppendEvent(t, &e)

	// And with each field in turn left zero, for omitempty.
	n := reflect.TypeFor[Event]().NumField()
	for i := range n {
		var e Event
		fillEventFields(t, reflect.ValueOf(&e).Elem(), "Event")
		f := reflect.ValueOf(&e).Elem().Field(i)
		f.Set(reflect.Zero(f.Type()))
		checkAppendEvent(t, &e)
	}
}

func fillEventFields(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(path + " <&>")
	case reflect.Int, reflect.Int64:
		v.SetInt(-7)
	case reflect.Uint64:
		v.SetUint(7)
	case reflect.Float64:
		v.SetFloat(1.5e-7)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fillEventFields(t, v.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for i := range 2 {
			val := reflect.New(v.Type().Elem()).Elem()
			fillEventFields(t, val, path+"[]")
			v.SetMapIndex(reflect.ValueOf("k"+strconv.Itoa(i)), val)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillEventFields(t, v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("", -3600))))
			return
		}
		for i := range v.NumField() {
			fillEventFields(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	default:
		t.Fatalf("%s: fillEventFields does not know %s; teach it and check appendEvent encodes it", path, v.Type())
	}
}

func TestAppendEventDoesNotAllocate(t *testing.T) {
	e := benchEncodeEvent()
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = appendEvent(buf[:0], e); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("appendEvent allocates %v times per event", allocs)
	}
}

// fuzzShape hands out the bytes that choose an event's shape, then zeros.
type fuzzShape []byte

func (s *fuzzShape) next() byte {
	if len(*s) == 0 {
		return 0
	}
	b := (*s)[0]
	*s = (*s)[1:]
	return b
}

func FuzzAppendEventMatchesEncodingJSON(f *testing.F) {
	full := fullEvent()
	f.Add("", "", "", "", []byte(nil), uint64(0), int64(0), int64(0), 0.0, 0.0, 0.0, int64(0), int64(0), int32(0))
	f.Add(full.Prev, full.Reason, "<&>\u2028\u2029", "\xff\x00\x1f\"\\", []byte{1, 2, 3, 255, 128, 7}, uint64(math.MaxUint64), int64(-1), int64(math.MaxInt64), 1.234, 1e-7, 1e21, int64(1741964966), int64(535897932), int32(3600))
	f.Add("朝阳区", "😀", "\xe6\x9c", "\xed\xa0\x80", []byte("shape"), uint64(1), int64(200), int64(3900), math.NaN(), 0.5, math.Copysign(0, -1), int64(253402300800), int64(0), int32(0))
	f.Add("a", "b", "c", "d", []byte{255, 255, 255, 255, 255, 255, 255, 255}, uint64(2), int64(0), int64(0), 1.0, math.Inf(1), 5e-324, int64(0), int64(999999999), int32(86400))
	f.Add("x", "y", "z", "w", []byte{0, 0x80, 0x40, 0x20}, uint64(3), int64(0), int64(0), -123.456, 1e-6, math.MaxFloat64, int64(-62167219200), int64(1), int32(-30))

	f.Fuzz(func(t *testing.T, a, b, c, d string, shape []byte, seq uint64, i1, i2 int64, f1, f2, f3 float64, sec, nsec int64, offset int32) {
		sh := fuzzShape(shape)
		pool := [...]string{a, b, c, d, "", a + b, c + "\u2028" + d, string(shape)}
		str := func() string { return pool[int(sh.next())%len(pool)] }
		strs := func() []string {
			x := sh.next()
			n := int(x % 4)
			if n == 0 {
				if x&0x80 != 0 {
					return []string{}
				}
				return nil
			}
			s := make([]string, n)
			for i := range s {
				s[i] = str()
			}
			return s
		}
		floats := [...]float64{f1, f2, f3, 0, -f1, f1 * f2, f2 / f3, math.Copysign(0, -1)}
		float := func() float64 { return floats[int(sh.next())%len(floats)] }

		var loc *time.Location
		switch sh.next() % 4 {
		case 0:
			loc = time.UTC
		case 1:
			loc = time.FixedZone(a, int(offset))
		case 2:
			loc = time.FixedZone("", int(offset)%(36*3600))
		case 3:
			loc = time.Local
		}
		e := &Event{
			Seq:       seq,
			Prev:      a,
			Time:      time.Unix(sec, nsec).In(loc),
			RequestID: b,
			Subject:   c,
			Roles:     strs(),
			Purpose:   d,
			Client:    str(),
			Action:    str(),
			Phase:     str(),
			Source:    str(),
			Dataset:   str(),
			Grant:     str(),
			Object:    str(),
			Method:    str(),
			Path:      str(),
			Decision:  str(),
			Reason:    a + b + c + d, Stage: str(),
			Rows:   int(i1),
			Status: int(i2),
			Code:   str(),
			Bytes:  i1 ^ i2,
			// f1 and f2 as they are: NaN and ±Inf must fail alike.
			DurationMS:       f1,
			PolicyRevision:   str(),
			EpsilonRequested: f2,
			Flags:            strs(),
		}
		if x := sh.next(); x%5 == 0 {
			e.Change = &StateChange{From: str(), To: str()}
		}
		if x := sh.next(); x%3 != 0 {
			e.Query = map[string][]string{}
			for range int(x % 8) {
				e.Query[str()] = strs()
			}
		}
		if x := sh.next(); x%4 != 0 {
			o := &Obligations{
				Dropped:    strs(),
				Rows:       strs(),
				Params:     strs(),
				MaxRows:    int(i1) * int(x&1),
				Fallbacks:  int(i2) * int(x>>1&1),
				Suppressed: int(x >> 2), MinK: int(x >> 3), MinL: int(x >> 4),
				EpsilonSpent:   float(),
				DeltaSpent:     float(),
				ConsumerBudget: float(),
				OrgBudget:      float(),
				RhoSpent:       float(),
				Population:     str(),
				Allocation:     str(),
			}
			if y := sh.next(); y%3 != 0 {
				o.Fields = map[string]string{}
				for range int(y % 8) {
					o.Fields[str()] = str()
				}
			}
			e.Obligations = o
		}
		if x := sh.next(); x%3 != 0 {
			e.Shadow = &ShadowDiff{Revision: str(), Differences: strs()}
		}
		checkAppendEvent(t, e)
	})
}

// benchEncodeEvent is a realistic record: a read by an analyst.
func benchEncodeEvent() *Event {
	return &Event{
		Seq:       123456,
		Prev:      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Time:      time.Date(2025, 6, 3, 9, 41, 27, 123456789, time.UTC),
		RequestID: "01JWQ8Z6V7K3M9T2X5R4N8B1CD",
		Subject:   "u:3b2c1f0e9d8a7b6c5d4e3f2a1b0c9d8e",
		Roles:     []string{"analyst"},
		Purpose:   "public-health-research",
		Client:    "127.0.0.1",
		Action:    "read",
		Phase:     PhaseOutcome,
		Source:    "health",
		Dataset:   "visits",
		Method:    "GET",
		Path:      "/v1/sources/health/datasets/visits/records",
		Query:     map[string][]string{"page_size": {"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}},
		Decision:  "allow",
		Reason:    "rule analysts-may-read-visits matched",
		Obligations: &Obligations{
			Fields: map[string]string{
				"patient_id": "pseudonymize",
				"birth_date": "generalize",
				"district":   "keep",
				"diagnosis":  "keep",
				"visit_date": "keep",
			},
			Dropped: []string{"name"},
			Params:  []string{"page_size"},
			MaxRows: 100,
		},
		Rows:           20,
		Status:         200,
		Bytes:          3900,
		DurationMS:     1.234,
		PolicyRevision: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := benchEncodeEvent()
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = appendEvent(buf[:0], e); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json", func(b *testing.B) {
		// As the Log encodes: one json.Encoder on a reused buffer.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := enc.Encode(e); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
}
