package gateway

// Objections and notices, served (DESIGN.md, "Objections → notices"). A
// department that received a record, or the person it is about, objects
// to it; the owning department's stewards decide; a correction sends a
// notice to every department that had received the record. Who received
// what is the usage index's to say, and whose a record is the
// department's: the gateway reads the record's privacy unit from it.
// Objections' free text is sealed at rest (hub.Sealer), keyed-hashed in
// the trail, and shown only to the filer, the owning stewards and the
// coordinator.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/usage"
)

// objectionInput is POST /v1/objections's body: a record (dataset,
// record_id, field) or a release ("ask why": release, the request id of a
// release the filer's usage lists), and the claim.
type objectionInput struct {
	hub.ObjectionInput
}

// fileObjection is POST /v1/objections.
func (s *Server) fileObjection(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	var in objectionInput
	if e := readBody(r, &in); e != nil {
		return 0, nil, e
	}
	if in.Release != "" {
		return s.askWhy(ctx, x, in.ObjectionInput)
	}
	ds := s.datasetNamed(in.Dataset)
	if ds == nil {
		return 0, nil, errNotFound("no such dataset: " + in.Dataset)
	}
	x.ev.Source, x.ev.Dataset = ds.src.cfg.Name, ds.cfg.Name
	if ds.cfg.IDField == "" {
		return 0, nil, errBadRequest(in.Dataset + " names no record id (id_field): an objection names the record it is about")
	}
	if _, ok := ds.cfg.Fields[in.Field]; in.Field != "" && ds.cfg.Fields != nil && !ok {
		return 0, nil, errBadRequest(fmt.Sprintf("%s has no field %q", in.Dataset, in.Field))
	}
	if in.RecordID == "" || len(in.RecordID) > 256 {
		return 0, nil, errBadRequest("record_id names the record (at most 256 bytes)")
	}
	p := x.principal
	var elig hub.Eligibility
	if p.Dept != "" && p.Dept != ds.cfg.Owner {
		depts, e := s.receivers(ctx, ds, in.RecordID)
		if e != nil {
			return 0, nil, e
		}
		elig.Received = slices.Contains(depts, p.Dept)
	}
	if person := personOf(p); person != "" {
		mine, e := s.recordIsAbout(ctx, x, ds, in.RecordID, person)
		if e != nil {
			return 0, nil, e
		}
		elig.Subject = mine
	}
	out, err := s.hub.FileObjection(ctx, in.ObjectionInput, ds.hubDataset(), actor(p), elig)
	if err != nil {
		return 0, nil, hubError(err)
	}
	s.made(ctx, x, out.Transitions)
	return http.StatusCreated, out.Objection, nil
}

// askWhy files a person's question about a release of their data: an
// objection to the release, answered by the department that received it.
func (s *Server) askWhy(ctx context.Context, x *exchange, in hub.ObjectionInput) (int, any, *Error) {
	person := personOf(x.principal)
	if person == "" {
		return 0, nil, errForbidden("a release is asked about by the person whose data it held (a token with id_number)")
	}
	if in.RecordID != "" {
		return 0, nil, errBadRequest("ask about a release or object to a record, not both")
	}
	if s.usage == nil {
		return 0, nil, errUnavailable("the usage index is not configured", nil)
	}
	if e := s.usageReady(ctx); e != nil {
		return 0, nil, e
	}
	rels, err := s.usage.idx.ByUnit(ctx, s.hasher.Unit(person), time.Time{}, time.Time{})
	if err != nil {
		return 0, nil, errUnavailable("the usage index is unavailable", err)
	}
	i := slices.IndexFunc(rels, func(r usage.Release) bool { return r.RequestID == in.Release })
	if i < 0 || rels[i].Dept == "" {
		return 0, nil, errNotFound("no release of your data with that request id")
	}
	rel := rels[i]
	if in.Dataset != "" && in.Dataset != rel.Dataset {
		return 0, nil, errBadRequest("the release was of " + rel.Dataset)
	}
	in.Dataset = rel.Dataset
	if ds := s.datasetNamed(rel.Dataset); ds != nil {
		x.ev.Source, x.ev.Dataset = ds.src.cfg.Name, ds.cfg.Name
	}
	// The department that received the release answers for it.
	target := hub.Dataset{Name: rel.Dataset, Owner: rel.Dept}
	out, herr := s.hub.FileObjection(ctx, in, target, actor(x.principal), hub.Eligibility{Subject: true})
	if herr != nil {
		return 0, nil, hubError(herr)
	}
	s.made(ctx, x, out.Transitions)
	return http.StatusCreated, out.Objection, nil
}

