package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// segmentBytes reads a segment file as it is on disk, padding included.
func segmentBytes(t *testing.T, dir string, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(segPath(dir, n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// records splits b into its records and its padding, failing unless the
// records are whole lines holding no NUL and the padding is NUL alone.
func records(t *testing.T, b []byte) (recs, pad []byte) {
	t.Helper()
	recs = bytes.TrimRight(b, "\x00")
	pad = b[len(recs):]
	if bytes.IndexByte(recs, 0) >= 0 {
		t.Fatalf("a NUL byte among the records: %q", recs)
	}
	if len(recs) > 0 && recs[len(recs)-1] != '\n' {
		t.Fatalf("the records do not end in a newline: …%q", recs[max(0, len(recs)-40):])
	}
	return recs, pad
}

func TestLiveSegmentIsPaddedAndOnlyItsRecordsRemainOnceDone(t *testing.T) {
	dir := t.TempDir()
	const pad = 8 << 10
	l := openLog(t, dir, Options{Preallocate: pad, SegmentMaxBytes: 64 << 10})
	appendN(t, l, 1)
	recs, zeros := records(t, segmentBytes(t, dir, 1))
	if len(zeros) < pad {
		t.Fatalf("live segment has %d bytes of padding after its records, want at least %d", len(zeros), pad)
	}
	// Commits that fit in the padding overwrite it: the file's size, and so
	// its metadata, does not change, which is what makes their sync cheap.
	size := len(recs) + len(zeros)
	appendN(t, l, 3)
	b := segmentBytes(t, dir, 1)
	if more, _ := records(t, b); len(b) != size || len(more) <= len(recs) {
		t.Fatalf("after 3 more records in the padding: file %d bytes (was %d), records %d bytes (were %d)", len(b), size, len(more), len(recs))
	}

	// Rotation leaves the old segment ending with its last record.
	n := 4
	for ; len(listed(t, dir)) < 2; n++ {
		appendN(t, l, 1)
	}
	if _, zeros := records(t, segmentBytes(t, dir, 1)); len(zeros) != 0 {
		t.Errorf("rotated segment kept %d bytes of padding", len(zeros))
	}
	if _, zeros := records(t, segmentBytes(t, dir, 2)); len(zeros) == 0 {
		t.Error("the new live segment is not padded")
	}
	// Readers see the records of the live trail and nothing of the padding.
	verifyOK(t, dir, uint64(n))
	page, err := Search(context.Background(), dir, Query{Newest: true, Limit: 2})
	if err != nil || len(page.Records) != 2 || page.Records[0].Seq != uint64(n) {
		t.Fatalf("newest-first search of the live trail: %v, %+v", err, page)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, zeros := records(t, segmentBytes(t, dir, 2)); len(zeros) != 0 {
		t.Errorf("closed segment kept %d bytes of padding", len(zeros))
	}
	verifyOK(t, dir, uint64(n))
}

func listed(t *testing.T, dir string) []segment {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func TestPreallocateNegativeWritesNoPadding(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{Preallocate: -1})
	for i := 0; i < 3; i++ {
		appendN(t, l, 1)
		if _, zeros := records(t, segmentBytes(t, dir, 1)); len(zeros) != 0 {
			t.Fatalf("%d bytes of padding with Preallocate -1", len(zeros))
		}
	}
}

// A Log that stops without Close leaves its padding, and a batch it was
// writing when it stopped may have reached the disk in part, in any order
// of its pages. Open keeps the records before the first NUL byte, sets
// aside any other bytes after it in a file that is not a segment, cuts the
// segment there and writes on from there.
func TestOpenCutsAnUnfinishedBatchFromTheFirstNUL(t *testing.T) {
	tests := []struct {
		name string
		// after builds what follows the three durable records from the
		// lines of records 4 and 5, which were never made durable.
		after func(r4, r5 []byte) []byte
		warn  string
		// aside is what is set aside, from the first NUL to the last
		// byte that is not padding; "" for nothing.
		aside func(r4, r5 []byte) []byte
	}{
		{"padding only", func(r4, r5 []byte) []byte { return make([]byte, 4096) }, "", nil},
		{"a torn record", func(r4, r5 []byte) []byte {
			return append(r4[:20:20], make([]byte, 4096)...)
		}, "torn final record", nil},
		{"a hole, then a whole record", func(r4, r5 []byte) []byte {
			b := append(make([]byte, len(r4)), r5...)
			return append(b, make([]byte, 4096)...)
		}, "never durable", func(r4, r5 []byte) []byte { return append(make([]byte, len(r4)), r5...) }},
		{"a torn record, a hole, a whole record", func(r4, r5 []byte) []byte {
			b := append(r4[:len(r4)/2:len(r4)/2], make([]byte, len(r4)-len(r4)/2)...)
			return append(append(b, r5...), make([]byte, 100)...)
		}, "never durable", func(r4, r5 []byte) []byte { return append(make([]byte, len(r4)-len(r4)/2), r5...) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTrail(t, dir, 5)
			lines := readLines(t, segPath(dir, 1))
			durable := joinLines(lines[:3])
			r4, r5 := append(lines[3], '\n'), append(lines[4], '\n')
			seg := append(durable, tt.after(r4, r5)...)
			if err := os.WriteFile(segPath(dir, 1), seg, 0o600); err != nil {
				t.Fatal(err)
			}

			var logged strings.Builder
			l := openLog(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			if seq, _ := l.Head(); seq != 3 {
				t.Fatalf("head after the cut: seq %d, want 3", seq)
			}
			if tt.warn != "" && !strings.Contains(logged.String(), tt.warn) {
				t.Errorf("log %q does not say %q", logged.String(), tt.warn)
			}
			if recs, _ := records(t, segmentBytes(t, dir, 1)); !bytes.Equal(recs, durable) {
				t.Fatalf("records after the cut:\n%s\nwant the durable three:\n%s", recs, durable)
			}
			aside, _ := filepath.Glob(segPath(dir, 1) + ".unfinished-*")
			switch {
			case tt.aside == nil && len(aside) != 0:
				t.Errorf("set aside %q with nothing but padding or a torn record to cut", aside)
			case tt.aside != nil && len(aside) != 1:
				t.Errorf("set aside %q, want one file", aside)
			case tt.aside != nil:
				b, err := os.ReadFile(aside[0])
				if want := tt.aside(r4, r5); err != nil || !bytes.Equal(b, want) {
					t.Errorf("set aside %q (%v), want %q", b, err, want)
				}
				if !strings.Contains(logged.String(), filepath.Base(aside[0])) {
					t.Errorf("log %q does not name %s", logged.String(), aside[0])
				}
			}
			evs := appendN(t, l, 2)
			if evs[0].Seq != 4 {
				t.Fatalf("next record got seq %d, want 4", evs[0].Seq)
			}
			verifyOK(t, dir, 5)
		})
	}
}

// crashChildEnv makes the test binary a child that appends to the trail in
// the named directory until it is killed, printing each seq once durable.
const crashChildEnv = "SLUICE_AUDIT_CRASH_CHILD_DIR"

func appendUntilKilled(dir string) {
	l, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler), Preallocate: 64 << 10, SegmentMaxBytes: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; ; i++ {
				e := sampleEvent(i)
				if err := l.Append(context.Background(), e); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Println(e.Seq)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// A gateway killed mid-load leaves its last segment padded and records in
// flight. Every record it acknowledged is still in the trail after the
// restart, which verifies and writes on.
func TestKilledLogLosesNoAcknowledgedRecord(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		seq, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked = max(acked, seq)
		if acked >= 3000 { // several rotations in
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if acked < 3000 {
		t.Fatalf("child stopped after %d records: %s", acked, stderr.String())
	}
	// The kill may land inside a write, so the last segment may end in a
	// torn record, before its padding or without any: Open's to repair, so
	// it is only described here, not checked with records.
	segs := listed(t, dir)
	last := segmentBytes(t, dir, segs[len(segs)-1].num)
	written := bytes.TrimRight(last, "\x00")
	if len(written) == len(last) {
		t.Log("the killed child's last segment had no padding left")
	}
	if len(written) > 0 && written[len(written)-1] != '\n' {
		t.Log("the kill tore the child's last record")
	}

	l := openLog(t, dir, Options{})
	seq, _ := l.Head()
	if seq < acked {
		t.Fatalf("head after the restart is seq %d, but seq %d was acknowledged", seq, acked)
	}
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dir, seq+1)
	for _, s := range listed(t, dir) {
		if _, pad := records(t, segmentBytes(t, dir, s.num)); len(pad) != 0 {
			t.Errorf("%s kept %d bytes of padding after Close", s.name, len(pad))
		}
	}
}
