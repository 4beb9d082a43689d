package gateway

// The hub's routes (DESIGN.md, "The hub"): requests and their decisions,
// grants, demands. Who may take a kind of action is the policy's
// (request.submit, request.decide, grant.revoke, ...); whether this
// caller may take it on this object is the hub's (its relation to the
// object: requester, a steward of the owning department, the
// coordinator). Every state change is an audit record naming the object
// and its old and new state, the reason keyed-hashed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/hub"
)

// maxHubBody bounds a hub request's JSON body.
const maxHubBody = 64 << 10

// hubRoutes adds the hub's routes to mux.
func (s *Server) hubRoutes(mux *routeMux) {
	mux.HandleFunc("POST /v1/requests", s.hubHandler("request.submit", s.submitRequest))
	mux.HandleFunc("POST /v1/requests/preview", s.hubHandlerAs("request.preview", "request.submit", s.previewRequest))
	mux.HandleFunc("GET /v1/requests", s.hubHandler("request.read", s.listRequests))
	mux.HandleFunc("GET /v1/requests/{id}", s.hubHandler("request.read", s.getRequest))
	mux.HandleFunc("POST /v1/requests/{id}/decision", s.hubHandler("request.decide", s.decideRequest))
	mux.HandleFunc("POST /v1/requests/{id}/reply", s.hubHandler("request.reply", s.requestAct(hub.Reply)))
	mux.HandleFunc("POST /v1/requests/{id}/withdraw", s.hubHandler("request.withdraw", s.requestAct(hub.Withdraw)))
	mux.HandleFunc("GET /v1/grants", s.hubHandler("grant.read", s.listGrants))
	mux.HandleFunc("GET /v1/grants/{id}", s.hubHandler("grant.read", s.getGrant))
	for _, a := range []hub.Action{hub.Revoke, hub.Suspend, hub.Resume} {
		mux.HandleFunc("POST /v1/grants/{id}/"+string(a), s.hubHandler("grant."+string(a), s.grantAct(a)))
	}
	mux.HandleFunc("POST /v1/demands", s.hubHandler("demand.submit", s.fileDemand))
	mux.HandleFunc("GET /v1/demands", s.hubHandler("demand.read", s.listDemands))
	mux.HandleFunc("GET /v1/demands/{id}", s.hubHandler("demand.read", s.getDemand))
	mux.HandleFunc("POST /v1/demands/{id}/decision", s.hubHandler("demand.decide", s.decideDemand))
	mux.HandleFunc("POST /v1/objections", s.hubHandler("objection.file", s.fileObjection))
	mux.HandleFunc("GET /v1/objections", s.hubHandler("objection.read", s.listObjections))
	mux.HandleFunc("GET /v1/objections/{id}", s.hubHandler("objection.read", s.getObjection))
	mux.HandleFunc("POST /v1/objections/{id}/decision", s.hubHandler("objection.decide", s.decideObjection))
	mux.HandleFunc("GET /v1/notices", s.hubHandler("notice.read", s.listNotices))
	mux.HandleFunc("POST /v1/notices/{id}/ack", s.hubHandler("notice.ack", s.ackNotice))
}

// hubCall is one hub request, authenticated and allowed by the policy;
// it returns the answer's status and body, or an error.
type hubCall func(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error)

// hubHandler authenticates the caller, asks the policy whether it may
// take action at all, runs call, and answers once the records are
// durable.
func (s *Server) hubHandler(action string, call hubCall) http.HandlerFunc {
	return s.hubHandlerAs(action, action, call)
}

// hubHandlerAs is hubHandler for a route audited as audited and allowed
// as the policy allows action (a preview is allowed to whoever may ask).
func (s *Server) hubHandlerAs(audited, action string, call hubCall) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		x := s.begin(w, r, audited)
		if !s.authorize(w, r, x, s.policies.Current(), action) {
			return
		}
		if s.hub == nil {
			s.fail(w, r, x, errUnavailable("the sharing hub needs a state backend (state.path or state.redis)", nil))
			return
		}
		status, v, e := call(r.Context(), r, x)
		if e != nil {
			s.fail(w, r, x, e)
			return
		}
		s.answerStatus(w, r, x, status, v)
	}
}

