package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var searchBase = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// searchEvent is the i-th event of the search trail: six subjects (one
// needing JSON escapes, one in Chinese), four datasets (one none), three
// decisions, times ten minutes apart with a few minutes of jitter (the
// trail is in arrival order, not time order), and obligations that name
// fields "subject", "decision" and "status", so that the bytes of a query
// value also appear where they must not match.
func searchEvent(i int) *Event {
	subjects := []string{"alice", "bob", "carol", "", `<q&"x">`, "张三"}
	sets := [][2]string{{"health", "visits"}, {"civil", "assistance"}, {"police", "residents"}, {"", ""}}
	e := &Event{
		Time:      searchBase.Add(time.Duration(i)*10*time.Minute + time.Duration(i%7-3)*time.Minute),
		RequestID: fmt.Sprintf("req-%04d", i),
		Subject:   subjects[i%len(subjects)],
		Source:    sets[i%len(sets)][0],
		Dataset:   sets[i%len(sets)][1],
		Action:    []string{"read", "stats", "catalog"}[i%3],
		Method:    "GET",
		Path:      "/v1/x",
		Decision:  []string{"allow", "allow", "allow", "deny", "error"}[i%5],
		Status:    []int{200, 200, 200, 403, 502}[i%5],
	}
	if i%2 == 0 {
		e.Obligations = &Obligations{Fields: map[string]string{"subject": "alice", "decision": "deny", "status": "403"}}
	}
	// Hub objects: a request's transitions, releases under its grant,
	// and the grant id elsewhere in a record (a reason), which must not
	// match.
	switch i % 11 {
	case 1:
		e.Object = "req_1"
	case 2:
		e.Object, e.Change = "grt_1", &StateChange{From: "", To: "active"}
	case 3:
		e.Grant = "grt_1"
	case 4:
		e.Reason = "mentions grt_1 and req_1"
	}
	return e
}

const searchRecords = 300

// searchTrail returns a copy of a trail of searchRecords events, written
// once per test binary by a daily-rotating, checkpointing Log whose clock
// follows the events: three day segments whose time spans the checkpoints
// record.
func searchTrail(t testing.TB) (string, []*Event) {
	t.Helper()
	searchOnce.Do(func() { searchDir, searchErr = writeSearchTrail() })
	if searchErr != nil {
		t.Fatal(searchErr)
	}
	evs := make([]*Event, searchRecords)
	for i := range evs {
		evs[i] = searchEvent(i)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(searchDir)); err != nil {
		t.Fatal(err)
	}
	return dir, evs
}

var (
	searchOnce sync.Once
	searchDir  string
	searchErr  error
)

func writeSearchTrail() (string, error) {
	dir, err := os.MkdirTemp("", "sluice-search-trail-")
	if err != nil {
		return "", err
	}
	clk := newClock(searchBase)
	l, err := Open(dir, noTimers(Options{Now: clk.Now, RotateDaily: true, CheckpointKey: testKey("s"), CheckpointEvery: 20, Logger: discard()}))
	if err != nil {
		return "", err
	}
	for i := range searchRecords {
		e := searchEvent(i)
		clk.Set(e.Time.Add(5 * time.Minute))
		if err := l.Append(context.Background(), e); err != nil {
			return "", err
		}
	}
	if err := l.Close(); err != nil {
		return "", err
	}
	if segs, _ := listSegments(dir); len(segs) != 3 {
		return "", fmt.Errorf("search trail has %d segments, want 3", len(segs))
	}
	return dir, nil
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		appendUntilKilled(dir) // the child of TestKilledLogLosesNoAcknowledgedRecord
		return
	}
	code := m.Run()
	if searchDir != "" {
		os.RemoveAll(searchDir)
	}
	os.Exit(code)
}

// oracle filters events the slow, obvious way.
func oracle(evs []*Event, q Query) []string {
	var ids []string
	for _, e := range evs {
		if (q.Subject == "" || e.Subject == q.Subject) && (q.Source == "" || e.Source == q.Source) &&
			(q.Dataset == "" || e.Dataset == q.Dataset) && (q.Action == "" || e.Action == q.Action) &&
			(q.Decision == "" || e.Decision == q.Decision) && (q.Status == 0 || e.Status == q.Status) &&
			(q.RequestID == "" || e.RequestID == q.RequestID) &&
			(q.Object == "" || e.Object == q.Object || e.Grant == q.Object) &&
			(q.Since.IsZero() || !e.Time.Before(q.Since)) && (q.Until.IsZero() || e.Time.Before(q.Until)) {
			ids = append(ids, e.RequestID)
		}
	}
	if q.Newest {
		slices.Reverse(ids)
	}
	return ids
}

