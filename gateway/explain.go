package gateway

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/policy"
)

// ExplainTokenHeader carries, on GET /v1/explain, the token of the caller
// whose request is to be explained.
const ExplainTokenHeader = "Sluice-Explain-Token"

// ExplainRequest is a request whose outcome is to be explained.
type ExplainRequest struct {
	// Token is the caller's bearer token, validated as the gateway
	// validates it. Either Token or Subject is required.
	Token string
	// Subject describes the caller instead of a token.
	Subject *Principal
	// Purpose and Justification are what the Sluice-Purpose and
	// Sluice-Justification headers would say.
	Purpose       string
	Justification string
	// Method is GET when empty.
	Method string
	// Target is the path and query asked for, e.g.
	// /v1/health/visits?page_size=3.
	Target string
}

// Explanation is what one request would get, worked out from the policy
// set in force and the gateway's configuration without contacting any
// upstream. It is produced by the same code the request pipeline runs, so
// what it says is what the gateway does.
type Explanation struct {
	Method  string          `json:"method"`
	Target  string          `json:"target"`
	Subject ExplainedCaller `json:"subject"`
	// Action is read, stats or catalog.
	Action  string `json:"action,omitempty"`
	Source  string `json:"source,omitempty"`
	Dataset string `json:"dataset,omitempty"`
	// PolicyRevision is the revision that decided.
	PolicyRevision string `json:"policy_revision"`
	// Decision is the policy's: allow or deny; "" when the request would
	// be refused before the policy is asked (no such route or dataset).
	Decision string `json:"decision,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Served is true when the gateway would fetch from the upstream and
	// release; Status and Error then say nothing went wrong.
	Served bool `json:"served"`
	// Status is the HTTP status the gateway would answer with before the
	// upstream is contacted (200: it would fetch and release).
	Status int `json:"status"`
	// Error is the error the caller would get when not served.
	Error *ExplainedError `json:"error,omitempty"`
	// Fields are the dataset's declared fields and those the decision
	// names, each with the treatment the caller gets ("drop": not
	// released).
	Fields []fieldEntry `json:"fields,omitempty"`
	// Rows are the row filters every released record must pass.
	Rows []string `json:"rows,omitempty"`
	// Params are the query parameters the decision allows; Forwarded are
	// those that would reach the upstream for this request (row filters
	// pushed down included).
	Params    []string `json:"params,omitempty"`
	Forwarded []string `json:"forwarded,omitempty"`
	// MaxRows caps released records; 0 is no cap.
	MaxRows int `json:"max_rows,omitempty"`
	// Grant is the sharing grant the read would be made under; "" for
	// none.
	Grant string `json:"grant,omitempty"`
	// MinK and MinL are the read's k-anonymity at release: records of
	// classes of fewer people, or fewer distinct sensitive values, of the
	// caller's whole view are suppressed.
	MinK int `json:"min_k,omitempty"`
	MinL int `json:"min_l,omitempty"`
	// Lookup is true for a lookup by id that is allowed.
	Lookup bool `json:"lookup,omitempty"`
	// Stats are the statistics limits of a stats request's decision.
	Stats *policy.StatsLimits `json:"stats,omitempty"`
	// Flags are the audit markers the decision sets (e.g. break_glass).
	Flags []string `json:"flags,omitempty"`
	// Datasets, for a catalog request, are the datasets it would list.
	Datasets []string `json:"datasets,omitempty"`
	// Shadow is the shadow policy set's decision on the same request,
	// when one is configured.
	Shadow *ExplainedShadow `json:"shadow,omitempty"`
}

// ExplainedCaller is the caller as the policy sees it.
type ExplainedCaller struct {
	ID            string   `json:"id"`
	Roles         []string `json:"roles"`
	Dept          string   `json:"dept,omitempty"`
	District      string   `json:"district,omitempty"`
	Purpose       string   `json:"purpose,omitempty"`
	Justification string   `json:"justification,omitempty"`
}

// ExplainedError is the error a caller would get.
type ExplainedError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ExplainedShadow is how the shadow policy set would decide.
type ExplainedShadow struct {
	Revision    string   `json:"revision"`
	Decision    string   `json:"decision"`
	Differences []string `json:"differences"`
}

// Explain works out what req would get from the policy set in force, one
// snapshot of it, without contacting any upstream. The error is an
// *Error: unauthenticated for a token the gateway would refuse, or
// bad_request for a target that is not a path.
func (s *Server) Explain(ctx context.Context, req ExplainRequest) (*Explanation, error) {
	var shadow *policy.Set
	if s.shadow != nil {
		shadow = s.shadow.Current()
	}
	ex, e := s.explain(ctx, s.policies.Current(), shadow, req)
	if e != nil {
		return nil, e
	}
	return ex, nil
}

func (s *Server) explain(ctx context.Context, set, shadow *policy.Set, req ExplainRequest) (*Explanation, *Error) {
	method := cmpOr(strings.ToUpper(req.Method), http.MethodGet)
	u, err := url.ParseRequestURI(req.Target)
	if err != nil || !strings.HasPrefix(req.Target, "/") {
		return nil, errBadRequest("the request to explain must be a path such as /v1/health/visits?page_size=3")
	}
	r, x, e := s.simulate(ctx, req, method, u)
	if e != nil {
		return nil, e
	}
	ex := &Explanation{Method: method, Target: req.Target, PolicyRevision: set.Revision(), Subject: explainedAs(x, r)}
	if method != http.MethodGet && method != http.MethodHead {
		return ex.refuse(errMethod()), nil
	}
	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	switch {
	case u.Path == "/v1/catalog":
		s.explainCatalog(ctx, set, x, r, ex)
	case len(segs) >= 3 && len(segs) <= 4 && segs[0] == "v1" && !slices.Contains(segs, ""):
		r.SetPathValue("source", segs[1])
		r.SetPathValue("dataset", segs[2])
		ds, e := s.lookupDataset(r)
		if e != nil {
			return ex.refuse(e), nil
		}
		ex.Source, ex.Dataset = ds.src.cfg.Name, ds.cfg.Name
		if len(segs) == 4 && segs[3] == "stats" {
			s.explainStats(ctx, set, shadow, x, r, ds, ex)
			break
		}
		if len(segs) == 4 {
			r.SetPathValue("id", segs[3])
		}
		s.explainRead(ctx, set, shadow, x, r, ds, ex)
	default:
		return ex.refuse(errNotFound("no such route")), nil
	}
	return ex, nil
}

// simulate builds the request an explanation works through, as req's
// caller would send it (its purpose and justification headers included),
// and its exchange, whose principal is that caller: from its token,
// validated as the gateway validates it (an *Error unauthenticated when
// it would be refused), or as req describes it. The exchange takes
// nothing from the caller's rate limit allowance.
func (s *Server) simulate(ctx context.Context, req ExplainRequest, method string, u *url.URL) (*http.Request, *exchange, *Error) {
	r := (&http.Request{Method: method, URL: u, Header: http.Header{}, RemoteAddr: "explain"}).WithContext(ctx)
	if req.Purpose != "" {
		r.Header.Set(PurposeHeader, req.Purpose)
	}
	if req.Justification != "" {
		r.Header.Set(JustificationHeader, req.Justification)
	}
	x := &exchange{id: "explain", route: "explain", start: s.now(), simulated: true}
	x.lap = x.start
	switch {
	case req.Subject != nil:
		x.principal = req.Subject
		x.purpose = cmpOr(req.Purpose, req.Subject.Purpose)
	case req.Token != "":
		r.Header.Set("Authorization", "Bearer "+req.Token)
		if e := s.authenticate(x, r); e != nil {
			return nil, nil, e
		}
	default:
		return nil, nil, errBadRequest("say whose request to explain: a token, or a subject")
	}
	return r, x, nil
}

// explainedAs is the caller of a simulated exchange as the policy sees it.
func explainedAs(x *exchange, r *http.Request) ExplainedCaller {
	p := x.principal
	return ExplainedCaller{ID: p.Subject, Roles: p.subject().Roles, Dept: p.Dept, District: p.District,
		Purpose: x.purpose, Justification: justification(r)}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// refuse records the error the caller would get.
func (ex *Explanation) refuse(e *Error) *Explanation {
	ex.Served, ex.Status = false, e.Status
	ex.Error = &ExplainedError{Code: e.Code, Message: e.Msg}
	return ex
}

// decide is one decision of an explanation, with the shadow set's beside
// it when there is one.
func (ex *Explanation) decide(ctx context.Context, set, shadow *policy.Set, in *policy.Input) *policy.Decision {
	d, _ := set.Decide(ctx, in)
	ex.Decision, ex.Reason, ex.Flags = "deny", d.Reason, d.Flags
	if d.Allow {
		ex.Decision = "allow"
	}
	if shadow != nil {
		sd, _ := shadow.Decide(ctx, in)
		ex.Shadow = &ExplainedShadow{Revision: shadow.Revision(), Decision: "deny", Differences: policy.Diff(d, sd)}
		if sd.Allow {
			ex.Shadow.Decision = "allow"
		}
		if ex.Shadow.Differences == nil {
			ex.Shadow.Differences = []string{}
		}
	}
	return d
}

// explainRead follows records(): decide, check parameters and lookups,
// and list what would be released.
func (s *Server) explainRead(ctx context.Context, set, shadow *policy.Set, x *exchange, r *http.Request, ds *dataset, ex *Explanation) {
	ex.Action = "read"
	d := ex.decide(ctx, set, shadow, s.input(x, r, "read", ds))
	if !d.Allow {
		ex.refuse(errForbidden(denyMessage(d)))
		return
	}
	q, _, e := upstreamQuery(x.params(r), ds, d)
	ex.Fields = releasedFields(ds, d.Fields)
	ex.Rows, ex.Params, ex.Forwarded, ex.MaxRows = d.Plan.RowFilters(), d.Params, sortedKeys(q), d.MaxRows
	ex.MinK, ex.MinL, ex.Grant = d.MinK, d.MinL, d.Grant
	if e != nil {
		ex.refuse(e)
		return
	}
	if id := r.PathValue("id"); id != "" {
		if e := lookupAllowed(ds, d, id); e != nil {
			ex.refuse(e)
			return
		}
		ex.Lookup = true
	}
	ex.Served, ex.Status = true, http.StatusOK
}

// explainStats follows stats(): parse the query, decide, and plan the
// release against the decision's limits and the dataset's configuration,
// without reading the upstream or spending any budget.
func (s *Server) explainStats(ctx context.Context, set, shadow *policy.Set, x *exchange, r *http.Request, ds *dataset, ex *Explanation) {
	ex.Action = "stats"
	req, e := parseStatsQuery(x.params(r))
	if e != nil {
		ex.refuse(e)
		return
	}
	in := s.input(x, r, "stats", ds)
	in.Stats = req.policyQuery()
	d := ex.decide(ctx, set, shadow, in)
	if !d.Allow || d.Stats == nil {
		ex.refuse(errForbidden(denyMessage(d)))
		return
	}
	ex.Stats, ex.Params, ex.Rows = d.Stats, d.Params, d.Plan.RowFilters()
	job, e := s.planStats(ds, d, req)
	if e != nil {
		ex.refuse(e)
		return
	}
	ex.Forwarded = sortedKeys(job.query)
	ex.Served, ex.Status = true, http.StatusOK
}

// explainCatalog lists the datasets the catalog would show.
func (s *Server) explainCatalog(ctx context.Context, set *policy.Set, x *exchange, r *http.Request, ex *Explanation) {
	ex.Action = "catalog"
	for _, srcName := range slices.Sorted(maps.Keys(s.sources)) {
		src := s.sources[srcName]
		for _, dsName := range slices.Sorted(maps.Keys(src.datasets)) {
			if d, _ := set.Decide(ctx, s.input(x, r, "catalog", src.datasets[dsName])); d.Allow {
				ex.Datasets = append(ex.Datasets, srcName+"/"+dsName)
			}
		}
	}
	ex.Decision, ex.Served, ex.Status = "allow", true, http.StatusOK
}

// releasedFields lists the dataset's declared fields and the fields a
// decision names, each with its treatment ("drop" for those not named),
// as the catalog shows them.
func releasedFields(ds *dataset, rules map[string]anonymize.Rule) []fieldEntry {
	names := map[string]bool{}
	for n := range ds.cfg.Fields {
		names[n] = true
	}
	for n := range rules {
		names[n] = true
	}
	out := make([]fieldEntry, 0, len(names))
	for _, n := range slices.Sorted(maps.Keys(names)) {
		f := fieldEntry{Name: n, Type: ds.cfg.Fields[n].Type, Level: ds.cfg.Fields[n].Level, Treatment: anonymize.Rule{Op: "drop"}}
		if rule, ok := rules[n]; ok {
			f.Treatment = rule
		}
		out = append(out, f)
	}
	return out
}

// explainHTTP serves GET /v1/explain for callers the policy lets explain
// (action "explain"; the shipped policies grant it to officers). The
// request to explain is ?path=/v1/...&method=GET; the caller is the token
// in the Sluice-Explain-Token header, or described by ?sub=&roles=a,b&
// dept=&district=&purpose=&justification=. It is audited like any request.
func (s *Server) explainHTTP(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, "explain")
	set := s.policies.Current()
	if !s.authorize(w, r, x, set, "explain") {
		return
	}
	var shadow *policy.Set
	if s.shadow != nil {
		shadow = s.shadow.Current()
	}
	q := x.params(r)
	req := explainedCaller(r, q)
	req.Method, req.Target = q.Get("method"), q.Get("path")
	ex, e := s.explain(r.Context(), set, shadow, req)
	if e != nil {
		s.fail(w, r, x, callerRefused(e))
		return
	}
	x.ev.Reason += fmt.Sprintf("; explained %s %s for %s %v: status %d", ex.Method, s.auditPath(explainedPath(ex.Target)),
		ex.Subject.ID, ex.Subject.Roles, ex.Status)
	s.answerJSON(w, r, x, ex)
}

// explainedCaller reads, from an officer's request, whose request is to
// be explained: the token in the Sluice-Explain-Token header, or the
// caller described by ?sub=&roles=a,b&dept=&district=, with the
// ?purpose= and ?justification= it would state.
func explainedCaller(r *http.Request, q url.Values) ExplainRequest {
	req := ExplainRequest{Token: r.Header.Get(ExplainTokenHeader), Purpose: q.Get("purpose"), Justification: q.Get("justification")}
	if req.Token == "" && q.Get("sub") != "" {
		p := &Principal{Subject: q.Get("sub"), Dept: q.Get("dept"), District: q.Get("district"), Claims: map[string]any{}}
		for _, role := range strings.Split(q.Get("roles"), ",") {
			if role = strings.TrimSpace(role); role != "" {
				p.Roles = append(p.Roles, role)
			}
		}
		req.Subject = p
	}
	return req
}

// callerRefused is the error an officer gets when the token of the
// caller to explain is refused: the officer is authenticated, that token
// is not, and the officer's request is a bad one.
func callerRefused(e *Error) *Error {
	if e.Status == http.StatusUnauthorized {
		return errBadRequest("the token to explain is not accepted: " + e.Msg)
	}
	return e
}

// explainedPath is the path part of an explained target: its query values
// would be personal data in the audit trail.
func explainedPath(target string) string {
	p, _, _ := strings.Cut(target, "?")
	return p
}
