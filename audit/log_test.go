package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sampleEvent is a realistic allowed read; i makes it unique.
func sampleEvent(i int) *Event {
	return &Event{
		Time:      time.Date(2026, 11, 26, 10, 0, 0, i*1000, time.UTC),
		RequestID: fmt.Sprintf("req-%08d", i),
		Subject:   "alice",
		Roles:     []string{"analyst"},
		Purpose:   "public-health",
		Client:    "10.1.2.3",
		Action:    "read",
		Source:    "health",
		Dataset:   "visits",
		Method:    "GET",
		Path:      "/v1/health/visits/hmac-sha256:0f3c2a9d51e4b1a8c7d6e5f40312a9b8c7d6e5f40312a9b8c7d6e5f40312a9b8",
		Query: map[string][]string{
			"district": {"hmac-sha256:5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"},
			"page":     {"hmac-sha256:c4ca4238a0b923820dcc509a6f75849bc4ca4238a0b923820dcc509a6f75849b"},
		},
		Decision: "allow",
		Reason:   "analyst read of health visits <L3> & below",
		Obligations: &Obligations{
			Fields:  map[string]string{"patient_id": "pseudonymize", "visit_date": "generalize", "cost": "keep", "district": "keep"},
			Dropped: []string{"patient_name"},
			Rows:    []string{"district in [朝阳区]"},
			Params:  []string{"district", "page", "page_size"},
			MaxRows: 1000,
		},
		Rows:           20,
		Status:         200,
		Bytes:          4096,
		DurationMS:     12.5,
		PolicyRevision: "sha256:9f86d081884c7d659a2feaa0c55ad015",
	}
}

