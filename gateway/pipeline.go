package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/anonymize/risk"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
)

// PurposeHeader states the caller's purpose; it overrides the token's
// purpose claim.
const PurposeHeader = "Sluice-Purpose"

// auditTimeout bounds the wait for the trail; it does not depend on the
// caller staying connected, so a departing caller is still audited.
const auditTimeout = 10 * time.Second

// exchange is one request on its way through the pipeline.
type exchange struct {
	id        string
	route     string // the metrics label: read, stats, catalog, unknown, ...
	start     time.Time
	lap       time.Time // end of the previous observed stage
	ev        audit.Event
	principal *Principal
	purpose   string
	ds        *dataset
	decision  *policy.Decision
	target    *url.URL
	lookup    bool // a /{id} request
	shadow    *shadowState
	shape     anonymize.Shape
	query     url.Values // the request's query, parsed once by params
	queryErr  error      // the query is malformed: the request is refused
	// decided is a proxied release's decision record, queued before the
	// upstream is asked; the release waits for it to be durable.
	decided audit.Pending
	// kTable is the class table of the view a min_k decision releases;
	// nil without min_k.
	kTable *risk.Table
	// simulated marks the exchange an explanation works through: it
	// takes nothing from the caller's rate limit allowance.
	simulated bool
	// links are a page of records' neighbours; nil for a lookup.
	links *pageLinks
}

type exchangeKey struct{}

// params returns the query of r, the request the exchange is about,
// parsing it on the first call only: the audit record, the policy input,
// the upstream query and a statistics request's parameters all read it.
// Nobody may modify it. A malformed query (a ';' separator, a bad
// %-escape) is not read in part: url.Values would drop what it cannot
// parse, and the policy, the trail and the department would each see
// less than the caller sent; queryErr refuses it instead.
func (x *exchange) params(r *http.Request) url.Values {
	if x.query == nil {
		x.query, x.queryErr = url.ParseQuery(r.URL.RawQuery)
		if x.queryErr == nil {
			x.queryErr = checkUTF8(x.query)
		}
		if x.queryErr != nil {
			x.query = url.Values{}
		}
	}
	return x.query
}

// env is what a release's operators know of it: the gateway's keys, who
// receives the records (for the pseudonyms' scopes), the dataset and the
// clock.
func (s *Server) env(x *exchange) *anonymize.Env {
	return &anonymize.Env{Keys: s.keys, Issuer: x.principal.Issuer, Org: x.principal.Org, Consumer: x.principal.Subject,
		Purpose: x.purpose, Dataset: x.ev.Source + "/" + x.ev.Dataset, Now: s.now}
}

// errQueryUTF8 refuses a query whose unescaped text is not UTF-8.
var errQueryUTF8 = errors.New("the query is not UTF-8")

func checkUTF8(q url.Values) error {
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return errQueryUTF8
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return errQueryUTF8
			}
		}
	}
	return nil
}

