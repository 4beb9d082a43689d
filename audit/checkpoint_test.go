package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testKey returns a checkpoint key derived from name, so that tests can
// make "another key" cheaply.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("sluice test checkpoint key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// clock is a settable time source safe for the writer goroutine.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func cpPath(dir string) string       { return filepath.Join(dir, checkpointFile) }
func discard() *slog.Logger          { return slog.New(slog.DiscardHandler) }
func noTimers(o Options) Options     { o.CheckpointInterval = -1; return o }
func readCheckpoints(t testing.TB, dir string) []Checkpoint {
	t.Helper()
	var out []Checkpoint
	for i, line := range readLines(t, cpPath(dir)) {
		c, err := parseCheckpoint(line)
		if err != nil {
			t.Fatalf("checkpoint line %d: %v", i+1, err)
		}
		out = append(out, c)
	}
	return out
}

// signedTrail is a trail written by a Log with checkpoints and a witness.
type signedTrail struct {
	dir, witness string
	key          ed25519.PrivateKey
}

func (s *signedTrail) opts() VerifyOptions {
	return VerifyOptions{Keys: []ed25519.PublicKey{pubOf(s.key)}, Witness: NewFileWitness(s.witness)}
}

// newSignedTrail writes 30 records, one per day-segment of ten (the clock
// moves a day every ten records and the Log rotates daily), with a
// checkpoint every five records: checkpoints 1..6 cover seqs 5, 10, ... 30.
// Record 14 is line 4 of segment 2; checkpoint 3 covers record 15.
func newSignedTrail(t *testing.T) *signedTrail {
	t.Helper()
	root := t.TempDir()
	s := &signedTrail{dir: filepath.Join(root, "audit"), witness: filepath.Join(root, "witness", "checkpoint.json"), key: testKey("trail")}
	clk := newClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	l := openLog(t, s.dir, noTimers(Options{Now: clk.Now, RotateDaily: true, CheckpointKey: s.key, CheckpointEvery: 5, Witness: NewFileWitness(s.witness)}))
	for i := 1; i <= 30; i++ {
		if err := l.Append(context.Background(), sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			clk.Add(24 * time.Hour)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyWith(t, s.dir, s.opts())
	if !rep.OK || rep.Records != 30 || rep.Segments != 3 || rep.Checkpoints != 6 || rep.Covered != 30 || len(rep.Warnings) != 0 {
		t.Fatalf("fresh signed trail: %+v (bad: %v)", rep, rep.Bad)
	}
	return s
}

func verifyWith(t testing.TB, dir string, opts VerifyOptions) *Report {
	t.Helper()
	rep, err := Verify(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestLogCheckpointsEveryNRecordsAndOnClose(t *testing.T) {
	dir := t.TempDir()
	key := testKey("a")
	clk := newClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	l := openLog(t, dir, noTimers(Options{Now: clk.Now, CheckpointKey: key, CheckpointEvery: 4}))
	appendN(t, l, 10)
	if c, ok := l.LastCheckpoint(); !ok || c.N != 2 || c.Seq != 8 {
		t.Errorf("LastCheckpoint() = %+v, %v; want checkpoint 2 at seq 8", c, ok)
	}
	seq, head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cps := readCheckpoints(t, dir)
	if len(cps) != 3 {
		t.Fatalf("%d checkpoints, want 3 (seq 4, 8 and 10 at Close)", len(cps))
	}
	lines := readLines(t, segPath(dir, 1))
	for i, c := range cps {
		wantSeq := []uint64{4, 8, 10}[i]
		if c.N != uint64(i+1) || c.Seq != wantSeq || c.Head != lineHash(lines[wantSeq-1]) {
			t.Errorf("checkpoint %d: n %d seq %d head %s; want seq %d head %s", i+1, c.N, c.Seq, c.Head, wantSeq, lineHash(lines[wantSeq-1]))
		}
		if c.Segment != segmentName(1) || c.Size != int64(len(joinLines(lines[:wantSeq]))) {
			t.Errorf("checkpoint %d places seq %d at %s byte %d", i+1, c.Seq, c.Segment, c.Size)
		}
		if !c.Time.Equal(clk.Now()) || c.KeyID != KeyID(pubOf(key)) {
			t.Errorf("checkpoint %d: time %v key %s", i+1, c.Time, c.KeyID)
		}
		if err := c.verifySig(map[string]ed25519.PublicKey{c.KeyID: pubOf(key)}); err != nil {
			t.Errorf("checkpoint %d: %v", i+1, err)
		}
		wantPrev := ""
		if i > 0 {
			wantPrev = cps[i-1].Hash()
		}
		if c.Prev != wantPrev {
			t.Errorf("checkpoint %d: prev %q, want %q", i+1, c.Prev, wantPrev)
		}
		// sampleEvent(i) is at 10:00 plus i µs; records 1..10 are events 0..9.
		base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
		if !c.MinTime.Equal(base) || !c.MaxTime.Equal(base.Add(time.Duration(wantSeq-1)*time.Microsecond)) {
			t.Errorf("checkpoint %d: times %v..%v", i+1, c.MinTime, c.MaxTime)
		}
	}
	if last := cps[2]; last.Seq != seq || last.Head != head {
		t.Errorf("Close's checkpoint: seq %d head %s; Head() was %d %s", last.Seq, last.Head, seq, head)
	}
	rep := verifyWith(t, dir, VerifyOptions{Keys: []ed25519.PublicKey{pubOf(key)}})
	if !rep.OK || rep.Checkpoints != 3 || rep.Covered != 10 || !rep.SignaturesChecked {
		t.Errorf("Verify: %+v", rep)
	}
}

func TestLogCheckpointsOnItsIntervalOnlyAfterNewRecords(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{CheckpointKey: testKey("a"), CheckpointEvery: -1, CheckpointInterval: 10 * time.Millisecond})
	appendN(t, l, 3)
	waitUntil(t, func() bool { c, ok := l.LastCheckpoint(); return ok && c.Seq == 3 })
	time.Sleep(50 * time.Millisecond) // several idle intervals
	if c, _ := l.LastCheckpoint(); c.N != 1 {
		t.Errorf("idle intervals made checkpoints: last is %d", c.N)
	}
	appendN(t, l, 1)
	waitUntil(t, func() bool { c, _ := l.LastCheckpoint(); return c.Seq == 4 && c.N == 2 })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

func TestLogWithoutAKeyMakesNoCheckpoints(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{CheckpointEvery: 1})
	appendN(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cpPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists without a key: %v", checkpointFile, err)
	}
	rep := verifyOK(t, dir, 3)
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "no checkpoints") {
		t.Errorf("warnings %q, want one about the missing checkpoints", rep.Warnings)
	}
}

func TestLogRotatesBySizeAndSealsEachSegmentWithACheckpoint(t *testing.T) {
	dir := t.TempDir()
	probe := t.TempDir()
	writeTrail(t, probe, 3)
	three := fileSize(t, segPath(probe, 1)) // three records, give or take a digit
	l := openLog(t, dir, noTimers(Options{SegmentMaxBytes: three + 10, CheckpointKey: testKey("a"), CheckpointEvery: -1}))
	appendN(t, l, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments, want at least 4 of three records or fewer", len(segs))
	}
	for _, s := range segs {
		if size := fileSize(t, filepath.Join(dir, s.name)); size > three+10 {
			t.Errorf("%s is %d bytes, over the limit of %d", s.name, size, three+10)
		}
	}
	cps := readCheckpoints(t, dir)
	if len(cps) != len(segs) {
		t.Fatalf("%d checkpoints, want one sealing each of the %d segments", len(cps), len(segs))
	}
	for i, c := range cps {
		if c.Segment != segs[i].name || c.Size != fileSize(t, filepath.Join(dir, c.Segment)) {
			t.Errorf("checkpoint %d covers %s up to byte %d, not the whole segment %s", c.N, c.Segment, c.Size, segs[i].name)
		}
	}
	rep := verifyWith(t, dir, VerifyOptions{Keys: []ed25519.PublicKey{pubOf(testKey("a"))}})
	if !rep.OK || rep.Records != 10 || rep.Checkpoints != len(segs) {
		t.Errorf("Verify: %+v", rep)
	}
}

func TestLogRotatesDailyAndAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC))
	l := openLog(t, dir, Options{Now: clk.Now, RotateDaily: true})
	appendN(t, l, 2)
	clk.Add(2 * time.Minute) // past midnight
	appendN(t, l, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Restarted the same day: the last segment continues. (Its file time,
	// by which a restarted log knows the segment's day, follows the clock.)
	if err := os.Chtimes(segPath(dir, 2), clk.Now(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Options{Now: clk.Now, RotateDaily: true})
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Restarted a day later: the segment's last write was yesterday.
	if err := os.Chtimes(segPath(dir, 2), clk.Now(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Add(24 * time.Hour)
	l = openLog(t, dir, Options{Now: clk.Now, RotateDaily: true})
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]int{1: 2, 2: 3, 3: 1} {
		if got := len(readLines(t, segPath(dir, n))); got != want {
			t.Errorf("segment %d holds %d records, want %d", n, got, want)
		}
	}
	verifyOK(t, dir, 6)
}

func TestOpenRefusesATrailCutAfterItsLastCheckpoint(t *testing.T) {
	tests := []struct {
		name string
		cut  func(t *testing.T, s *signedTrail)
		want string
	}{
		{"records cut", func(t *testing.T, s *signedTrail) {
			editLines(t, s.dir, 3, func(l [][]byte) [][]byte { return l[:7] })
		}, "the trail ends at seq 27"},
		{"last segment deleted", func(t *testing.T, s *signedTrail) {
			os.Remove(segPath(s.dir, 3))
		}, "the trail ends at seq 20"},
		{"record rewritten", func(t *testing.T, s *signedTrail) {
			editLines(t, s.dir, 3, func(l [][]byte) [][]byte {
				l[9] = reseal(bytes.Replace(l[9], []byte(`"alice"`), []byte(`"carol"`), 1))
				return l
			})
		}, "another hash"},
		{"checkpoints cut as well (the witness is ahead)", func(t *testing.T, s *signedTrail) {
			editLines(t, s.dir, 3, func(l [][]byte) [][]byte { return l[:5] })
			writeLines(t, cpPath(s.dir), readLines(t, cpPath(s.dir))[:5])
		}, "the witness holds checkpoint 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSignedTrail(t)
			tt.cut(t, s)
			l, err := Open(s.dir, Options{CheckpointKey: s.key, Witness: NewFileWitness(s.witness), Logger: discard()})
			if err == nil {
				l.Close()
				t.Fatal("Open accepted a cut trail")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "verify the trail") {
				t.Errorf("Open error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestOpenContinuesTheCheckpointChainAndCatchesTheWitnessUp(t *testing.T) {
	s := newSignedTrail(t)
	// The witness missed the last checkpoint (it was down).
	cps := readCheckpoints(t, s.dir)
	if err := os.WriteFile(s.witness, cps[4].line(), 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, s.dir, noTimers(Options{CheckpointKey: s.key, CheckpointEvery: 5, Witness: NewFileWitness(s.witness)}))
	w, ok, err := NewFileWitness(s.witness).Latest(context.Background())
	if err != nil || !ok || w.N != 6 {
		t.Fatalf("witness after Open holds %+v, %v, %v; want checkpoint 6", w, ok, err)
	}
	appendN(t, l, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cps = readCheckpoints(t, s.dir)
	if last := cps[len(cps)-1]; last.N != 7 || last.Seq != 35 || last.Prev != cps[5].Hash() {
		t.Errorf("checkpoint after reopen: %+v", last)
	}
	rep := verifyWith(t, s.dir, s.opts())
	if !rep.OK || rep.Checkpoints != 7 || rep.Witness.N != 7 {
		t.Errorf("Verify: %+v %v", rep, rep.Bad)
	}
}

func TestOpenCutsOffATornFinalCheckpoint(t *testing.T) {
	s := newSignedTrail(t)
	good := fileSize(t, cpPath(s.dir))
	appendFile(t, cpPath(s.dir), []byte(`{"n":7,"segment":"trail-0000`))
	l := openLog(t, s.dir, Options{CheckpointKey: s.key, Witness: NewFileWitness(s.witness)})
	if got := fileSize(t, cpPath(s.dir)); got != good {
		t.Errorf("%s is %d bytes after Open, want %d", checkpointFile, got, good)
	}
	if c, _ := l.LastCheckpoint(); c.N != 6 {
		t.Errorf("LastCheckpoint() = %d, want 6", c.N)
	}
}

func TestOpenWithAnUnreachableWitnessStillOpens(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{CheckpointKey: testKey("a"), Witness: failingWitness{}})
	appendN(t, l, 2)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v (a witness failure is logged, not returned)", err)
	}
	if got := len(readCheckpoints(t, dir)); got != 1 {
		t.Errorf("%d checkpoints, want 1 in the trail despite the witness", got)
	}
}

type failingWitness struct{}

func (failingWitness) Put(context.Context, Checkpoint) error { return errors.New("witness down") }
func (failingWitness) Latest(context.Context) (Checkpoint, bool, error) {
	return Checkpoint{}, false, errors.New("witness down")
}

func TestFileWitnessOnlyMovesForward(t *testing.T) {
	s := newSignedTrail(t)
	cps := readCheckpoints(t, s.dir)
	w := NewFileWitness(filepath.Join(t.TempDir(), "w", "latest.json"))
	ctx := context.Background()
	if _, ok, err := w.Latest(ctx); ok || err != nil {
		t.Fatalf("empty witness: %v %v", ok, err)
	}
	for _, c := range cps[:3] {
		if err := w.Put(ctx, c); err != nil {
			t.Fatalf("Put %d: %v", c.N, err)
		}
	}
	if err := w.Put(ctx, cps[2]); err != nil {
		t.Errorf("Put of the held checkpoint again: %v", err)
	}
	forged := cps[3]
	forged.Prev = cps[0].Hash()
	for name, c := range map[string]Checkpoint{"older": cps[1], "same number, other contents": cps[3], "not chained": forged} {
		if name == "same number, other contents" {
			c.N = 3
		}
		if err := w.Put(ctx, c); err == nil {
			t.Errorf("Put of an %s checkpoint succeeded", name)
		}
	}
	if err := w.Put(ctx, cps[5]); err != nil {
		t.Errorf("Put skipping ahead: %v", err)
	}
	got, ok, err := w.Latest(ctx)
	if err != nil || !ok || !cmp.Equal(got, cps[5]) {
		t.Errorf("Latest = %+v, %v, %v; want checkpoint 6", got, ok, err)
	}
}

// TestProbeTellsWhenAFailedTrailRecovers fails writes with RLIMIT_FSIZE at
// the segment's size, which is below the probe's 64 KiB: a probe fails
// where a batch would. (Disk full, quota, I/O errors and read-only
// remounts fail any write in the directory.)
func TestProbeTellsWhenAFailedTrailRecovers(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 40)
	if size := fileSize(t, segPath(dir, 1)); size >= probeBytes {
		t.Fatalf("segment of %d bytes is not below the probe's size", size)
	}
	l := openLog(t, dir, Options{})
	if err := l.Probe(); err != nil {
		t.Fatalf("Probe of a healthy trail: %v", err)
	}
	restore := limitFileSize(t, fileSize(t, segPath(dir, 1)))
	if err := l.Append(context.Background(), sampleEvent(1)); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Append = %v, want EFBIG", err)
	}
	if err := l.Probe(); err == nil {
		t.Error("Probe succeeded while writes fail")
	}
	restore()
	if err := l.Probe(); err != nil {
		t.Errorf("Probe after recovery: %v", err)
	}
	if l.Err() == nil {
		t.Error("Probe cleared Err; only a successful batch should")
	}
	if _, err := os.Stat(filepath.Join(dir, probeFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("probe file left behind: %v", err)
	}
	appendN(t, l, 1)
	if err := l.Err(); err != nil {
		t.Errorf("Err after a successful batch: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Probe(); !errors.Is(err, ErrClosed) {
		t.Errorf("Probe after Close = %v, want ErrClosed", err)
	}
	verifyOK(t, dir, 41)
}

func TestProbeFailsOnATrailThatChangedUnderTheLog(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 200)
	l := openLog(t, dir, Options{})
	path := segPath(dir, 1)
	restore := limitFileSize(t, fileSize(t, path))
	if err := l.Append(context.Background(), sampleEvent(1)); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Append = %v, want EFBIG", err)
	}
	restore()
	lines := readLines(t, path)
	writeLines(t, path, lines[:len(lines)-1])
	if err := l.Probe(); err == nil || !strings.Contains(err.Error(), "changed under the log") {
		t.Errorf("Probe = %v, want the refusal", err)
	}
}

func TestCheckpointJSONIsStable(t *testing.T) {
	c := Checkpoint{N: 2, Segment: segmentName(1), Size: 10, Seq: 3, Head: strings.Repeat("a", 64),
		Time: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), Prev: strings.Repeat("b", 64)}
	c.sign(testKey("a"))
	back, err := parseCheckpoint(bytes.TrimSuffix(c.line(), []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var m map[string]any
	json.Unmarshal(c.line(), &m)
	m["extra"] = "unsigned"
	b, _ := json.Marshal(m)
	if _, err := parseCheckpoint(b); err == nil {
		t.Error("a checkpoint with an unsigned extra field parsed")
	}
}

// stuckWitness takes checkpoints only once release is closed, like a
// witness on a slow volume or a Redis far away.
type stuckWitness struct {
	release chan struct{}
	mu      sync.Mutex
	puts    []uint64 // the N of each checkpoint put
}

func (w *stuckWitness) Put(ctx context.Context, c Checkpoint) error {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	w.puts = append(w.puts, c.N)
	return nil
}

func (w *stuckWitness) Latest(context.Context) (Checkpoint, bool, error) {
	return Checkpoint{}, false, nil
}

// TestASlowWitnessDoesNotHoldUpAppends: checkpoints are made and appends
// return while the witness is stuck; it then gets the newest checkpoint
// (skipping those it was too slow for), and Close waits for it.
func TestASlowWitnessDoesNotHoldUpAppends(t *testing.T) {
	dir := t.TempDir()
	w := &stuckWitness{release: make(chan struct{})}
	l := openLog(t, dir, noTimers(Options{CheckpointKey: testKey("slow"), CheckpointEvery: 2, Witness: w}))
	var unstick sync.Once
	release := func() { unstick.Do(func() { close(w.release) }) }
	t.Cleanup(release) // before openLog's Close, should the test stop early
	appended := make(chan error, 1)
	go func() {
		for i := range 10 {
			if err := l.Append(context.Background(), sampleEvent(i)); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("appends waited for the witness")
	}
	// The writer makes a checkpoint just after it answers the batch's
	// appends.
	waitUntil(t, func() bool { c, _ := l.LastCheckpoint(); return c.N == 5 })
	release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.puts) == 0 || len(w.puts) > 3 || w.puts[len(w.puts)-1] != 5 || !slices.IsSorted(w.puts) {
		t.Errorf("the witness was given checkpoints %v; want a few in order, the last 5", w.puts)
	}
}
