package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/anonymize/risk"
	"github.com/sluicegw/sluice/policy"
)

// RiskRequest asks how far one caller's view of a dataset singles people
// out.
type RiskRequest struct {
	// Token is the caller's bearer token, validated as the gateway
	// validates it. Either Token or Subject is required.
	Token string
	// Subject describes the caller instead of a token.
	Subject *Principal
	// Purpose and Justification are what the Sluice-Purpose and
	// Sluice-Justification headers would say.
	Purpose       string
	Justification string
	// Dataset is SOURCE/DATASET, e.g. health/visits.
	Dataset string
}

// RiskReport is the re-identification risk of a caller's view of a
// dataset: every record the caller's read decision releases, over every
// page, measured by package risk. It holds counts and field names, never
// a value.
type RiskReport struct {
	Dataset        string          `json:"dataset"`
	Subject        ExplainedCaller `json:"subject"`
	PolicyRevision string          `json:"policy_revision"`
	// Decision is the caller's read decision on the dataset.
	Decision RiskDecision `json:"decision"`
	// Rows are the decision's row filters: the view is the records that
	// pass them.
	Rows []string `json:"rows,omitempty"`
	// Constant are the released fields whose treatment gives every record
	// the same value (redact, null, replace): they single no one out and
	// are left out of the figures.
	Constant []string `json:"constant,omitempty"`
	// The figures, absent when the decision denies.
	*risk.Report
}

// RiskDecision is the assessed caller's read decision.
type RiskDecision struct {
	Allow  bool   `json:"allow"`
	Reason string `json:"reason"`
	// MinK and MinL are the decision's k-anonymity at release, and
	// Withheld the records of the view it suppresses: the figures above
	// are of the view before suppression.
	MinK     int `json:"min_k,omitempty"`
	MinL     int `json:"min_l,omitempty"`
	Withheld int `json:"withheld,omitempty"`
}

// constantOps give every record the same value.
var constantOps = []string{"null", "redact", "replace"}

// Risk reads the whole of the view req's caller would get of a dataset,
// through the policy set in force, and reports its re-identification
// risk. It reads the department as a statistics request does, within the
// dataset's max_records and stats_timeout, and audits nothing: the caller
// is the command line of an officer who holds the configuration. The
// error is an *Error.
func (s *Server) Risk(ctx context.Context, req RiskRequest) (*RiskReport, error) {
	rep, e := s.assessRisk(ctx, s.policies.Current(), newRequestID(), req)
	if e != nil {
		return nil, e
	}
	return rep, nil
}

// assessRisk decides the assessed caller's read of the dataset and, when it is
// allowed, reads every page through the decision's transform into the
// report. requestID is sent to the department with each page.
func (s *Server) assessRisk(ctx context.Context, set *policy.Set, requestID string, req RiskRequest) (*RiskReport, *Error) {
	srcName, dsName, ok := strings.Cut(req.Dataset, "/")
	if !ok || srcName == "" || dsName == "" || strings.Contains(dsName, "/") {
		return nil, errBadRequest("dataset must be SOURCE/DATASET, e.g. health/visits")
	}
	u := &url.URL{Path: "/v1/" + srcName + "/" + dsName}
	r, x, e := s.simulate(ctx, ExplainRequest{Token: req.Token, Subject: req.Subject, Purpose: req.Purpose,
		Justification: req.Justification}, http.MethodGet, u)
	if e != nil {
		return nil, e
	}
	r.SetPathValue("source", srcName)
	r.SetPathValue("dataset", dsName)
	ds, e := s.lookupDataset(r)
	if e != nil {
		return nil, e
	}
	x.ds = ds
	x.ev.Source, x.ev.Dataset = ds.src.cfg.Name, ds.cfg.Name
	rep := &RiskReport{Dataset: req.Dataset, Subject: explainedAs(x, r), PolicyRevision: set.Revision()}
	d, err := set.Decide(ctx, s.input(x, r, "read", ds))
	if err != nil {
		s.log.Error("policy decision failed", "request_id", requestID, "revision", set.Revision(), "error", err)
	}
	rep.Decision = RiskDecision{Allow: d.Allow, Reason: d.Reason}
	if !d.Allow {
		return rep, nil
	}
	if d.Plan == nil {
		return nil, errInternal(fmt.Errorf("risk: an allowing read decision without a plan"))
	}
	rd, fields, constant, e := s.wholeView(x, d, "a risk report")
	if e != nil {
		return nil, e
	}
	a, err := risk.New(fields)
	if err != nil {
		return nil, errInternal(fmt.Errorf("risk fields: %w", err))
	}
	e = s.readPages(ctx, requestID, rd, func(rec map[string]json.RawMessage, unit string) *Error {
		a.AddUnit(rec, unit)
		return nil
	})
	if e != nil {
		return nil, e
	}
	rep.Rows, rep.Constant, rep.Report = d.Plan.RowFilters(), constant, a.Report()
	if d.MinK > 0 {
		rep.Decision.MinK, rep.Decision.MinL, rep.Decision.Withheld = d.MinK, d.MinL, a.Withheld(d.MinK, d.MinL)
	}
	return rep, nil
}

