package main

import (
	"context"
	"encoding/json"
	"fmt"
	neturl "net/url"
	"time"
)

// demoGrant is the request the demo starts with approved: the analyst's
// on health/visits, asked by the analyst and approved by steward_health
// through the hub's own routes, so that it is in the trail like any
// other. Its conditions are the analyst's k-anonymous view (policies/
// sluice.rego, "Analysts of the health department"): the visit date to
// the month, the cost to a 2,000-yuan band, no identifier, and k = 5
// patients of at least 3 diagnoses.
var (
	demoGrantRequest = map[string]any{
		"dataset": "health/visits", "fields": []string{"district", "hospital", "diagnosis", "visit_date", "cost"},
		"purpose": "public-health", "legal_basis": "基本医疗卫生与健康促进法: public-health surveillance (demo)",
		"justification": "monthly surveillance of visits by district and hospital",
	}
	demoGrantConditions = map[string]any{
		"fields": map[string]any{"district": "keep", "hospital": "keep", "diagnosis": "keep",
			"visit_date": map[string]any{"op": "generalize", "to": "month"},
			"cost":       map[string]any{"op": "generalize", "to": "bucket", "width": 2000}},
		"max_rows": 1000, "min_k": 5, "min_l": 3,
	}
)

// approveDemoGrant makes the demo's approved grant through the gateway at
// gw, unless an active one of the analyst's department on health/visits
// for public health exists (a demo run before made it).
func approveDemoGrant(ctx context.Context, gw string, tokens map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var grants struct {
		Grants []struct{ Dept, Dataset, Purpose string }
	}
	if err := hubCall(ctx, "GET", gw+"/v1/grants?state=active", tokens["steward_health"], nil, &grants); err != nil {
		return err
	}
	for _, g := range grants.Grants {
		if g.Dept == "health" && g.Dataset == "health/visits" && g.Purpose == "public-health" {
			return nil
		}
	}
	req := map[string]any{"valid_until": time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)}
	for k, v := range demoGrantRequest {
		req[k] = v
	}
	var made struct{ ID string }
	if err := hubCall(ctx, "POST", gw+"/v1/requests", tokens["analyst"], req, &made); err != nil {
		return err
	}
	decision := map[string]any{"decision": "approve", "reason": "the demo's standing surveillance grant",
		"conditions": demoGrantConditions}
	return hubCall(ctx, "POST", gw+"/v1/requests/"+made.ID+"/decision", tokens["steward_health"], decision, nil)
}

// hubCall sends body (JSON) to the gateway at url as token and decodes a
// 2xx answer into out (nil: none).
func hubCall(ctx context.Context, method, url, token string, body, out any) error {
	u, err := neturl.Parse(url)
	if err != nil {
		return err
	}
	path := u.RequestURI()
	u.Path, u.RawQuery = "", ""
	b, err := (&hubClient{base: u.String(), token: token}).call(ctx, method, path, body)
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// waitOpenData waits, up to 30s, until the gateway at gw publishes n
// open tables, so that the demo's printed links work at once.
func waitOpenData(ctx context.Context, gw string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var list struct{ Releases []struct{ ID string } }
		err := hubCall(ctx, "GET", gw+"/open/v1/releases", "", nil, &list)
		if err == nil && len(list.Releases) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("open data: %d of %d tables published: %v", len(list.Releases), n, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
