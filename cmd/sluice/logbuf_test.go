package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records every Write call it gets.
type writes struct {
	mu    sync.Mutex
	calls []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func TestLogLinesAreGatheredIntoFewWritesAndWarningsAreNotHeldBack(t *testing.T) {
	w := &writes{}
	logger, flush := bufferedLogger(w)
	for i := range 50 {
		logger.Info("request", "n", i)
	}
	if got := w.snapshot(); len(got) != 0 {
		t.Fatalf("%d writes right after 50 lines; want them gathered", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(w.snapshot()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := w.snapshot()
	if len(got) != 1 || strings.Count(got[0], "\n") != 50 || !strings.Contains(got[0], `"n":49`) {
		t.Fatalf("after the flush interval: %d writes, want one of all 50 lines: %q", len(got), got)
	}

	logger.Info("request", "n", 50)
	logger.Warn("audit trail unavailable")
	got = w.snapshot()
	if len(got) != 2 || !strings.Contains(got[1], `"n":50`) || !strings.Contains(got[1], "audit trail unavailable") {
		t.Fatalf("a warning must be written at once, with what gathered before it: %q", got)
	}

	big := strings.Repeat("x", 1024)
	for i := 0; len(w.snapshot()) == 2; i++ {
		if i > logBufferBytes/len(big)+1 {
			t.Fatalf("%d KiB gathered without a write", i)
		}
		logger.Info("request", "pad", big)
	}
	if err := flush(); err != nil {
		t.Fatal(err)
	}
}

func TestBufferedLogKeepsEveryLineWholeUnderConcurrentLoggers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	logger, flush := bufferedLogger(f)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				logger.Info("request", "id", fmt.Sprintf("%d-%d", g, i), "pad", strings.Repeat("y", i%300))
			}
		}()
	}
	wg.Wait()
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var rec struct{ ID string }
		if err := json.Unmarshal(line, &rec); err != nil || rec.ID == "" {
			t.Fatalf("line %q is not a whole record: %v", line, err)
		}
		seen[rec.ID] = true
	}
	if len(seen) != 8*500 {
		t.Fatalf("%d distinct lines, want %d", len(seen), 8*500)
	}
}
