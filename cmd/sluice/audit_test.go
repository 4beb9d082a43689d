package main

import (
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
	if r := get(t, g.url+"/v1/bad/good", tok); r.status != http.StatusOK {
		t.Fatalf("before: %d %s", r.status, r.body)
	}
	seg := filepath.Join(g.dir, "audit", "trail-00000001.jsonl")
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limit := syscall.Rlimit{Cur: uint64(st.Size()), Max: old.Max}
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
	if after, _ := os.Stat(seg); after.Size() != st.Size() {
		t.Errorf("segment grew from %d to %d bytes while writes failed", st.Size(), after.Size())
	}

	restore()
	// Readiness notices the recovery by itself (a probe write), before any
	// request risks the trail, so a load balancer sends traffic back.
	if r := get(t, g.url+"/readyz", ""); r.status != http.StatusOK {
		t.Errorf("readyz after recovery: %d %s", r.status, r.body)
	}
	if r := get(t, g.url+"/v1/bad/good", tok); r.status != http.StatusOK {
		t.Fatalf("after the trail is writable again: %d %s", r.status, r.body)
	}
	out, _, err := runCmd(t, "audit", "verify", "--dir", filepath.Join(g.dir, "audit"))
	if err != nil {
		t.Fatalf("verify after recovery: %v %s", err, out)
	}
	if !strings.HasPrefix(out, "ok: 2 records") {
		t.Errorf("verify: %q, want the two successful requests only", out)
	}
}
