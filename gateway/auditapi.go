package gateway

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/audit"
)

// The auditor API answers only callers the policy allows the "audit"
// action; each of its requests is itself audited.

// auditQuery reads the search filters of an auditor API request.
func auditSearchQuery(q map[string][]string) (audit.Query, *Error) {
	var aq audit.Query
	get := func(k string) string {
		if vs := q[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	for k, vs := range q {
		switch k {
		case "subject", "dataset", "action", "decision", "status", "request_id", "object", "since", "until", "limit", "cursor", "order":
		default:
			return aq, errBadRequest("unknown parameter " + strconv.Quote(k))
		}
		if len(vs) != 1 {
			return aq, errBadRequest("parameter " + strconv.Quote(k) + " given more than once")
		}
	}
	aq.Subject, aq.Action, aq.RequestID, aq.Cursor = get("subject"), get("action"), get("request_id"), get("cursor")
	aq.Object = get("object")
	if ds := get("dataset"); ds != "" {
		src, name, ok := strings.Cut(ds, "/")
		if !ok || src == "" || name == "" {
			return aq, errBadRequest("dataset must be SOURCE/DATASET")
		}
		aq.Source, aq.Dataset = src, name
	}
	switch d := get("decision"); d {
	case "", "allow", "deny", "error":
		aq.Decision = d
	default:
		return aq, errBadRequest("decision must be allow, deny or error")
	}
	if v := get("status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 599 {
			return aq, errBadRequest("status must be an HTTP status code")
		}
		aq.Status = n
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &aq.Since}, {"until", &aq.Until}} {
		if v := get(t.name); v != "" {
			ts, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return aq, errBadRequest(t.name + " must be an RFC 3339 time")
			}
			*t.dst = ts
		}
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxPageSize {
			return aq, errBadRequest("limit must be between 1 and " + strconv.Itoa(audit.MaxPageSize))
		}
		aq.Limit = n
	}
	switch get("order") {
	case "", "newest":
		aq.Newest = true
	case "oldest":
	default:
		return aq, errBadRequest("order must be newest or oldest")
	}
	return aq, nil
}

// auditorEndpoint authenticates and authorises an auditor API request, runs
// answer, audits the request and only then writes the answer.
func (s *Server) auditorEndpoint(answer func(ctx context.Context, r *http.Request, dir string) (any, *Error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		x := s.begin(w, r, "audit")
		if !s.authorize(w, r, x, s.policies.Current(), "audit") {
			return
		}
		v, e := answer(r.Context(), r, s.cfg.Path(s.cfg.Audit.Dir))
		if e != nil {
			s.fail(w, r, x, e)
			return
		}
		if p, ok := v.(*eventsPage); ok && p.NextCursor != "" {
			w.Header().Set("Link", linkTo(r.URL.Path, r.URL.Query(), "cursor", p.NextCursor, "next"))
		}
		s.answerJSON(w, r, x, v)
	}
}

