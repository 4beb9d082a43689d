package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/gateway"
)

// syncBuffer is a bytes.Buffer safe for the gateway's goroutines to write
// while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one run() of the program in the background.
type proc struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

// start runs the program with args until the test ends (or stop).
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, args, p.stdout, p.stderr) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the run and returns its error.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	select {
	case err, ok := <-p.done:
		if ok {
			close(p.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway did not stop within 30s")
		return nil
	}
}

// demoRun is a running `sluice demo`.
type demoRun struct {
	*proc
	dir      string
	manifest demoManifest
}

// startDemo runs `sluice demo` on a free port with the repository's
// policies and waits until the gateway is ready.
func startDemo(t *testing.T, dir string) *demoRun {
	t.Helper()
	os.Remove(filepath.Join(dir, "demo.json"))
	p := start(t, "demo", "--addr", "127.0.0.1:0", "--dir", dir, "--policies", "../../policies")
	d := &demoRun{proc: p, dir: dir}
	waitFor(t, p, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
		return err == nil && json.Unmarshal(b, &d.manifest) == nil
	})
	waitReady(t, p, d.manifest.Gateway)
	return d
}

// waitFor polls cond until it holds; it fails the test when the program
// exits first or 30s pass.
func waitFor(t *testing.T, p *proc, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case err := <-p.done:
			t.Fatalf("the program exited early: %v\nstderr:\n%s", err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting; stderr:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listening waits until the gateway p logs that it listens and returns
// its URL.
func listening(t *testing.T, p *proc) string {
	t.Helper()
	var url string
	waitFor(t, p, func() bool {
		m := listeningLine.FindStringSubmatch(p.stderr.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	return url
}

var listeningLine = regexp.MustCompile(`"msg":"gateway listening","url":"([^"]+)"`)

func waitReady(t *testing.T, p *proc, base string) {
	t.Helper()
	waitFor(t, p, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// response is a finished HTTP exchange with the gateway.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return v
}

// items returns the released records.
func (r response) items(t *testing.T) []map[string]any {
	t.Helper()
	var v struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not a record list: %v\n%s", err, r.body)
	}
	return v.Items
}

// errorCode returns the code of a JSON error body, failing when the body is
// anything else (a budget refusal adds its numbers).
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var v struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
			*gateway.BudgetRefusal
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.Error.Code == "" {
		t.Fatalf("status %d: body is not a JSON error: %s", r.status, r.body)
	}
	if v.Error.RequestID == "" || v.Error.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("error request_id %q, X-Request-Id %q: want both, equal", v.Error.RequestID, r.header.Get("X-Request-Id"))
	}
	return v.Error.Code
}

// get sends a GET to the gateway with the given token ("" for none) and
// extra headers; every gateway answer must carry an X-Request-Id.
func get(t *testing.T, url, token string, headers ...string) response {
	t.Helper()
	r := fetch(t, url, token, headers...)
	if r.header.Get("X-Request-Id") == "" {
		t.Errorf("GET %s: no X-Request-Id", url)
	}
	return r
}

// fetch sends a GET to any server (the gateway or an upstream).
func fetch(t *testing.T, url, token string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// expectError checks a JSON error response with status and code.
func expectError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if got := r.errorCode(t); got != code {
		t.Fatalf("error code %q, want %q", got, code)
	}
}

// runCmd runs one short command and returns its output and error.
func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// trailBytes returns the records of the whole audit trail under dir,
// without the padding of a live segment.
func trailBytes(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "trail-*.jsonl"))
	if len(files) == 0 {
		t.Fatalf("no audit trail in %s", dir)
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(bytes.TrimRight(data, "\x00"))
	}
	return b.String()
}

// auditRecords decodes the trail's records.
func auditRecords(t *testing.T, dir string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(trailBytes(t, dir)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

// recordFor finds the audit record that says how a request ended: its
// only record, or the outcome of a release, which may reach the disk a
// moment after the answer (only the decision record must be durable
// before it).
func recordFor(t *testing.T, dir, requestID string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var decision map[string]any
		for _, r := range auditRecords(t, dir) {
			if r["request_id"] != requestID {
				continue
			}
			if r["phase"] != audit.PhaseDecision {
				return r
			}
			decision = r
		}
		if time.Now().After(deadline) {
			if decision != nil {
				t.Fatalf("request %s has a decision record and no outcome: %v", requestID, decision)
			}
			t.Fatalf("no audit record for request %s", requestID)
		}
	}
}

func TestGCIsTunedOnlyWhereTheEnvironmentIsSilent(t *testing.T) {
	gc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	})
	debug.SetGCPercent(gc)

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(400); got != 400 {
		t.Errorf("GOGC %d, want 400", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("memory limit %d, want 1 GiB", got)
	}

	// What the runtime took from GOGC=77 and GOMEMLIMIT=123MiB stays.
	debug.SetGCPercent(77)
	debug.SetMemoryLimit(123 << 20)
	tuneGC(func(k string) string { return map[string]string{"GOGC": "77", "GOMEMLIMIT": "123MiB"}[k] })
	if debug.SetGCPercent(gc) != 77 || debug.SetMemoryLimit(-1) != 123<<20 {
		t.Error("tuneGC changed a setting the environment gave")
	}
}