func (s *Server) begin(w http.ResponseWriter, r *http.Request, action string) *exchange {
	x := &exchange{id: newRequestID(), route: action, start: s.now()}
	x.lap = x.start
	w.Header().Set("X-Request-Id", x.id)
	x.ev = audit.Event{
		Time:      x.start.UTC(),
		RequestID: x.id,
		Client:    clientIP(r),
		Action:    action,
		Method:    r.Method,
		Path:      s.auditPath(r.URL.Path),
		Query:     s.auditQuery(x.params(r)),
	}
	if x.queryErr != nil {
		x.ev.Query = map[string][]string{"malformed_query": {s.hasher.Sum(r.URL.RawQuery)}}
	}
	if ref, ok := r.Context().Value(exchangeRefKey{}).(*exchangeRef); ok {
		ref.x = x
	}
	return x
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate admits the caller of any route: a well-formed request
// from a valid, unrevoked token within its rate limit. It records who the
// caller is.
func (s *Server) authenticate(x *exchange, r *http.Request) *Error {
	if x.queryErr != nil {
		return errBadRequest("the query string is malformed: separate parameters with &, escape % as %25, and send UTF-8")
	}
	p, err := s.auth.authenticate(r)
	s.lap(x, stageAuth)
	if err != nil {
		return s.limitUnauthenticated(x, r, errUnauthenticated(err.Error()))
	}
	x.principal = p
	x.purpose = p.Purpose
	if h := r.Header.Get(PurposeHeader); h != "" {
		x.purpose = h
	}
	x.ev.Subject, x.ev.Roles, x.ev.Purpose = p.Subject, p.Roles, x.purpose
	if e := s.checkRevoked(x, p); e != nil {
		if e.Status == http.StatusUnauthorized {
			return s.limitUnauthenticated(x, r, e)
		}
		return e
	}
	return s.limitConsumer(x)
}

func (s *Server) input(x *exchange, r *http.Request, action string, ds *dataset) *policy.Input {
	in := &policy.Input{
		Subject:       x.principal.subject(),
		Purpose:       x.purpose,
		Justification: justification(r),
		Action:        action,
		Request:       policy.Request{Method: r.Method, Path: r.URL.Path, Params: x.params(r)},
		Time:          x.start,
	}
	if ds != nil {
		in.Resource = ds.info
		if action == "read" || action == "stats" {
			in.Grants = s.policyGrants(x, ds)
		}
	}
	return in
}

// decide asks the policy set in force; any failure is a deny.
func (s *Server) decide(ctx context.Context, x *exchange, set *policy.Set, in *policy.Input) *policy.Decision {
	d, err := set.Decide(ctx, in)
	if err != nil {
		s.log.Error("policy decision failed", "request_id", x.id, "revision", set.Revision(), "error", err)
	}
	s.shadowDecide(ctx, x, in, d)
	flag(x, d)
	s.lap(x, stagePolicy)
	return d
}

// record makes the exchange's audit event durable.
func (s *Server) record(ctx context.Context, x *exchange) error {
	ctx, cancel := s.finishEvent(ctx, x)
	defer cancel()
	err := s.audit.Append(ctx, &x.ev)
	s.lap(x, stageAudit)
	return err
}

// finishEvent stamps the exchange's audit event with the request's
// duration so far, and returns the context the trail is waited on in: the
// caller going away does not abandon a record, a stuck trail does.
func (s *Server) finishEvent(ctx context.Context, x *exchange) (context.Context, context.CancelFunc) {
	x.ev.DurationMS = s.elapsedMS(x)
	return context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
}

// elapsedMS is the time since the exchange began, in milliseconds to the
// microsecond.
func (s *Server) elapsedMS(x *exchange) float64 {
	return float64(s.now().Sub(x.start).Microseconds()) / 1000
}

// recordDecision queues a proxied release's decision record before the
// upstream is asked, so that its fsync runs while the upstream answers
// and the records are transformed; the exchange's later record is its
// outcome.
func (s *Server) recordDecision(x *exchange) error {
	x.ev.Phase = audit.PhaseDecision
	p, err := s.audit.Begin(&x.ev)
	if err != nil {
		x.ev.Phase = "" // the refusal is the request's only record
		return err
	}
	x.ev.Phase, x.decided = audit.PhaseOutcome, p
	return nil
}

// recordRelease waits for the release's decision record — what invariant
// 3 asks to be durable before the first byte (who, what, decision,
// obligations, policy revision) is in that one — and then queues its
// outcome without waiting: a crash before the outcome is durable leaves a
// decision record without one, which says the request may have been
// answered. When the decision record fails, no outcome is queued here: the
// caller's refusal records its own.
func (s *Server) recordRelease(ctx context.Context, x *exchange) error {
	ctx, cancel := s.finishEvent(ctx, x)
	defer cancel()
	err := x.decided.Wait(ctx)
	if err == nil {
		err = s.audit.Queue(&x.ev)
	}
	s.lap(x, stageAudit)
	return err
}

// fail audits a refused or failed request and answers with its error; if
// the trail cannot take the record, the caller gets 503 instead.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, x *exchange, e *Error) {
	x.ev.Status, x.ev.Code = e.Status, e.Code
	x.ev.Stage = failStage(x, e)
	// The record's decision is what the caller got: a refusal is a deny
	// and a failure an error, also after the policy allowed — then the
	// reason is Sluice's own, not the policy's reason for allowing.
	switch {
	case x.ev.Decision == "allow":
		x.ev.Decision, x.ev.Reason = "deny", e.Msg
		if e.Status >= 500 {
			x.ev.Decision = "error"
		}
	case x.ev.Decision == "" && e.Status >= 500:
		x.ev.Decision = "error"
	case x.ev.Decision == "":
		x.ev.Decision = "deny"
	}
	if x.ev.Reason == "" {
		x.ev.Reason = e.Msg
	}
	if e.cause != nil {
		x.ev.Reason += ": " + e.cause.Error()
	}
	body := errorJSON(x.id, e)
	x.ev.Bytes = int64(len(body))
	if err := s.record(r.Context(), x); err != nil {
		s.log.Error("audit write failed; refusing", "request_id", x.id, "error", err)
		e = errUnavailable("the audit trail is unavailable", err)
		body = errorJSON(x.id, e)
	}
	writeError(w, e, body)
	s.logDone(x, e)
}

