package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// JustificationHeader states why the caller needs this one request; the
// policy sees it as input.justification (break-glass rules require one).
const JustificationHeader = "Sluice-Justification"

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
	// tap learns whose records a record release holds; nil for other
	// requests.
	tap *releaseTap
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
	x.ev.Subject, x.ev.Roles, x.ev.Purpose, x.ev.Org = p.Subject, p.Roles, x.purpose, p.Org
	if e := s.checkRevoked(x, p); e != nil {
		if e.Status == http.StatusUnauthorized {
			return s.limitUnauthenticated(x, r, e)
		}
		return e
	}
	return s.limitConsumer(x)
}

// input is what the policy is asked about the exchange: the caller, their
// purpose and justification, the action, the dataset and the grants in force.
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

// maxJustification bounds the justification the policy sees, in bytes.
const maxJustification = 512

// justification is the request's stated justification, trimmed and cut at
// maxJustification bytes (on a character boundary).
func justification(r *http.Request) string {
	j := strings.TrimSpace(r.Header.Get(JustificationHeader))
	if len(j) <= maxJustification {
		return j
	}
	j = j[:maxJustification]
	for !utf8.ValidString(j) {
		j = j[:len(j)-1]
	}
	return j
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
// answered. A release of people's records (x.ev.Released) waits for its
// outcome too, which names them: the usage index is built from it. When the decision record fails, no outcome is queued here: the
// caller's refusal records its own.
func (s *Server) recordRelease(ctx context.Context, x *exchange) error {
	ctx, cancel := s.finishEvent(ctx, x)
	defer cancel()
	var err error
	if x.ev.Released != nil {
		// Whose records these are is on the trail before they leave: a
		// person's usage misses no release, crash or not. The trail is
		// written in order, so the outcome durable is the decision
		// durable too: one wait, not two.
		if err = s.appendDurable(ctx, &x.ev); err == nil {
			err = x.decided.Wait(ctx)
		}
	} else if err = x.decided.Wait(ctx); err == nil {
		err = s.audit.Queue(&x.ev)
	}
	s.lap(x, stageAudit)
	return err
}

// appendDurable appends ev to the trail and waits until it is durable,
// setting its Seq when the trail says it.
func (s *Server) appendDurable(ctx context.Context, ev *audit.Event) error {
	p, err := s.audit.Begin(ev)
	if err != nil {
		return err
	}
	if sp, ok := p.(interface {
		WaitSeq(context.Context) (uint64, error)
	}); ok {
		ev.Seq, err = sp.WaitSeq(ctx)
		return err
	}
	return p.Wait(ctx)
}

// recordNames writes a names record of x's release, naming part of the
// people it holds (audit.PhaseNames), durably, and adds it to the usage
// index before it returns: a large release's names reach the trail and
// the index a part at a time, so that neither holds them all at once.
// Its outcome record follows, and the release waits for that, as any.
func (s *Server) recordNames(ctx context.Context, x *exchange, part *audit.Released) error {
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	ev := x.ev
	ev.Seq, ev.Prev, ev.Phase, ev.Status, ev.Code, ev.Bytes, ev.Released = 0, "", audit.PhaseNames, 0, "", 0, part
	if err := s.appendDurable(ctx, &ev); err != nil {
		return errUnavailable("the audit trail is unavailable", err)
	}
	s.indexNow(ctx, &ev)
	return nil
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