// riskFields are the top-level fields a decision releases, each with its
// declared class and treatment; the fields it releases as a constant are
// listed apart. A field named by nested paths (address.city) is assessed
// as its whole top-level value.
func riskFields(ds *dataset, rules map[string]anonymize.Rule) (fields []risk.Field, constant []string) {
	named := map[string][]string{}
	for path, rule := range rules {
		if rule.Op == "drop" {
			continue
		}
		top, _, _ := strings.Cut(path, ".")
		top = strings.TrimRight(top, "[]")
		named[top] = append(named[top], path)
	}
	for _, top := range slices.Sorted(maps.Keys(named)) {
		paths := slices.Sorted(slices.Values(named[top]))
		if len(paths) == 1 && paths[0] == top && slices.Contains(constantOps, rules[top].Op) {
			constant = append(constant, top)
			continue
		}
		var treatment []string
		for _, p := range paths {
			t := policy.RuleText(rules[p])
			if p != top {
				t = p + " " + t
			}
			treatment = append(treatment, t)
		}
		fields = append(fields, risk.Field{Name: top, Class: risk.Class(ds.cfg.Fields[top].Class), Treatment: strings.Join(treatment, ", ")})
	}
	return fields, constant
}

// riskHTTP serves GET /v1/explain/risk?dataset=SOURCE/DATASET for callers
// the policy lets explain (action "explain"; the shipped policies grant
// it to officers), the assessed caller given as GET /v1/explain takes it:
// the Sluice-Explain-Token header, or ?sub=&roles=&dept=&district=&
// purpose=. It is audited like any request, with the assessed view's
// figures in the record's reason.
//
// The report is charged to nobody. It is not a release of the data to the
// officer in DESIGN's sense: it holds exact counts about the view
// (records, classes, unique records) but no value, no record and no
// field's content, and it takes no filter, so it cannot be narrowed onto
// one person; what it tells, an officer who holds the configuration and
// the departments' credentials could count anyway. It is not a
// statistics release either, and spends no privacy budget.
func (s *Server) riskHTTP(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, "explain")
	set := s.policies.Current()
	if !s.authorize(w, r, x, set, "explain") {
		return
	}
	q := x.params(r)
	caller := explainedCaller(r, q)
	req := RiskRequest{Token: caller.Token, Subject: caller.Subject, Purpose: caller.Purpose,
		Justification: caller.Justification, Dataset: q.Get("dataset")}
	if src, ds, _ := strings.Cut(req.Dataset, "/"); s.sources[src] != nil && s.sources[src].datasets[ds] != nil {
		x.ev.Source, x.ev.Dataset = src, ds // names the gateway serves: safe in clear
	}
	rep, e := s.assessRisk(r.Context(), set, x.id, req)
	if e != nil {
		s.fail(w, r, x, callerRefused(e))
		return
	}
	x.ev.Reason += fmt.Sprintf("; assessed the re-identification risk of %s/%s for %s %v: ", x.ev.Source, x.ev.Dataset,
		rep.Subject.ID, rep.Subject.Roles)
	if rep.Report == nil {
		x.ev.Reason += "read denied"
	} else {
		x.ev.Reason += fmt.Sprintf("%d records, %d unique, min_k %d", rep.Records, rep.Unique, rep.MinK)
	}
	s.answerJSON(w, r, x, rep)
}