func (s *Server) logDone(x *exchange, e *Error) {
	s.countRequest(x)
	// Typed attributes, gathered on the stack: this runs for every request.
	attrs := [7]slog.Attr{
		slog.String("request_id", x.id), slog.String("method", x.ev.Method), slog.String("path", x.ev.Path),
		slog.Int("status", x.ev.Status), slog.Float64("duration_ms", s.elapsedMS(x)),
	}
	n, level := 5, slog.LevelInfo
	if e != nil {
		attrs[n] = slog.String("code", e.Code)
		n++
		if e.cause != nil {
			attrs[n] = slog.String("error", e.cause.Error())
			n++
		}
		if e.Status >= 500 {
			level = slog.LevelWarn
		}
	}
	s.log.LogAttrs(context.Background(), level, "request", attrs[:n]...)
}

// authorize authenticates the caller and asks set whether it may take
// action, one not about a dataset (audit, explain, revoke). On a refusal
// it audits and answers, and returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, x *exchange, set *policy.Set, action string) bool {
	if e := s.authenticate(x, r); e != nil {
		s.fail(w, r, x, e)
		return false
	}
	x.ev.PolicyRevision = set.Revision()
	d := s.decide(r.Context(), x, set, s.input(x, r, action, nil))
	x.ev.Reason = d.Reason
	if !d.Allow {
		x.ev.Decision = "deny"
		s.fail(w, r, x, errForbidden(denyMessage(d)))
		return false
	}
	x.ev.Decision = "allow"
	return true
}

// answerJSON encodes v, makes the exchange's audit record durable, and
// only then writes v: the release path of every answer the gateway builds
// itself rather than proxies.
func (s *Server) answerJSON(w http.ResponseWriter, r *http.Request, x *exchange, v any) {
	s.answerStatus(w, r, x, http.StatusOK, v)
}

// answerStatus is answerJSON with another success status (201 Created).
func (s *Server) answerStatus(w http.ResponseWriter, r *http.Request, x *exchange, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.fail(w, r, x, errInternal(err))
		return
	}
	body = append(body, '\n')
	x.ev.Status, x.ev.Bytes = status, int64(len(body))
	if !s.recorded(w, r, x) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
	s.logDone(x, nil)
}

// recorded makes x's record durable before its answer is written; when
// the trail cannot take it, it answers 503 instead and returns false.
func (s *Server) recorded(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	if err := s.record(r.Context(), x); err != nil {
		x.ev.Decision = ""
		s.fail(w, r, x, errUnavailable("the audit trail is unavailable", err))
		return false
	}
	return true
}

// openDataset authenticates the caller of a dataset route, resolves the
// dataset and applies its rate limit; on failure it audits and answers,
// and returns false.
func (s *Server) openDataset(w http.ResponseWriter, r *http.Request, x *exchange) (*dataset, bool) {
	if e := s.authenticate(x, r); e != nil {
		s.fail(w, r, x, e)
		return nil, false
	}
	ds, e := s.lookupDataset(r)
	if e != nil {
		s.fail(w, r, x, e)
		return nil, false
	}
	x.ds = ds
	x.ev.Source, x.ev.Dataset = ds.src.cfg.Name, ds.cfg.Name
	if e := s.limitDataset(x, ds); e != nil {
		s.fail(w, r, x, e)
		return nil, false
	}
	return ds, true
}

// lookupDataset resolves /v1/{source}/{dataset}.
func (s *Server) lookupDataset(r *http.Request) (*dataset, *Error) {
	src, ok := s.sources[r.PathValue("source")]
	if !ok {
		return nil, errNotFound("no such source")
	}
	ds, ok := src.datasets[r.PathValue("dataset")]
	if !ok {
		return nil, errNotFound("no such dataset")
	}
	return ds, nil
}