// readBody decodes a hub request's JSON body into v, strictly: unknown
// members, trailing data and bodies over maxHubBody are 400.
func readBody(r *http.Request, v any) *Error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxHubBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRequest("the body is not the JSON this route takes: " + jsonProblem(err))
	}
	if dec.More() {
		return errBadRequest("the body holds more than one JSON value")
	}
	return nil
}

// jsonProblem says what is wrong with a body in words safe to show: the
// decoder's message names fields and types, never the body's values.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be %s", typ.Field, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or cut short"
	case errors.As(err, new(*time.ParseError)):
		return "a time must be RFC 3339, such as 2027-03-31T00:00:00Z"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown member " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "not readable"
}

// made records the transitions an action made beyond the first, which
// the exchange's own record carries, and refreshes the grants copy when
// one changed a grant or an objection, so that the change is in force
// here at once.
func (s *Server) made(ctx context.Context, x *exchange, ts []hub.Transition) {
	grants := false
	for i, t := range ts {
		if i == 0 {
			x.ev.Object, x.ev.Change = t.Object, &audit.StateChange{From: string(t.From), To: string(t.To)}
			x.ev.Reason = s.hashedReason(t.Reason)
		} else {
			s.recordTransition(ctx, t, x.id, x)
		}
		// The copy holds the grants and the records under objection.
		grants = grants || strings.HasPrefix(t.Object, "grt_") || strings.HasPrefix(t.Object, "obj_")
	}
	if grants {
		if err := s.grants.refresh(ctx, s.hub.Store(), s.now()); err != nil {
			s.log.Warn("sharing grants cannot be refreshed", "request_id", x.id, "error", err)
		}
	}
}

// hashedReason is a free-text reason as the trail holds it.
func (s *Server) hashedReason(reason string) string {
	if reason == "" {
		return ""
	}
	return s.hasher.Sum(reason)
}

// hubKinds name the kinds of hub object by their ids' prefixes.
var hubKinds = map[string]string{"req": "request", "grt": "grant", "dmd": "demand", "obj": "objection", "ntc": "notice"}

// recordTransition writes a record of its own for t: one an action made
// beside its main one (the grant an approval issues), or the system's.
func (s *Server) recordTransition(ctx context.Context, t hub.Transition, requestID string, x *exchange) {
	kind, _, _ := strings.Cut(t.Object, "_")
	ev := audit.Event{Time: t.At.UTC(), RequestID: requestID, Subject: t.By.Subject,
		Action: hubKinds[kind] + "." + string(t.Action),
		Object: t.Object, Change: &audit.StateChange{From: string(t.From), To: string(t.To)},
		Reason: s.hashedReason(t.Reason), Decision: "allow", Status: http.StatusOK}
	if x != nil {
		ev.Roles, ev.Client, ev.Method, ev.Path, ev.PolicyRevision = x.ev.Roles, x.ev.Client, x.ev.Method, x.ev.Path, x.ev.PolicyRevision
	}
	if err := s.audit.Append(context.WithoutCancel(ctx), &ev); err != nil {
		s.log.Error("a hub transition could not be recorded", "request_id", requestID, "object", t.Object, "error", err)
	}
}

// submitRequest is POST /v1/requests.
func (s *Server) submitRequest(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	var in hub.Submission
	if e := readBody(r, &in); e != nil {
		return 0, nil, e
	}
	ds := s.datasetNamed(in.Dataset)
	if ds == nil {
		return 0, nil, errNotFound("no such dataset: " + in.Dataset)
	}
	x.ev.Source, x.ev.Dataset = ds.src.cfg.Name, ds.cfg.Name
	for _, f := range in.Fields {
		if _, ok := ds.cfg.Fields[f]; !ok && ds.cfg.Fields != nil {
			return 0, nil, errBadRequest(fmt.Sprintf("%s has no field %q", in.Dataset, f))
		}
	}
	out, err := s.hub.Submit(ctx, in, ds.hubDataset(), actor(x.principal))
	if err != nil {
		return 0, nil, hubError(err)
	}
	s.made(ctx, x, out.Transitions)
	return http.StatusCreated, out.Request, nil
}

// datasetNamed is the dataset "source/dataset", nil for none.
func (s *Server) datasetNamed(name string) *dataset {
	src, ds, ok := strings.Cut(name, "/")
	if !ok || s.sources[src] == nil {
		return nil
	}
	return s.sources[src].datasets[ds]
}