// auditEvents is GET /audit/v1/events: one page of matching records,
// newest first unless order=oldest.
func (s *Server) auditEvents(ctx context.Context, r *http.Request, dir string) (any, *Error) {
	q, e := auditSearchQuery(r.URL.Query())
	if e != nil {
		return nil, e
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	page, err := audit.Search(ctx, dir, q)
	if errors.Is(err, audit.ErrBadCursor) {
		return nil, errBadRequest("cursor is not one this search returned")
	}
	if errors.Is(err, audit.ErrBadQuery) {
		return nil, errBadRequest(strings.TrimPrefix(err.Error(), "audit: "))
	}
	if err != nil {
		return nil, errInternal(err)
	}
	return &eventsPage{Events: page.Records, NextCursor: page.Next}, nil
}

// eventsPage is one page of an audit search; its next page is linked
// (Link: rel="next") as well as named.
type eventsPage struct {
	Events     []audit.Record `json:"events"`
	NextCursor string         `json:"next_cursor"`
}

// auditVerify is GET /audit/v1/verify: the whole trail's integrity.
func (s *Server) auditVerify(ctx context.Context, r *http.Request, dir string) (any, *Error) {
	if len(r.URL.Query()) > 0 {
		return nil, errBadRequest("verify takes no parameters")
	}
	rep, err := audit.Verify(ctx, dir, s.verifyOptions())
	if err != nil {
		return nil, errInternal(err)
	}
	return rep, nil
}

// summaryWindow is the default span of GET /audit/v1/summary.
const summaryWindow = 48 * time.Hour

// epsilonSpent is one consumer's privacy loss on one dataset.
type epsilonSpent struct {
	Subject string  `json:"subject"`
	Dataset string  `json:"dataset"`
	Spent   float64 `json:"spent"`
	Cap     float64 `json:"cap,omitempty"`
	Charges int     `json:"charges"`
}

// auditSummary is GET /audit/v1/summary: accesses and denials per hour and
// per consumer and dataset, and ε spent per consumer and dataset against
// its cap, over [since, until) (default: the last 48 hours).
func (s *Server) auditSummary(ctx context.Context, r *http.Request, dir string) (any, *Error) {
	q, e := auditSearchQuery(r.URL.Query())
	if e != nil {
		return nil, e
	}
	if q.Since.IsZero() {
		q.Since = s.now().Add(-summaryWindow).Truncate(time.Hour)
	}
	sum, err := audit.Summarize(ctx, dir, q, time.Hour)
	if err != nil {
		return nil, errInternal(err)
	}
	type hour struct {
		Hour time.Time `json:"hour"`
		audit.Counts
	}
	hours := make([]hour, len(sum.Buckets))
	for i, b := range sum.Buckets {
		hours[i] = hour{b.Start, b.Counts}
	}
	type denied struct {
		Subject string `json:"subject"`
		Count   uint64 `json:"count"`
	}
	perSubject := map[string]uint64{}
	for _, c := range sum.Consumers {
		perSubject[c.Subject] += c.Deny
	}
	var den []denied
	for subj, n := range perSubject {
		if n > 0 {
			den = append(den, denied{subj, n})
		}
	}
	slices.SortFunc(den, func(a, b denied) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Subject, b.Subject)) })

	eps := map[[2]string]*epsilonSpent{}
	sq := q
	sq.Action, sq.Decision, sq.Newest = "stats", "allow", false
	for rec, err := range audit.Scan(ctx, dir, sq) {
		if err != nil {
			return nil, errInternal(err)
		}
		o := rec.Obligations
		if o == nil || o.EpsilonSpent == 0 {
			continue
		}
		k := [2]string{rec.Subject, rec.Source + "/" + rec.Dataset}
		es := eps[k]
		if es == nil {
			es = &epsilonSpent{Subject: k[0], Dataset: k[1]}
			eps[k] = es
		}
		es.Spent += o.EpsilonSpent
		es.Charges++
		if o.ConsumerBudget > 0 {
			es.Cap = o.ConsumerBudget
		}
	}
	epsList := make([]*epsilonSpent, 0, len(eps))
	for _, v := range eps {
		epsList = append(epsList, v)
	}
	slices.SortFunc(epsList, func(a, b *epsilonSpent) int {
		return cmp.Or(cmp.Compare(b.Spent, a.Spent), cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Dataset, b.Dataset))
	})
	return map[string]any{
		"since": q.Since, "until": q.Until, "totals": sum.Counts,
		"hours": hours, "consumers": sum.Consumers, "denied": den, "epsilon": epsList,
	}, nil
}

// verifyOptions checks the trail against the configured checkpoint key and
// witness, as `sluice audit verify` does with the same configuration.
func (s *Server) verifyOptions() audit.VerifyOptions {
	var opts audit.VerifyOptions
	a := s.cfg.Audit
	if a.CheckpointKeyFile != "" {
		if k, err := audit.ReadPrivateKey(s.cfg.Path(a.CheckpointKeyFile)); err == nil {
			opts.Keys = append(opts.Keys, k.Public().(ed25519.PublicKey))
		} else {
			s.log.Error("reading the checkpoint key for verify", "error", err)
		}
	}
	if a.WitnessFile != "" {
		opts.Witness = audit.NewFileWitness(s.cfg.Path(a.WitnessFile))
	}
	return opts
}