// records serves GET /v1/{source}/{dataset} and /v1/{source}/{dataset}/{id}:
// authenticate → decide → audit the decision → fetch → transform → audit
// the outcome → release. A release has two records: the decision record,
// queued before the fetch and durable before the first byte leaves, and
// the outcome record, which says what was released. A request refused
// before the fetch has one.
func (s *Server) records(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, "read")
	ds, ok := s.openDataset(w, r, x)
	if !ok {
		return
	}
	set := s.policies.Current()
	x.ev.PolicyRevision = set.Revision()
	d := s.decide(r.Context(), x, set, s.input(x, r, "read", ds))
	x.decision = d
	x.ev.Reason = d.Reason
	if !d.Allow {
		x.ev.Decision = "deny"
		s.fail(w, r, x, errForbidden(denyMessage(d)))
		return
	}
	x.ev.Decision, x.ev.Grant = "allow", d.Grant
	q, countsOK, e := upstreamQuery(x.params(r), ds, d)
	treatments := d.Plan.Treatments()
	x.ev.Obligations = &audit.Obligations{
		Fields: treatments, Dropped: dropped(ds, treatments), Rows: d.Plan.RowFilters(),
		Params: sortedKeys(q), MaxRows: d.MaxRows, MinK: d.MinK, MinL: d.MinL,
	}
	if e != nil {
		s.fail(w, r, x, e)
		return
	}
	id := r.PathValue("id")
	if id != "" {
		if e := lookupAllowed(ds, d, id); e != nil {
			s.fail(w, r, x, e)
			return
		}
		x.lookup = true
	}
	if id == "" {
		x.links = newPageLinks("/v1/"+ds.src.cfg.Name+"/"+ds.cfg.Name, x.params(r), q)
	}
	x.target = ds.src.url(ds.cfg, id, q)
	x.shape = anonymize.Shape{Records: *ds.cfg.Records, Meta: ds.cfg.Meta, Filtered: "filtered"}
	// Under min_k an upstream total would count the records suppressed
	// here, and tell of the small classes: it is not passed on.
	if countsOK && d.MinK == 0 {
		x.shape.Counts = ds.cfg.Counts
	}
	if d.MinK > 0 {
		if x.kTable, e = s.kTableFor(r.Context(), x); e != nil {
			s.fail(w, r, x, e)
			return
		}
	}

	if err := s.recordDecision(x); err != nil {
		s.fail(w, r, x, errUnavailable("the audit trail is unavailable", err))
		return
	}

	ds.src.serveRecords(w, r, x)
}

// denyMessage is the reason a caller is shown for a deny.
func denyMessage(d *policy.Decision) string {
	if d.Reason == "" {
		return "the policy does not allow this request"
	}
	return "the policy does not allow this request: " + d.Reason
}

// upstreamQuery builds the upstream query: only parameters the decision
// allows, page_size within max_rows, and row filters pushed down where the
// dataset declares an upstream filter. countsOK is true when every row
// filter was pushed down, so upstream totals describe only what the caller
// may see.
func upstreamQuery(q url.Values, ds *dataset, d *policy.Decision) (url.Values, bool, *Error) {
	out := url.Values{}
	for k, vs := range q {
		if !d.AllowsParam(k) {
			return out, false, errForbidden(fmt.Sprintf("query parameter %q is not allowed", k))
		}
		if field := ds.filterField(k); field != "" && !d.Plan.Releases(field) && !d.AllowsMaskedFilter(field) {
			return out, false, errForbidden(fmt.Sprintf("query parameter %q filters on %s, which this caller does not receive in clear", k, field))
		}
		out[k] = vs
	}
	for _, k := range []string{"page", "page_size"} {
		vs, ok := out[k]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(vs[0])
		if len(vs) != 1 || err != nil || n < 1 {
			return out, false, errBadRequest(k + " must be one positive integer")
		}
		if k == "page_size" && d.MaxRows > 0 && n > d.MaxRows {
			out.Set(k, strconv.Itoa(d.MaxRows))
		}
	}
	pushed := d.Plan.Pushdown()
	countsOK := len(pushed) == len(d.Plan.RowFilters())
	for field, vals := range pushed {
		param := ds.cfg.Filters[field]
		if param == "" {
			countsOK = false
			continue
		}
		given, ok := out[param]
		switch {
		case !ok:
			out[param] = vals
		case len(given) != 1 || !slices.Contains(vals, given[0]):
			// The caller narrowed by its own value outside the filter (or
			// by several): rows are still filtered here, but the upstream's
			// totals would describe rows the caller may not see.
			countsOK = false
		}
	}
	return out, countsOK, nil
}

// filterField is the record field a query parameter filters on: the field
// the dataset maps to it, or a field of the same name; "" for neither
// (paging and other non-field parameters).
func (ds *dataset) filterField(param string) string {
	for field, p := range ds.cfg.Filters {
		if p == param {
			return field
		}
	}
	if _, ok := ds.cfg.Fields[param]; ok {
		return param
	}
	return ""
}

