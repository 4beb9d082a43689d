package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUnwritableAuditTrailReleasesNothing: when the trail cannot be
// written (here: the kernel refuses to grow the segment, as on a full
// disk — file permissions do not stop root), every request gets 503 and no
// data, readiness says so, and service resumes once the trail is writable.
func TestUnwritableAuditTrailReleasesNothing(t *testing.T) {
	g := startTestGateway(t, newUpstream(t))
	tok := g.token(t, "tester")
	r := get(t, g.url+"/v1/bad/good", tok)
	if r.status != http.StatusOK {
		t.Fatalf("before: %d %s", r.status, r.body)
	}
	recordFor(t, filepath.Join(g.dir, "audit"), r.header.Get("X-Request-Id")) // its outcome is on disk too
	seg := filepath.Join(g.dir, "audit", "trail-00000001.jsonl")
	records := func() []byte {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.TrimRight(b, "\x00") // the live segment's padding
	}
	before := records()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	// No byte may be written past the records, padding or not.
	limit := syscall.Rlimit{Cur: uint64(len(before)), Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)

	for _, path := range []string{"/v1/bad/good", "/v1/bad/good/1", "/v1/catalog", "/v1/bad/dupkey"} {
		r := get(t, g.url+path, tok)
		expectError(t, r, http.StatusServiceUnavailable, "unavailable")
		assertNoLeak(t, r)
		if strings.Contains(string(r.body), "朝阳区") {
			t.Errorf("%s: data released while the trail is down: %s", path, r.body)
		}
	}
	expectError(t, get(t, g.url+"/v1/bad/good", ""), http.StatusServiceUnavailable, "unavailable")
	if r := get(t, g.url+"/readyz", ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("readyz while the trail is down: %d %s", r.status, r.body)
	}
	if after := records(); !bytes.Equal(after, before) {
		t.Errorf("segment's records changed from %d to %d bytes while writes failed", len(before), len(after))
	}

	restore()
	// Readiness notices the recovery by itself (a probe write), before any
	// request risks the trail, so a load balancer sends traffic back.
	if r := get(t, g.url+"/readyz", ""); r.status != http.StatusOK {
		t.Errorf("readyz after recovery: %d %s", r.status, r.body)
	}
	r = get(t, g.url+"/v1/bad/good", tok)
	if r.status != http.StatusOK {
		t.Fatalf("after the trail is writable again: %d %s", r.status, r.body)
	}
	recordFor(t, filepath.Join(g.dir, "audit"), r.header.Get("X-Request-Id"))
	out, _, err := runCmd(t, "audit", "verify", "--dir", filepath.Join(g.dir, "audit"))
	if err != nil {
		t.Fatalf("verify after recovery: %v %s", err, out)
	}
	// Each release has a decision record and an outcome record.
	if !strings.HasPrefix(out, "ok: 4 records") {
		t.Errorf("verify: %q, want the two successful requests' records only", out)
	}
}