func requestIDs(recs []Record) []string {
	ids := []string{}
	for _, r := range recs {
		ids = append(ids, r.RequestID)
	}
	return ids
}

func TestSearchFiltersMatchExactlyWhatTheTrailHolds(t *testing.T) {
	dir, evs := searchTrail(t)
	day := func(d int, h int) time.Time {
		return searchBase.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour)
	}
	tests := []struct {
		name string
		q    Query
	}{
		{"everything", Query{}},
		{"subject", Query{Subject: "alice"}},
		{"subject is not a prefix", Query{Subject: "alic"}},
		{"subject needing JSON escapes", Query{Subject: `<q&"x">`}},
		{"subject in Chinese", Query{Subject: "张三"}},
		{"source", Query{Source: "civil"}},
		{"source and dataset", Query{Source: "health", Dataset: "visits"}},
		{"dataset of another source", Query{Source: "health", Dataset: "assistance"}},
		{"decision deny, which obligations also mention", Query{Decision: "deny"}},
		{"decision error", Query{Decision: "error"}},
		{"status", Query{Status: 403}},
		{"status no record has", Query{Status: 404}},
		{"action", Query{Action: "stats"}},
		{"request id", Query{RequestID: "req-0123"}},
		{"a request's actions", Query{Object: "req_1"}},
		{"a grant's actions and the releases under it", Query{Object: "grt_1"}},
		{"since", Query{Since: day(1, 12)}},
		{"until", Query{Until: day(0, 9)}},
		{"a window inside one day", Query{Since: day(1, 3), Until: day(1, 5)}},
		{"a window across midnight", Query{Since: day(0, 22), Until: day(1, 2)}},
		{"a window after the trail", Query{Since: day(5, 0)}},
		{"everything at once", Query{Subject: "bob", Source: "civil", Dataset: "assistance", Decision: "allow", Status: 200, Action: "read", Since: day(0, 6), Until: day(2, 0)}},
	}
	for _, tt := range tests {
		for _, newest := range []bool{false, true} {
			q := tt.q
			q.Newest = newest
			t.Run(fmt.Sprintf("%s newest=%v", tt.name, newest), func(t *testing.T) {
				want := oracle(evs, q)
				q.Limit = MaxPageSize
				page, err := Search(context.Background(), dir, q)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, requestIDs(page.Records), cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })); diff != "" {
					t.Errorf("Search (-want +got):\n%s", diff)
				}
				if page.Next != "" {
					t.Errorf("a page short of the limit has Next %q", page.Next)
				}
			})
		}
	}
}

func TestSearchReturnsRecordsAsStored(t *testing.T) {
	dir, evs := searchTrail(t)
	page, err := Search(context.Background(), dir, Query{RequestID: "req-0004"})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("Search = %+v, %v", page, err)
	}
	got := page.Records[0]
	lines := readLines(t, segPath(dir, 1))
	line := lines[4]
	want := *evs[4]
	want.Seq, want.Prev = 5, lineHash(lines[3])
	if diff := cmp.Diff(want, got.Event); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	if got.Hash != lineHash(line) {
		t.Errorf("Hash %s, want %s", got.Hash, lineHash(line))
	}
}

func TestSearchPagesThroughTheTrailInBothOrders(t *testing.T) {
	dir, evs := searchTrail(t)
	for _, newest := range []bool{false, true} {
		t.Run(fmt.Sprintf("newest=%v", newest), func(t *testing.T) {
			q := Query{Decision: "allow", Newest: newest, Limit: 7}
			want := oracle(evs, q)
			var got []string
			pages := 0
			for {
				page, err := Search(context.Background(), dir, q)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				got = append(got, requestIDs(page.Records)...)
				if page.Next == "" {
					break
				}
				if len(page.Records) != 7 {
					t.Fatalf("page %d has %d records and a Next", pages, len(page.Records))
				}
				q.Cursor = page.Next
			}
			if !slices.Equal(got, want) {
				t.Errorf("paged through %v\nwant %v", got, want)
			}
			if wantPages := len(want)/7 + 1; pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
		})
	}
}