// lookupAllowed checks a /{id} request: looking a record up by a value the
// caller does not receive in clear would be an oracle on it.
func lookupAllowed(ds *dataset, d *policy.Decision, id string) *Error {
	if ds.cfg.IDField == "" {
		return errNotFound("records of this dataset cannot be looked up by id")
	}
	if len(id) > 256 || id == "." || id == ".." || strings.ContainsFunc(id, func(r rune) bool {
		return r == '/' || r == '\\' || r < 0x20 || r == 0x7f
	}) {
		return errBadRequest("malformed id: an id is one path segment without slashes or control characters")
	}
	if !d.Plan.Releases(ds.cfg.IDField) && !d.AllowsMaskedFilter(ds.cfg.IDField) {
		return errForbidden(fmt.Sprintf("lookup by %s is not allowed: the caller does not receive it unmasked", ds.cfg.IDField))
	}
	return nil
}

func sortedKeys(q url.Values) []string {
	if len(q) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(q))
}

// gatewayMembers are the top-level members of a records answer the
// gateway writes itself: the released records, the records k-anonymity
// suppressed, and the records the decision's row filters removed.
var gatewayMembers = []string{anonymize.OutputRecords, "suppressed", "filtered"}

// release runs on the upstream's response: it transforms the body into a
// spool, writes the audit record, and only then hands the spool to the
// proxy to send. Any failure becomes an error response instead.
func (s *Server) release(resp *http.Response) error {
	x := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	s.lap(x, stageUpstream)
	if e := checkResponse(resp, x.lookup); e != nil {
		return e
	}
	limits := s.cfg.Limits
	sp := newSpool(int(limits.SpoolMemoryBytes), limits.SpoolDir)
	st, err := x.decision.Plan.Transform(sp, resp.Body, x.shape, s.env(x), anonymize.Limits{
		MaxRecordBytes: int(limits.MaxRecordBytes),
		MaxBodyBytes:   int64(limits.MaxResponseBytes),
	})
	if err != nil {
		sp.Close()
		return upstreamError(err)
	}
	if x.kTable != nil {
		if sp, err = s.suppressSmallClasses(sp, x, &st); err != nil {
			return errInternal(err)
		}
	}
	if x.lookup && st.Released == 0 {
		sp.Close()
		return errNotFound("no such record")
	}
	s.lap(x, stageTransform)
	x.ev.Rows, x.ev.Bytes, x.ev.Status = st.Released, sp.Len(), http.StatusOK
	x.ev.Obligations.Fallbacks, x.ev.Obligations.Suppressed = st.Fallbacks, st.Suppressed
	s.metrics.fallbacks.Add(float64(st.Fallbacks))
	x.ds.released.Add(float64(st.Released))
	if err := s.recordRelease(resp.Request.Context(), x); err != nil {
		sp.Close()
		return errUnavailable("the audit trail is unavailable", err)
	}
	if err := sp.rewind(); err != nil {
		sp.Close()
		return errInternal(err)
	}
	resp.Body = sp
	resp.Header = http.Header{
		"Content-Type":           {"application/json"},
		"Content-Length":         {strconv.FormatInt(sp.Len(), 10)},
		"Cache-Control":          {"no-store"},
		"X-Content-Type-Options": {"nosniff"},
	}
	if x.links != nil {
		if l := x.links.header(st.Records); l != "" {
			resp.Header.Set("Link", l)
		}
	}
	resp.ContentLength = sp.Len()
	resp.Trailer = nil
	s.logDone(x, nil)
	return nil
}

// suppressSmallClasses streams the transformed records in sp through
// kFilter into a second spool, which it returns, closing sp: a record of
// a class below min_k (or min_l) is left out and counted as suppressed.
// The filter runs here, after the transform, rather than inside it, so
// that the transform stays the pure function of one body it is, and
// memory stays bounded by the largest record: both bodies are spooled.
func (s *Server) suppressSmallClasses(sp *spool, x *exchange, st *anonymize.Stats) (*spool, error) {
	defer sp.Close()
	if err := sp.rewind(); err != nil {
		return nil, err
	}
	limits := s.cfg.Limits
	out := newSpool(int(limits.SpoolMemoryBytes), limits.SpoolDir)
	released, suppressed, err := kFilter(out, sp, x.kTable)
	if err != nil {
		out.Close()
		return nil, err
	}
	st.Released, st.Suppressed = released, st.Suppressed+suppressed
	return out, nil
}

// copyBuffers lends the proxy 32 KiB buffers for copying responses.
type copyBuffers struct{}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyPool.Put(&b) }

var _ httputil.BufferPool = copyBuffers{}
var _ io.Reader = (*spool)(nil)