// personOf is the privacy-unit value a citizen's token names (its
// id_number claim); "" for any other caller.
func personOf(p *Principal) string {
	if !slices.Contains(p.Roles, "citizen") {
		return ""
	}
	id, _ := p.Claims["id_number"].(string)
	return id
}

// receivers are the departments that received record id of ds, from the
// usage index, each once.
func (s *Server) receivers(ctx context.Context, ds *dataset, id string) ([]string, *Error) {
	rels, e := s.releasesOf(ctx, ds, id)
	if e != nil {
		return nil, e
	}
	var depts []string
	for _, r := range rels {
		if r.Dept != "" && !slices.Contains(depts, r.Dept) {
			depts = append(depts, r.Dept)
		}
	}
	return depts, nil
}

// releasesOf are the releases of ds that held record id, from the usage
// index: by the record's hash, or by the person's where the record is
// named by its privacy unit.
func (s *Server) releasesOf(ctx context.Context, ds *dataset, id string) ([]usage.Release, *Error) {
	if s.usage == nil {
		return nil, errUnavailable("the usage index is not configured: who received a record cannot be told", nil)
	}
	if e := s.usageReady(ctx); e != nil {
		return nil, e
	}
	name := ds.src.cfg.Name + "/" + ds.cfg.Name
	var rels []usage.Release
	var err error
	if ds.cfg.IDField == ds.cfg.PrivacyUnit {
		rels, err = s.usage.idx.ByUnit(ctx, s.hasher.Unit(id), time.Time{}, time.Time{})
	} else {
		rels, err = s.usage.idx.ByRecord(ctx, name, s.hasher.Record(name, id))
	}
	if err != nil {
		return nil, errUnavailable("the usage index is unavailable", err)
	}
	return slices.DeleteFunc(rels, func(r usage.Release) bool { return r.Dataset != name }), nil
}

// recordIsAbout reports whether record id of ds is about person: its
// privacy unit is theirs, as the department holds it.
func (s *Server) recordIsAbout(ctx context.Context, x *exchange, ds *dataset, id, person string) (bool, *Error) {
	cfg := ds.cfg
	switch {
	case cfg.PrivacyUnit == "":
		return false, nil
	case cfg.IDField == cfg.PrivacyUnit:
		return id == person, nil
	}
	if e := checkID(id); e != nil {
		return false, e
	}
	plan, err := anonymize.Compile(anonymize.Spec{})
	if err != nil {
		return false, errInternal(err)
	}
	mine := false
	shape := anonymize.Shape{Records: *cfg.Records, Meta: cfg.Meta, Watch: []string{cfg.IDField, cfg.PrivacyUnit},
		Seen: func(vals []anonymize.Value) {
			got, _ := vals[0].Text()
			unit, _ := vals[1].Text()
			mine = mine || (got == id && unit == person)
		}}
	limits := anonymize.Limits{MaxRecordBytes: int(s.cfg.Limits.MaxRecordBytes), MaxBodyBytes: int64(s.cfg.Limits.MaxResponseBytes)}
	ctx, cancel := ds.src.readDeadline(ctx, cfg)
	defer cancel()
	err = ds.src.get(ctx, x.id, ds.src.url(cfg, id, nil), true, func(body io.Reader) error {
		_, err := plan.Transform(io.Discard, body, shape, nil, limits)
		return err
	})
	if err != nil {
		if e := s.departmentFailure(err); e.Code != "not_found" {
			return false, e
		}
	}
	return mine, nil
}

// seesObjection reports whether p may read o: its filer, a steward of
// the owning department, the coordinator.
func seesObjection(p *Principal, o *hub.Objection) bool {
	a := actor(p)
	filer := p.Subject == o.Filer.Subject && p.Dept == o.Filer.Dept
	return a.Coordinator || filer || (a.Steward && p.Dept != "" && p.Dept == o.Owner)
}

// listObjections is GET /v1/objections[?state=]: those the caller may
// read, with their text.
func (s *Server) listObjections(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	f, e := stateFilter(r)
	if e != nil {
		return 0, nil, e
	}
	obs, err := s.hub.Objections(ctx, f)
	if err != nil {
		return 0, nil, hubError(err)
	}
	out := []*hub.Objection{}
	for _, o := range obs {
		if !seesObjection(x.principal, o) {
			continue
		}
		opened, err := s.hub.Open(o)
		if err != nil {
			return 0, nil, hubError(err)
		}
		out = append(out, opened)
	}
	x.ev.Rows = len(out)
	return http.StatusOK, map[string]any{"objections": out}, nil
}

