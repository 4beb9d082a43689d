package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDemoPublishesOpenData: the demo publishes its three open tables
// without a token, charges them to the residents' open allocation once,
// and links the page from its printed output.
func TestDemoPublishesOpenData(t *testing.T) {
	d := startDemo(t, t.TempDir())
	get := func(path string) (int, []byte) {
		resp, err := http.Get(d.manifest.Gateway + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	var list struct {
		Releases []struct {
			ID      string  `json:"id"`
			Epsilon float64 `json:"epsilon"`
			Current bool    `json:"current"`
		} `json:"releases"`
	}
	waitFor(t, d.proc, func() bool {
		code, b := get("/open/v1/releases")
		return code == http.StatusOK && json.Unmarshal(b, &list) == nil && len(list.Releases) == 3
	})
	for _, r := range list.Releases {
		if want := map[string]float64{"allowance-by-district": 0.4}[r.ID]; !r.Current || r.Epsilon != max(want, 0.2) {
			t.Errorf("release %+v", r)
		}
		for _, suffix := range []string{"", ".csv"} {
			if code, b := get("/open/v1/releases/" + r.ID + suffix); code != http.StatusOK || len(b) == 0 {
				t.Errorf("%s%s: %d", r.ID, suffix, code)
			}
		}
	}
	var ledger struct {
		Allocations []struct {
			Population   string  `json:"population"`
			EpsilonCap   float64 `json:"epsilon_cap"`
			EpsilonSpent float64 `json:"epsilon_spent"`
		} `json:"allocations"`
	}
	if code, b := get("/open/v1/ledger"); code != http.StatusOK || json.Unmarshal(b, &ledger) != nil || len(ledger.Allocations) != 1 {
		t.Fatalf("ledger: %d %s", code, b)
	}
	if a := ledger.Allocations[0]; a.Population != "residents" || a.EpsilonCap != 10 || a.EpsilonSpent < 0.8-1e-9 || a.EpsilonSpent > 0.8+1e-9 {
		t.Errorf("ledger %+v, want ε 0.8 of the residents' 10 spent", a)
	}
	waitFor(t, d.proc, func() bool { return strings.Contains(d.stdout.String(), "/open/") })
	if !strings.Contains(d.stdout.String(), d.manifest.Gateway+"/open/") {
		t.Errorf("the demo's output does not link the open data page:\n%s", d.stdout.String())
	}
}