// sees reports whether p may see an object between requester and owner:
// the requesting department's members, the owner's stewards, the
// coordinator.
func sees(p *Principal, requester hub.Principal, owner string) bool {
	a := actor(p)
	return a.Coordinator || (p.Dept != "" && p.Dept == requester.Dept) || (a.Steward && p.Dept == owner)
}

// stateFilter reads ?state=.
func stateFilter(r *http.Request) (hub.Filter, *Error) {
	q := r.URL.Query()
	for k := range q {
		if k != "state" {
			return hub.Filter{}, errBadRequest(fmt.Sprintf("unknown query parameter %q (want state)", k))
		}
	}
	return hub.Filter{State: hub.State(q.Get("state"))}, nil
}

func (s *Server) listRequests(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	f, e := stateFilter(r)
	if e != nil {
		return 0, nil, e
	}
	rs, err := s.hub.Store().Requests(ctx, f)
	if err != nil {
		return 0, nil, hubError(err)
	}
	out := []*hub.Request{}
	for _, q := range rs {
		if sees(x.principal, q.Requester, q.Owner) {
			out = append(out, q)
		}
	}
	x.ev.Rows = len(out)
	return http.StatusOK, map[string]any{"requests": out}, nil
}

// visibleRequest is request id when x's caller may see it; 404 otherwise,
// so that ids of others' requests tell nothing.
func (s *Server) visibleRequest(ctx context.Context, x *exchange, id string) (*hub.Request, *Error) {
	q, err := s.hub.Store().Request(ctx, id)
	if err != nil {
		return nil, hubError(err)
	}
	if !sees(x.principal, q.Requester, q.Owner) {
		return nil, errNotFound("no such request")
	}
	x.ev.Object = q.ID
	return q, nil
}

func (s *Server) getRequest(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	q, e := s.visibleRequest(ctx, x, r.PathValue("id"))
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, q, nil
}

// decideRequest is POST /v1/requests/{id}/decision.
func (s *Server) decideRequest(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	var in struct {
		Decision   string          `json:"decision"`
		Reason     string          `json:"reason"`
		Conditions *hub.Conditions `json:"conditions"`
	}
	if e := readBody(r, &in); e != nil {
		return 0, nil, e
	}
	act := hub.Act{Reason: in.Reason, Conditions: in.Conditions}
	switch in.Decision {
	case "approve":
		act.Action = hub.Approve
	case "reject":
		act.Action = hub.Reject
	case "need_info":
		act.Action = hub.NeedInfo
	default:
		return 0, nil, errBadRequest(`decision must be "approve", "reject" or "need_info"`)
	}
	return s.actOnRequest(ctx, x, r.PathValue("id"), act)
}

// requestAct is a requester's action on a request (reply, withdraw) with
// an optional {"reason": ...}.
func (s *Server) requestAct(a hub.Action) hubCall {
	return func(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
		var in struct {
			Reason string `json:"reason"`
		}
		if r.ContentLength != 0 {
			if e := readBody(r, &in); e != nil {
				return 0, nil, e
			}
		}
		return s.actOnRequest(ctx, x, r.PathValue("id"), hub.Act{Action: a, Reason: in.Reason})
	}
}

func (s *Server) actOnRequest(ctx context.Context, x *exchange, id string, act hub.Act) (int, any, *Error) {
	q, e := s.visibleRequest(ctx, x, id)
	if e != nil {
		return 0, nil, e
	}
	if ds := s.datasetNamed(q.Dataset); ds != nil {
		x.ev.Source, x.ev.Dataset = ds.src.cfg.Name, ds.cfg.Name
	}
	out, err := s.hub.ActOnRequest(ctx, id, act, actor(x.principal))
	if err != nil {
		return 0, nil, hubError(err)
	}
	s.made(ctx, x, out.Transitions)
	if out.Grant != nil {
		x.ev.Grant = out.Grant.ID
	}
	return http.StatusOK, out.Request, nil
}

func (s *Server) listGrants(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	f, e := stateFilter(r)
	if e != nil {
		return 0, nil, e
	}
	gs, err := s.hub.Store().Grants(ctx, f)
	if err != nil {
		return 0, nil, hubError(err)
	}
	out := []*hub.Grant{}
	for _, g := range gs {
		if sees(x.principal, hub.Principal{Dept: g.Dept}, g.Owner) {
			out = append(out, g)
		}
	}
	x.ev.Rows = len(out)
	return http.StatusOK, map[string]any{"grants": out}, nil
}