// visibleObjection is objection id, opened, when x's caller may read it;
// 404 otherwise, so that others' ids tell nothing.
func (s *Server) visibleObjection(ctx context.Context, x *exchange, id string) (*hub.Objection, *Error) {
	o, err := s.hub.Objection(ctx, id)
	if err != nil {
		return nil, hubError(err)
	}
	if !seesObjection(x.principal, o) {
		return nil, errNotFound("no such objection")
	}
	x.ev.Object = o.ID
	if ds := s.datasetNamed(o.Dataset); ds != nil {
		x.ev.Source, x.ev.Dataset = ds.src.cfg.Name, ds.cfg.Name
	}
	opened, err := s.hub.Open(o)
	if err != nil {
		return nil, hubError(err)
	}
	return opened, nil
}

func (s *Server) getObjection(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	o, e := s.visibleObjection(ctx, x, r.PathValue("id"))
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, o, nil
}

// decideObjection is POST /v1/objections/{id}/decision {"decision":
// "accept|reject|corrected|upheld", "reason": ...}. A correction notifies
// every department that received the record.
func (s *Server) decideObjection(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	var in struct {
		Decision string `json:"decision"`
		Reason   string `json:"reason"`
	}
	if e := readBody(r, &in); e != nil {
		return 0, nil, e
	}
	act := hub.Act{Reason: in.Reason}
	switch in.Decision {
	case "accept":
		act.Action = hub.Accept
	case "reject":
		act.Action = hub.Reject
	case "corrected":
		act.Action = hub.Correct
	case "upheld":
		act.Action = hub.Uphold
	default:
		return 0, nil, errBadRequest(`decision must be "accept", "reject", "corrected" or "upheld"`)
	}
	o, e := s.visibleObjection(ctx, x, r.PathValue("id"))
	if e != nil {
		return 0, nil, e
	}
	var recipients []string
	if act.Action == hub.Correct && o.RecordID != "" {
		ds := s.datasetNamed(o.Dataset)
		if ds == nil {
			return 0, nil, errConflict("the objection's dataset is no longer in the catalogue")
		}
		if recipients, e = s.receivers(ctx, ds, o.RecordID); e != nil {
			return 0, nil, e
		}
	}
	out, err := s.hub.ActOnObjection(ctx, o.ID, act, actor(x.principal), recipients)
	if err != nil {
		return 0, nil, hubError(err)
	}
	s.made(ctx, x, out.Transitions)
	s.pushNotices(ctx, out.Notices)
	return http.StatusOK, out.Objection, nil
}

// listNotices is GET /v1/notices: the notices sent to the caller's
// department.
func (s *Server) listNotices(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	f, e := stateFilter(r)
	if e != nil {
		return 0, nil, e
	}
	ns, err := s.hub.Notices(ctx, x.principal.Dept)
	if err != nil {
		return 0, nil, hubError(err)
	}
	out := []noticeView{}
	for _, n := range ns {
		if f.State == "" || n.State == f.State {
			v, e := s.noticeView(ctx, n)
			if e != nil {
				return 0, nil, e
			}
			out = append(out, v)
		}
	}
	x.ev.Rows = len(out)
	return http.StatusOK, map[string]any{"notices": out}, nil
}

// noticeView is a notice as its department reads it: the record by its
// id only when the department received the id in clear, and always by
// the releases that carried it to the department (their request ids), so
// that a notice never tells more of a record than the department was
// given — a correction of a record named by a person's ID number does
// not hand the ID to a department that received it masked.
type noticeView struct {
	*hub.Notice
	RecordID string   `json:"record_id,omitempty"`
	Releases []string `json:"releases"`
}

// noticeView finds what n's department received of n's record.
func (s *Server) noticeView(ctx context.Context, n *hub.Notice) (noticeView, *Error) {
	v := noticeView{Notice: n, Releases: []string{}}
	ds := s.datasetNamed(n.Dataset)
	if ds == nil {
		return v, nil
	}
	rels, e := s.releasesOf(ctx, ds, n.RecordID)
	if e != nil {
		return v, e
	}
	for _, r := range rels {
		if r.Dept != n.Dept {
			continue
		}
		v.Releases = append(v.Releases, r.RequestID)
		if r.Fields[ds.cfg.IDField] == "keep" {
			v.RecordID = n.RecordID
		}
	}
	return v, nil
}

// ackNotice is POST /v1/notices/{id}/ack.
func (s *Server) ackNotice(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	id := r.PathValue("id")
	n, err := s.hub.Store().Notice(ctx, id)
	if err != nil {
		return 0, nil, hubError(err)
	}
	if n.Dept != x.principal.Dept {
		return 0, nil, errNotFound("no such notice")
	}
	x.ev.Object = n.ID
	out, err := s.hub.AckNotice(ctx, id, actor(x.principal))
	if err != nil {
		return 0, nil, hubError(err)
	}
	s.made(ctx, x, out.Transitions)
	v, e := s.noticeView(ctx, out.Notices[0])
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, v, nil
}