func openLog(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// appendN appends n sample events one after another and returns them.
func appendN(t testing.TB, l *Log, n int) []*Event {
	t.Helper()
	evs := make([]*Event, n)
	for i := range evs {
		evs[i] = sampleEvent(i)
		if err := l.Append(context.Background(), evs[i]); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	return evs
}

// writeTrail writes a valid n-record trail into one segment without the
// Log's per-batch fsync, encoding records exactly as the Log does.
func writeTrail(t testing.TB, dir string, n int) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, segmentName(1)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	r := requests.Get().(*request)
	var (
		buf  []byte
		hash [sha256.Size]byte
	)
	for i := 1; i <= n; i++ {
		if err := r.encode(sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
		buf, hash = appendRecord(buf, uint64(i), &hash, r.rest)
		if len(buf) > 1<<20 || i == n {
			if _, err := f.Write(buf); err != nil {
				t.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func segPath(dir string, n int) string { return filepath.Join(dir, segmentName(n)) }

// readLines returns the lines of a segment that ends with '\n', without
// it, and without the padding of a segment a Log is writing.
func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	return bytes.Split(b[:len(b)-1], []byte("\n"))
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	var b []byte
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// splitSegments spreads the records of segment 1 over segments of per
// records each.
func splitSegments(t testing.TB, dir string, per int) {
	t.Helper()
	lines := readLines(t, segPath(dir, 1))
	for i := 0; i*per < len(lines); i++ {
		writeLines(t, segPath(dir, i+1), lines[i*per:min((i+1)*per, len(lines))])
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// verifyOK verifies dir and fails the test unless it holds exactly records
// intact records.
func verifyOK(t testing.TB, dir string, records uint64) *Report {
	t.Helper()
	rep, err := Verify(context.Background(), dir, VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK {
		t.Fatalf("Verify: trail not OK: %s", rep.Bad)
	}
	if rep.Records != records {
		t.Fatalf("Verify: %d records, want %d", rep.Records, records)
	}
	return rep
}

// lineHash returns the hash a record line carries.
func lineHash(line []byte) string {
	return string(line[len(line)-suffixLen+len(hashField) : len(line)-2])
}

func TestAppendFromManyGoroutinesIsDurableContiguousAndGroupCommitted(t *testing.T) {
	const goroutines, each = 50, 20
	dir := t.TempDir()
	l := openLog(t, dir, Options{})

	var (
		mu    sync.Mutex
		got   = map[uint64]*Event{}
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range each {
				e := sampleEvent(g*each + i)
				if err := l.Append(context.Background(), e); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				got[e.Seq] = e
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()

	const total = goroutines * each
	if len(got) != total {
		t.Fatalf("got %d distinct seqs, want %d", len(got), total)
	}
	lines := readLines(t, segPath(dir, 1))
	if len(lines) != total {
		t.Fatalf("segment holds %d records, want %d", len(lines), total)
	}
	for seq := uint64(1); seq <= total; seq++ {
		e, ok := got[seq]
		if !ok {
			t.Fatalf("seq %d was never returned", seq)
		}
		var onDisk struct {
			Seq       uint64 `json:"seq"`
			Prev      string `json:"prev"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(lines[seq-1], &onDisk); err != nil {
			t.Fatalf("line %d: %v", seq, err)
		}
		if onDisk.Seq != seq || onDisk.RequestID != e.RequestID || onDisk.Prev != e.Prev {
			t.Fatalf("line %d is seq %d %s prev %q; Append returned seq %d %s prev %q",
				seq, onDisk.Seq, onDisk.RequestID, onDisk.Prev, e.Seq, e.RequestID, e.Prev)
		}
		if seq > 1 && e.Prev != lineHash(lines[seq-2]) {
			t.Fatalf("seq %d: prev %q is not the previous record's hash", seq, e.Prev)
		}
	}
	rep := verifyOK(t, dir, total)
	if seq, hash := l.Head(); seq != total || hash != rep.Head {
		t.Errorf("Head() = %d, %s; want %d, %s", seq, hash, total, rep.Head)
	}
	syncs := l.syncs.Load()
	t.Logf("%d records in %d fsyncs (%.1f per batch)", total, syncs, float64(total)/float64(syncs))
	if syncs >= total {
		t.Errorf("%d fsyncs for %d concurrent records: appends were not group-committed", syncs, total)
	}
}

func TestAppendReturnsOnlyOnceTheRecordIsWrittenAndSynced(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	for i := 1; i <= 3; i++ {
		e := sampleEvent(i)
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		lines := readLines(t, segPath(dir, 1))
		if got := len(lines); got != i {
			t.Fatalf("after Append %d the segment holds %d records", i, got)
		}
		if !bytes.Contains(lines[i-1], []byte(e.RequestID)) {
			t.Fatalf("last record is not the appended event: %s", lines[i-1])
		}
		if got := l.syncs.Load(); got != uint64(i) {
			t.Fatalf("after Append %d: %d fsyncs", i, got)
		}
	}
}

func TestAppendedRecordIsTheEventJSONWithItsHash(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	evs := appendN(t, l, 2)
	lines := readLines(t, segPath(dir, 1))

	for i, e := range evs {
		want, err := json.Marshal(e) // Seq and Prev are filled in now
		if err != nil {
			t.Fatal(err)
		}
		line := lines[i]
		body := append(bytes.Clone(line[:len(line)-suffixLen]), '}')
		if !bytes.Equal(body, want) {
			t.Errorf("record %d is not the event's JSON:\n got %s\nwant %s", i+1, body, want)
		}
		sum := sha256.Sum256(want)
		wantLine := string(want[:len(want)-1]) + `,"hash":"` + hex.EncodeToString(sum[:]) + `"}`
		if string(line) != wantLine {
			t.Errorf("record %d:\n got %s\nwant %s", i+1, line, wantLine)
		}
		var back Event
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&back, e) {
			t.Errorf("record %d decodes to %+v, want %+v", i+1, back, *e)
		}
	}
	if evs[0].Seq != 1 || evs[0].Prev != "" {
		t.Errorf("first record: seq %d prev %q, want 1 and empty", evs[0].Seq, evs[0].Prev)
	}
	if evs[1].Prev != lineHash(lines[0]) {
		t.Errorf("second record's prev %q, want %q", evs[1].Prev, lineHash(lines[0]))
	}
}

func TestAppendStampsMissingTimeFromNowInUTC(t *testing.T) {
	beijing := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 11, 26, 18, 0, 0, 0, beijing)
	l := openLog(t, t.TempDir(), Options{Now: func() time.Time { return now }})

	e := sampleEvent(1)
	e.Time = time.Time{}
	if err := l.Append(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if !e.Time.Equal(now) || e.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v in UTC", e.Time, now)
	}
	e = sampleEvent(2)
	e.Time = now.Add(time.Minute)
	if err := l.Append(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if e.Time.Location() != time.UTC {
		t.Errorf("caller's time kept its zone: %v", e.Time)
	}
}

func TestAppendRefusesAnEventThatCannotBeEncoded(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	appendN(t, l, 1)

	e := sampleEvent(2)
	e.DurationMS = math.NaN()
	if err := l.Append(context.Background(), e); err == nil {
		t.Fatal("Append of an unencodable event succeeded")
	}
	if e.Seq != 0 {
		t.Errorf("failed Append set Seq %d", e.Seq)
	}
	appendN(t, l, 1)
	verifyOK(t, dir, 2)
}

func TestAppendWithEndedContextReturnsItsError(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Append(ctx, sampleEvent(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append = %v, want context.Canceled", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dir, 0)
}

func TestReopenContinuesTheChain(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	appendN(t, l, 5)
	seq, hash := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, dir, Options{})
	if gotSeq, gotHash := l.Head(); gotSeq != seq || gotHash != hash {
		t.Fatalf("reopened Head() = %d, %s; want %d, %s", gotSeq, gotHash, seq, hash)
	}
	evs := appendN(t, l, 5)
	if evs[0].Seq != 6 || evs[0].Prev != hash {
		t.Errorf("first record after reopen: seq %d prev %s; want 6, %s", evs[0].Seq, evs[0].Prev, hash)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dir, 10)
}

func TestOpenCutsOffATornFinalRecord(t *testing.T) {
	tests := []struct {
		name string
		torn func(last []byte) []byte // what a crash left after the last good record
	}{
		{"garbage without newline", func([]byte) []byte { return []byte(`{"seq":6,"prev":"ab`) }},
		{"half a record", func(last []byte) []byte { return last[:len(last)/2] }},
		{"record without its newline", func(last []byte) []byte { return last }},
		{"zeros", func([]byte) []byte { return make([]byte, 4096) }},
		{"unparsable line", func([]byte) []byte { return []byte("\x00\x00garbage\n") }},
		{"empty line", func([]byte) []byte { return []byte("\n") }},
		{"half a record and a newline", func(last []byte) []byte { return append(last[:len(last)/2:len(last)/2], '\n') }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			appendN(t, l, 5)
			seq, hash := l.Head()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path := segPath(dir, 1)
			good := fileSize(t, path)
			lines := readLines(t, path)
			appendFile(t, path, tt.torn(lines[len(lines)-1]))

			l = openLog(t, dir, Options{})
			if got := fileSize(t, path); got != good {
				t.Errorf("segment is %d bytes after Open, want %d", got, good)
			}
			if gotSeq, gotHash := l.Head(); gotSeq != seq || gotHash != hash {
				t.Errorf("Head() = %d, %s; want %d, %s", gotSeq, gotHash, seq, hash)
			}
			appendN(t, l, 1)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			verifyOK(t, dir, 6)
		})
	}
}

func appendFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesToRepairAnythingButATornFinalRecord(t *testing.T) {
	tests := []struct {
		name     string
		tamper   func(lines [][]byte) []byte // the new segment contents
		wantLine string
	}{
		{
			"last record altered",
			func(lines [][]byte) []byte {
				lines[4][20] ^= 1
				return joinLines(lines)
			},
			"trail-00000001.jsonl line 5: hash mismatch",
		},
		{
			"corrupt record before a torn one",
			func(lines [][]byte) []byte {
				lines[4][20] ^= 1
				return append(joinLines(lines), `{"seq":6`...)
			},
			"trail-00000001.jsonl line 5: hash mismatch",
		},
		{
			"two torn lines",
			func(lines [][]byte) []byte {
				return append(joinLines(lines), "garbage\ngarbage"...)
			},
			"trail-00000001.jsonl line 6: malformed record",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTrail(t, dir, 5)
			path := segPath(dir, 1)
			tampered := tt.tamper(readLines(t, path))
			if err := os.WriteFile(path, tampered, 0o600); err != nil {
				t.Fatal(err)
			}

			l, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				l.Close()
				t.Fatal("Open repaired a trail it should have refused")
			}
			if !strings.Contains(err.Error(), tt.wantLine) {
				t.Errorf("Open error %q does not name %q", err, tt.wantLine)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, tampered) {
				t.Error("Open changed a segment it refused")
			}
		})
	}
}

func joinLines(lines [][]byte) []byte {
	var b []byte
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	return b
}

func TestOpenRefusesASegmentThatIsNotARegularFile(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, dir string)
	}{
		{"directory", func(t *testing.T, dir string) {
			if err := os.Mkdir(segPath(dir, 1), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink to a regular file", func(t *testing.T, dir string) {
			target := filepath.Join(t.TempDir(), "elsewhere.jsonl")
			if err := os.WriteFile(target, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, segPath(dir, 1)); err != nil {
				t.Fatal(err)
			}
		}},
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(segPath(dir, 1), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.plant(t, dir)
			l, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				l.Close()
				t.Fatal("Open accepted a segment that is not a regular file")
			}
			if !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Open error %q does not say why", err)
			}
		})
	}
}

func TestOpenRefusesATrailAnotherLogHasOpen(t *testing.T) {
	dir := t.TempDir()
	first := openLog(t, dir, Options{})
	if l, err := Open(dir, Options{}); err == nil {
		l.Close()
		t.Fatal("a second Log opened the same trail")
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openLog(t, dir, Options{}) // released by Close
}

func TestOpenCreatesAPrivateDirectoryAndSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit", "trail")
	openLog(t, dir, Options{})
	for path, want := range map[string]os.FileMode{dir: os.ModeDir | 0o700, segPath(dir, 1): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
	}
}

func TestOpenFindsTheHeadInAnEarlierSegmentWhenTheLastIsEmpty(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 20)
	splitSegments(t, dir, 10)
	if err := os.WriteFile(segPath(dir, 3), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wantHash := lineHash(readLines(t, segPath(dir, 2))[9])

	l := openLog(t, dir, Options{})
	if seq, hash := l.Head(); seq != 20 || hash != wantHash {
		t.Fatalf("Head() = %d, %s; want 20, %s", seq, hash, wantHash)
	}
	appendN(t, l, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(readLines(t, segPath(dir, 3))); got != 2 {
		t.Errorf("last segment holds %d records, want 2", got)
	}
	rep := verifyOK(t, dir, 22)
	if rep.Segments != 3 {
		t.Errorf("Verify saw %d segments, want 3", rep.Segments)
	}
}

// TestWriteFailureFailsClosedAndHeals makes writes fail for real with
// RLIMIT_FSIZE (the tests run as root, so permissions would not stop them).
// It must not run in parallel: the limit is per process.
func TestWriteFailureFailsClosedAndHeals(t *testing.T) {
	dir := t.TempDir()
	// A large segment keeps the limit clear of any other file the test
	// binary writes while it is in force (such as go test's log).
	writeTrail(t, dir, 2000)
	l := openLog(t, dir, Options{})
	path := segPath(dir, 1)
	size := fileSize(t, path)
	headSeq, headHash := l.Head()

	restore := limitFileSize(t, size)
	for attempt := 1; attempt <= 2; attempt++ { // the second goes through the reopen path
		e := sampleEvent(attempt)
		err := l.Append(context.Background(), e)
		// Still running, and told EFBIG: the runtime ignored SIGXFSZ.
		if !errors.Is(err, syscall.EFBIG) {
			t.Fatalf("attempt %d: Append = %v, want EFBIG", attempt, err)
		}
		if e.Seq != 0 || e.Prev != "" {
			t.Errorf("attempt %d: failed Append set seq %d prev %q", attempt, e.Seq, e.Prev)
		}
		if err := l.Err(); !errors.Is(err, syscall.EFBIG) {
			t.Errorf("attempt %d: Err() = %v, want EFBIG", attempt, err)
		}
		if got := fileSize(t, path); got != size {
			t.Errorf("attempt %d: segment is %d bytes, want %d as before the batch", attempt, got, size)
		}
		if seq, hash := l.Head(); seq != headSeq || hash != headHash {
			t.Errorf("attempt %d: Head() = %d, %s; want %d, %s", attempt, seq, hash, headSeq, headHash)
		}
		verifyOK(t, dir, 2000)
	}

	restore()
	e := sampleEvent(3)
	if err := l.Append(context.Background(), e); err != nil {
		t.Fatalf("Append after the limit was lifted: %v", err)
	}
	if e.Seq != headSeq+1 || e.Prev != headHash {
		t.Errorf("healed Append: seq %d prev %s; want %d, %s", e.Seq, e.Prev, headSeq+1, headHash)
	}
	if err := l.Err(); err != nil {
		t.Errorf("Err() after healing = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dir, 2001)
}

// limitFileSize makes the process's writes past size bytes of any file fail
// with EFBIG, until restore (also run at cleanup) lifts the limit. Tests
// using it must not run in parallel.
func limitFileSize(t *testing.T, size int64) (restore func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	restore = func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatalf("restore RLIMIT_FSIZE: %v", err)
		}
	}
	t.Cleanup(restore)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(size), Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	return restore
}

func TestLogRefusesToWriteOnATrailThatLostDurableRecords(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 2000)
	l := openLog(t, dir, Options{})
	path := segPath(dir, 1)
	restore := limitFileSize(t, fileSize(t, path))
	if err := l.Append(context.Background(), sampleEvent(1)); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Append = %v, want EFBIG", err)
	}
	restore()

	// While the log is closed after the failure, its last durable record
	// disappears.
	lines := readLines(t, path)
	writeLines(t, path, lines[:len(lines)-1])
	for range 2 {
		err := l.Append(context.Background(), sampleEvent(2))
		if err == nil || !strings.Contains(err.Error(), "changed under the log") {
			t.Fatalf("Append = %v, want a refusal", err)
		}
		if l.Err() == nil {
			t.Fatal("Err() is nil while the log refuses to write")
		}
	}
	if got := len(readLines(t, path)); got != 1999 {
		t.Errorf("segment holds %d records, want the 1999 left", got)
	}
}

func TestGroupCommitNeverExceedsMaxBatch(t *testing.T) {
	const goroutines, each = 20, 10
	dir := t.TempDir()
	l := openLog(t, dir, Options{MaxBatch: 1})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(context.Background(), sampleEvent(g*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := l.syncs.Load(); got != goroutines*each {
		t.Errorf("%d fsyncs for %d records with MaxBatch 1", got, goroutines*each)
	}
	verifyOK(t, dir, goroutines*each)
}

func TestAppendAfterCloseFails(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), sampleEvent(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := l.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err() after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	verifyOK(t, dir, 1)
}

func TestCloseFlushesQueuedRecords(t *testing.T) {
	const appenders = 50
	dir := t.TempDir()
	l := openLog(t, dir, Options{MaxBatch: 1}) // one fsync per record: the queue builds up

	results := make(chan error, appenders)
	for i := range appenders {
		go func() { results <- l.Append(context.Background(), sampleEvent(i)) }()
	}
	// Wait for a backlog, then close with records still queued.
	var queued int
	var durable uint64
	for deadline := time.Now().Add(10 * time.Second); queued < 5; {
		if time.Now().After(deadline) {
			t.Fatal("no backlog built up")
		}
		time.Sleep(100 * time.Microsecond)
		l.mu.Lock()
		queued, durable = len(l.queue), l.headSeq
		l.mu.Unlock()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	var ok, closed int
	for range appenders {
		switch err := <-results; {
		case err == nil:
			ok++
		case errors.Is(err, ErrClosed):
			closed++
		default:
			t.Errorf("Append = %v", err)
		}
	}
	if ok < int(durable)+queued {
		t.Errorf("%d appends succeeded; %d were durable and %d queued at Close", ok, durable, queued)
	}
	if ok+closed != appenders {
		t.Errorf("%d succeeded and %d refused, want %d in all", ok, closed, appenders)
	}
	verifyOK(t, dir, uint64(ok))
}

// TestBeginIsDurableWhenWaitReturns: Begin encodes the event before it
// returns (the caller may reuse it at once), queues it in order with
// Append's and Queue's records, and its Wait returns only once the record
// is written and synced. A queued record nobody waits for is written too.
func TestBeginIsDurableWhenWaitReturns(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	e := sampleEvent(1)
	e.Phase = PhaseDecision
	p, err := l.Begin(e)
	if err != nil {
		t.Fatal(err)
	}
	// The caller changes the event into its outcome and queues it.
	e.Phase, e.Status, e.Rows = PhaseOutcome, 502, 0
	if err := l.Queue(e); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, segPath(dir, 1))
	if len(lines) == 0 || l.syncs.Load() == 0 {
		t.Fatalf("Wait returned with %d records written and %d fsyncs", len(lines), l.syncs.Load())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines = readLines(t, segPath(dir, 1))
	if len(lines) != 2 {
		t.Fatalf("%d records, want the decision and its outcome", len(lines))
	}
	var got [2]Event
	for i, line := range lines {
		if err := json.Unmarshal(line, &got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got[0].Phase != PhaseDecision || got[0].Status != 200 || got[0].Rows != 20 || got[0].Seq != 1 {
		t.Errorf("first record %+v: want the event as it was when Begin returned, seq 1", got[0])
	}
	if got[1].Phase != PhaseOutcome || got[1].Status != 502 || got[1].Seq != 2 {
		t.Errorf("second record %+v: want the queued outcome, seq 2", got[1])
	}
	verifyOK(t, dir, 2)
}

// TestBeginAndQueueShareTheFailureOfTheirBatch: a record Begin queued is
// not reported durable when its batch fails; once the log is closed both
// refuse at once.
func TestBeginAndQueueShareTheFailureOfTheirBatch(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 2000)
	l := openLog(t, dir, Options{})
	restore := limitFileSize(t, fileSize(t, segPath(dir, 1)))
	p, err := l.Begin(sampleEvent(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Wait = %v, want EFBIG", err)
	}
	restore()
	if err := l.Append(context.Background(), sampleEvent(4)); err != nil {
		t.Fatalf("Append after the limit was lifted: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dir, 2001) // the failed record is not in the trail
	if _, err := l.Begin(sampleEvent(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Begin after Close = %v, want ErrClosed", err)
	}
	if err := l.Queue(sampleEvent(3)); !errors.Is(err, ErrClosed) {
		t.Errorf("Queue after Close = %v, want ErrClosed", err)
	}
}

// TestQueuedRecordsRideWithTheNextCommit: a record nobody waits for does
// not cost a sync of its own while one someone waits for follows; alone,
// it is made durable after the lazy delay, and Close writes it at once.
func TestQueuedRecordsRideWithTheNextCommit(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	setLazyDelay := func(d time.Duration) {
		l.mu.Lock()
		l.lazyDelay = d
		l.mu.Unlock()
	}
	setLazyDelay(time.Hour)
	if err := l.Queue(sampleEvent(1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := l.syncs.Load(); n != 0 {
		t.Fatalf("a record nobody waits for was synced by itself (%d syncs)", n)
	}
	if err := l.Append(context.Background(), sampleEvent(2)); err != nil {
		t.Fatal(err)
	}
	if n, lines := l.syncs.Load(), readLines(t, segPath(dir, 1)); n != 1 || len(lines) != 2 || !bytes.Contains(lines[0], []byte(sampleEvent(1).RequestID)) {
		t.Fatalf("after the Append: %d syncs, %d records; want one sync for the queued record and the appended one, in order", n, len(lines))
	}

	setLazyDelay(time.Millisecond)
	if err := l.Queue(sampleEvent(3)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return len(readLines(t, segPath(dir, 1))) == 3 }) // alone, after the lazy delay

	setLazyDelay(time.Hour)
	if err := l.Queue(sampleEvent(4)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dir, 4)
}
