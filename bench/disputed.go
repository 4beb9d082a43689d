package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// disputeEvery is how many of the page's records there are to each one
// put under objection in (g): 5 of 20.
const disputeEvery = 4

// dispute puts records of the workload's page under open objections at
// the Sluice at base, the way the hub does it: the researcher (another
// department) is granted visit ids by the health department's steward,
// receives the page, and objects to every disputeEvery-th record. It
// returns how many records of the analyst's page are then marked.
func (l *lab) dispute(ctx context.Context, base string) (int, error) {
	researcher, steward := l.tokens["researcher"], l.tokens["steward_health"]
	if researcher == "" || steward == "" {
		return 0, errors.New("demo.json has no researcher or health steward token")
	}
	var req struct{ ID string }
	err := call(ctx, "POST", base+"/v1/requests", researcher, map[string]any{
		"dataset": "health/visits", "fields": []string{"visit_id", "district"}, "purpose": "research",
		"legal_basis": "Statistics Law art. 7", "justification": "bench harness: records under objection",
		"valid_until": "2099-01-01T00:00:00Z"}, http.StatusCreated, &req)
	if err != nil {
		return 0, fmt.Errorf("sharing request: %w", err)
	}
	err = call(ctx, "POST", base+"/v1/requests/"+req.ID+"/decision", steward, map[string]any{
		"decision": "approve", "conditions": map[string]any{"fields": map[string]string{"visit_id": "keep", "district": "keep"}}},
		http.StatusOK, nil)
	if err != nil {
		return 0, fmt.Errorf("approving the sharing request: %w", err)
	}
	var page struct {
		Items []struct {
			VisitID string `json:"visit_id"`
		} `json:"items"`
	}
	if err := call(ctx, "GET", base+"/v1/health/visits?page_size=20", researcher, nil, http.StatusOK, &page); err != nil {
		return 0, fmt.Errorf("the researcher's release: %w", err)
	}
	filed := 0
	for i, it := range page.Items {
		if i%disputeEvery != 0 {
			continue
		}
		err := call(ctx, "POST", base+"/v1/objections", researcher, map[string]any{
			"dataset": "health/visits", "record_id": it.VisitID, "field": "diagnosis",
			"claim": "bench harness: the diagnosis is disputed"}, http.StatusCreated, nil)
		if err != nil {
			return 0, fmt.Errorf("objection to %s: %w", it.VisitID, err)
		}
		filed++
	}
	var marked struct {
		Disputed []json.RawMessage `json:"disputed"`
	}
	if err := call(ctx, "GET", base+"/v1/health/visits?page_size=20", l.analyst, nil, http.StatusOK, &marked); err != nil {
		return 0, err
	}
	if filed == 0 || len(marked.Disputed) == 0 {
		return 0, fmt.Errorf("%d objections filed, %d records of the analyst's page marked", filed, len(marked.Disputed))
	}
	return len(marked.Disputed), nil
}

// call sends a JSON request with a bearer token, wants the status, and
// decodes the answer into out (when not nil).
func call(ctx context.Context, method, url, token string, in any, status int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != status {
		return fmt.Errorf("%s %s: status %d, want %d: %.300s", method, url, resp.StatusCode, status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// checkMarked checks the analyst's page as checkRecords does, and that n
// of its records are marked disputed, each by its position and objection.
func checkMarked(n int) func([]byte) error {
	released := checkRecords(true)
	return func(body []byte) error {
		if err := released(body); err != nil {
			return err
		}
		var page struct {
			Items    []json.RawMessage `json:"items"`
			Disputed []struct {
				Item      *int   `json:"item"`
				Objection string `json:"objection"`
			} `json:"disputed"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return err
		}
		if len(page.Disputed) != n {
			return fmt.Errorf("%d records marked disputed, want %d", len(page.Disputed), n)
		}
		for _, d := range page.Disputed {
			if d.Item == nil || *d.Item < 0 || *d.Item >= len(page.Items) || d.Objection == "" {
				return fmt.Errorf("mark %+v does not name a released record and its objection", d)
			}
		}
		return nil
	}
}