func (s *Server) visibleGrant(ctx context.Context, x *exchange, id string) (*hub.Grant, *Error) {
	g, err := s.hub.Store().Grant(ctx, id)
	if err != nil {
		return nil, hubError(err)
	}
	if !sees(x.principal, hub.Principal{Dept: g.Dept}, g.Owner) {
		return nil, errNotFound("no such grant")
	}
	x.ev.Object = g.ID
	return g, nil
}

func (s *Server) getGrant(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	g, e := s.visibleGrant(ctx, x, r.PathValue("id"))
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, g, nil
}

// grantAct is POST /v1/grants/{id}/revoke|suspend|resume {"reason": ...}.
func (s *Server) grantAct(a hub.Action) hubCall {
	return func(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
		var in struct {
			Reason string `json:"reason"`
		}
		if e := readBody(r, &in); e != nil {
			return 0, nil, e
		}
		if _, e := s.visibleGrant(ctx, x, r.PathValue("id")); e != nil {
			return 0, nil, e
		}
		out, err := s.hub.ActOnGrant(ctx, r.PathValue("id"), hub.Act{Action: a, Reason: in.Reason}, actor(x.principal))
		if err != nil {
			return 0, nil, hubError(err)
		}
		s.made(ctx, x, out.Transitions)
		return http.StatusOK, out.Grant, nil
	}
}

// fileDemand is POST /v1/demands.
func (s *Server) fileDemand(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	var in hub.DemandInput
	if e := readBody(r, &in); e != nil {
		return 0, nil, e
	}
	out, err := s.hub.FileDemand(ctx, in, actor(x.principal))
	if err != nil {
		return 0, nil, hubError(err)
	}
	s.made(ctx, x, out.Transitions)
	return http.StatusCreated, out.Demand, nil
}

func (s *Server) listDemands(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	f, e := stateFilter(r)
	if e != nil {
		return 0, nil, e
	}
	ds, err := s.hub.Store().Demands(ctx, f)
	if err != nil {
		return 0, nil, hubError(err)
	}
	out := []*hub.Demand{}
	for _, d := range ds {
		if sees(x.principal, d.Requester, d.Owner) {
			out = append(out, d)
		}
	}
	x.ev.Rows = len(out)
	return http.StatusOK, map[string]any{"demands": out}, nil
}

func (s *Server) visibleDemand(ctx context.Context, x *exchange, id string) (*hub.Demand, *Error) {
	d, err := s.hub.Store().Demand(ctx, id)
	if err != nil {
		return nil, hubError(err)
	}
	if !sees(x.principal, d.Requester, d.Owner) {
		return nil, errNotFound("no such demand")
	}
	x.ev.Object = d.ID
	return d, nil
}

func (s *Server) getDemand(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	d, e := s.visibleDemand(ctx, x, r.PathValue("id"))
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, d, nil
}

// decideDemand is POST /v1/demands/{id}/decision {"decision":
// "publish"|"refuse", "dataset": ..., "reason": ...}.
func (s *Server) decideDemand(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	var in struct {
		Decision string `json:"decision"`
		Dataset  string `json:"dataset"`
		Reason   string `json:"reason"`
	}
	if e := readBody(r, &in); e != nil {
		return 0, nil, e
	}
	act := hub.Act{Reason: in.Reason, Dataset: in.Dataset}
	switch in.Decision {
	case "publish":
		act.Action = hub.Publish
		if s.datasetNamed(in.Dataset) == nil {
			return 0, nil, errBadRequest("publish names a dataset of the catalogue (source/dataset)")
		}
	case "refuse":
		act.Action = hub.Refuse
	default:
		return 0, nil, errBadRequest(`decision must be "publish" or "refuse"`)
	}
	if _, e := s.visibleDemand(ctx, x, r.PathValue("id")); e != nil {
		return 0, nil, e
	}
	out, err := s.hub.ActOnDemand(ctx, r.PathValue("id"), act, actor(x.principal))
	if err != nil {
		return 0, nil, hubError(err)
	}
	s.made(ctx, x, out.Transitions)
	return http.StatusOK, out.Demand, nil
}