func TestSearchRefusesBadQueriesAndCursors(t *testing.T) {
	dir, _ := searchTrail(t)
	page, err := Search(context.Background(), dir, Query{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]Query{
		"unknown decision":          {Decision: "maybe"},
		"status out of range":       {Status: 42},
		"dataset without source":    {Dataset: "visits"},
		"empty window":              {Since: searchBase.Add(time.Hour), Until: searchBase},
		"negative limit":            {Limit: -1},
		"garbage cursor":            {Cursor: "zzz"},
		"cursor of the other order": {Cursor: page.Next, Newest: true},
		"cursor off a line":         {Cursor: "o1.5.3"},
		"cursor past the end":       {Cursor: "o1.99999999.3"},
	} {
		if _, err := Search(context.Background(), dir, q); !errors.Is(err, ErrBadQuery) && !errors.Is(err, ErrBadCursor) {
			t.Errorf("%s: Search = %v, want ErrBadQuery or ErrBadCursor", name, err)
		}
	}
}

func TestSearchSkipsSegmentsOutsideTheTimeWindow(t *testing.T) {
	dir, evs := searchTrail(t)
	q := Query{Since: searchBase.Add(36 * time.Hour), Until: searchBase.Add(40 * time.Hour)}
	var got []string
	lines, err := scanTrail(context.Background(), dir, &q, func(line []byte, pos position) (bool, error) {
		got = append(got, fmt.Sprintf("req-%04d", pos.seq-1))
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := oracle(evs, q); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	day2 := len(readLines(t, segPath(dir, 2)))
	if lines != day2 {
		t.Errorf("read %d lines, want only day 2's %d", lines, day2)
	}
}

func TestSearchDoesNotSkipASegmentGrownSinceItsCheckpoint(t *testing.T) {
	dir, evs := searchTrail(t)
	// A record with an old time lands in the last segment after its last
	// checkpoint (a log without the key wrote it).
	l := openLog(t, dir, Options{})
	late := searchEvent(0)
	late.RequestID = "req-late"
	if err := l.Append(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	q := Query{Until: searchBase.Add(time.Hour)}
	page, err := Search(context.Background(), dir, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(oracle(evs, q), "req-late"); !slices.Equal(requestIDs(page.Records), want) {
		t.Errorf("got %v, want %v", requestIDs(page.Records), want)
	}
}

func TestScanYieldsUpToItsLimitAndStopsWhenAsked(t *testing.T) {
	dir, evs := searchTrail(t)
	var got []string
	for r, err := range Scan(context.Background(), dir, Query{Subject: "carol", Limit: 4}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.RequestID)
	}
	if want := oracle(evs, Query{Subject: "carol"})[:4]; !slices.Equal(got, want) {
		t.Errorf("Scan = %v, want %v", got, want)
	}
	n := 0
	for range Scan(context.Background(), dir, Query{}) {
		if n++; n == 2 {
			break
		}
	}
	for _, err := range Scan(context.Background(), dir, Query{Decision: "nope"}) {
		if !errors.Is(err, ErrBadQuery) {
			t.Errorf("Scan of a bad query yielded %v", err)
		}
	}
}

func TestSearchIgnoresARecordBeingWritten(t *testing.T) {
	dir, evs := searchTrail(t)
	appendFile(t, segPath(dir, 3), []byte(`{"seq":301,"prev":"ab`))
	for _, newest := range []bool{false, true} {
		page, err := Search(context.Background(), dir, Query{Newest: newest, Limit: MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Records) != len(evs) {
			t.Errorf("newest=%v: %d records, want %d", newest, len(page.Records), len(evs))
		}
	}
}

func TestSummarizeCountsByDecisionConsumerAndHour(t *testing.T) {
	dir, evs := searchTrail(t)
	q := Query{Since: searchBase.Add(10 * time.Hour), Until: searchBase.Add(30 * time.Hour)}
	sum, err := Summarize(context.Background(), dir, q, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := &Summary{Consumers: []ConsumerCounts{}, Buckets: []BucketCounts{}}
	consumers := map[[3]string]*ConsumerCounts{}
	buckets := map[time.Time]*BucketCounts{}
	for _, e := range evs {
		if e.Time.Before(q.Since) || !e.Time.Before(q.Until) {
			continue
		}
		k := [3]string{e.Subject, e.Source, e.Dataset}
		if consumers[k] == nil {
			consumers[k] = &ConsumerCounts{Subject: e.Subject, Source: e.Source, Dataset: e.Dataset}
		}
		h := e.Time.Truncate(time.Hour)
		if buckets[h] == nil {
			buckets[h] = &BucketCounts{Start: h}
		}
		for _, c := range []*Counts{&want.Counts, &consumers[k].Counts, &buckets[h].Counts} {
			c.add([]byte(e.Decision))
		}
	}
	for _, c := range consumers {
		want.Consumers = append(want.Consumers, *c)
	}
	for _, b := range buckets {
		want.Buckets = append(want.Buckets, *b)
	}
	sortSummary(want)
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}
	if sum.Total() == 0 || len(sum.Buckets) != 20 {
		t.Errorf("summary of %d records in %d buckets, want some in 20", sum.Total(), len(sum.Buckets))
	}
}

// sortSummary orders a summary as Summarize does.
func sortSummary(s *Summary) {
	slices.SortFunc(s.Consumers, func(a, b ConsumerCounts) int {
		if a.Total() != b.Total() {
			return int(b.Total()) - int(a.Total())
		}
		return cmpStrings(a.Subject+"\x00"+a.Source+"\x00"+a.Dataset, b.Subject+"\x00"+b.Source+"\x00"+b.Dataset)
	})
	slices.SortFunc(s.Buckets, func(a, b BucketCounts) int { return a.Start.Compare(b.Start) })
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestTopFieldsReadsOnlyTheTopLevel(t *testing.T) {
	line := []byte(`{"seq":1,"prev":"","subject":"a\"b\\","query":{"subject":["x"],"decision":["deny"]},` +
		`"obligations":{"fields":{"decision":"deny","status":"403"},"rows":["a}b"]},"decision":"allow","status":200,"bytes":0,"hash":"h"}`)
	var tf topFields
	if !tf.scan(line, true) {
		t.Fatal("scan failed")
	}
	if string(tf.subject) != `a\"b\\` || string(tf.decision) != "allow" || string(tf.status) != "200" {
		t.Errorf("subject %s decision %s status %s", tf.subject, tf.decision, tf.status)
	}
	if jsonString(tf.subject) != `a"b\` {
		t.Errorf("decoded subject %q", jsonString(tf.subject))
	}
	for _, bad := range []string{`{"a":1`, `{"a":"x}`, `["a"]`, `{"a":1}x`, `{"a" :1}`} {
		if tf.scan([]byte(bad), true) {
			t.Errorf("scan accepted %s", bad)
		}
	}
}

// TestSummarizeCountsAReleaseOnce: a release's decision and outcome
// records are one request in the counts; asked by status, the outcome is
// what is counted (the decision record has none). Search returns both.
func TestSummarizeCountsAReleaseOnce(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	release := func(i, status int) {
		e := sampleEvent(i)
		e.Phase, e.Status, e.Rows, e.Bytes = PhaseDecision, 0, 0, 0
		p, err := l.Begin(e)
		if err != nil {
			t.Fatal(err)
		}
		e.Phase, e.Status = PhaseOutcome, status
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	release(1, 200)
	release(2, 502)
	deny := sampleEvent(3)
	deny.Decision, deny.Status, deny.Obligations = "deny", 403, nil
	if err := l.Append(context.Background(), deny); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q           Query
		allow, deny uint64
	}{
		{Query{}, 2, 1},
		{Query{Subject: "alice"}, 2, 1},
		{Query{Status: 200}, 1, 0},
		{Query{Status: 502}, 1, 0},
		{Query{Status: 403}, 0, 1},
	} {
		sum, err := Summarize(context.Background(), dir, tc.q, 0)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Allow != tc.allow || sum.Deny != tc.deny || sum.Error != 0 {
			t.Errorf("%+v: counts %+v, want %d allowed and %d denied", tc.q, sum.Counts, tc.allow, tc.deny)
		}
		if len(sum.Consumers) != 1 || sum.Consumers[0].Total() != tc.allow+tc.deny {
			t.Errorf("%+v: consumers %+v", tc.q, sum.Consumers)
		}
	}
	page, err := Search(context.Background(), dir, Query{RequestID: sampleEvent(1).RequestID})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.Records[0].Phase != PhaseDecision || page.Records[1].Phase != PhaseOutcome {
		t.Errorf("search by request id: %+v, want its decision and outcome records", page.Records)
	}
}
