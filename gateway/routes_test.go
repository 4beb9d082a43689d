package gateway

import (
	"maps"
	"slices"
	"testing"
)

// TestTheTrailKeepsInClearOnlyRouteWordsAndDeclaredNames: the words of
// the paths the trail keeps in clear are derived from the routes, so a new
// route needs no list kept by hand, and nothing else slips into that set:
// exactly the literal segments of the patterns served, plus the sources
// and datasets of the configuration. Anything else in a path (an id, a
// typo, a probe) is kept as its keyed hash.
func TestTheTrailKeepsInClearOnlyRouteWordsAndDeclaredNames(t *testing.T) {
	g := newTestGateway(t, &orderAudit{}, serveItems)
	mux := g.srv.mux()
	for _, w := range []string{"v1", "catalog", "explain", "risk", "stats", "audit", "events", "verify", "summary",
		"healthz", "readyz", "metrics", "admin", "revocations", "requests", "grants", "demands", "decision", "revoke"} {
		if !mux.words[w] {
			t.Errorf("route word %q is not among the words of the patterns served %v", w, mux.patterns)
		}
	}
	want := maps.Clone(mux.words)
	want["health"], want["visits"] = true, true
	if got := g.srv.known; !maps.Equal(got, want) {
		t.Errorf("words in clear %v,\nwant %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for path, audited := range map[string]string{
		"/v1/requests/req_abc/decision":        "/v1/requests/" + g.srv.hasher.Sum("req_abc") + "/decision",
		"/v1/health/visits/110101199003077777": "/v1/health/visits/" + g.srv.hasher.Sum("110101199003077777"),
		"/v1/zzz/visits":                       "/v1/" + g.srv.hasher.Sum("zzz") + "/visits",
	} {
		if got := g.srv.auditPath(path); got != audited {
			t.Errorf("auditPath(%s) = %s, want %s", path, got, audited)
		}
	}
}
