package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestOnDurableSeesEveryRecordAsTheTrailHoldsIt: the hook gets each
// record's line, byte for byte, in seq order, before its Append returns.
func TestOnDurableSeesEveryRecordAsTheTrailHoldsIt(t *testing.T) {
	dir := t.TempDir()
	var (
		mu    sync.Mutex
		lines []string
		seqs  []uint64
	)
	l, err := Open(dir, Options{OnDurable: func(seq uint64, line []byte) {
		mu.Lock()
		defer mu.Unlock()
		seqs, lines = append(seqs, seq), append(lines, string(line))
	}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &Event{RequestID: fmt.Sprint("r", i), Action: "read", Decision: "allow"}
			if err := l.Append(context.Background(), e); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seqs) < int(e.Seq) || seqs[e.Seq-1] != e.Seq {
				t.Errorf("Append of seq %d returned before the hook saw it", e.Seq)
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(lines, ""), string(b); got != want {
		t.Errorf("the hook saw\n%s\nthe trail holds\n%s", got, want)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v are not 1, 2, 3, ...", seqs)
		}
	}
}
