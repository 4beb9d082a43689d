package gateway

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
)

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

	x.tap = s.newReleaseTap(x, ds)

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
	if e := checkID(id); e != nil {
		return e
	}
	if !d.Plan.Releases(ds.cfg.IDField) && !d.AllowsMaskedFilter(ds.cfg.IDField) {
		return errForbidden(fmt.Sprintf("lookup by %s is not allowed: the caller does not receive it unmasked", ds.cfg.IDField))
	}
	return nil
}

// checkID refuses a record id that is not one path segment.
func checkID(id string) *Error {
	if len(id) > 256 || id == "" || id == "." || id == ".." || strings.ContainsFunc(id, func(r rune) bool {
		return r == '/' || r == '\\' || r < 0x20 || r == 0x7f
	}) {
		return errBadRequest("malformed id: an id is one path segment without slashes or control characters")
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
	var kept []bool
	if x.kTable != nil {
		if sp, kept, err = s.suppressSmallClasses(sp, x, &st); err != nil {
			return errInternal(err)
		}
	}
	if x.lookup && st.Released == 0 {
		sp.Close()
		return errNotFound("no such record")
	}
	x.ev.Rows = st.Released
	var marks []disputedMark
	if x.tap != nil {
		x.ev.Released, marks, err = x.tap.result(kept, func(part *audit.Released) error {
			return s.recordNames(resp.Request.Context(), x, part)
		})
		x.tap.recycle()
		x.tap = nil
		if err == nil {
			err = markDisputed(sp, marks)
		}
		if err != nil {
			sp.Close()
			if e, ok := err.(*Error); ok {
				return e
			}
			return errInternal(err)
		}
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
	s.indexRelease(resp.Request.Context(), x)
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
// kFilter into a second spool, which it returns, closing sp, with
// whether each record was kept: a record of a class below min_k (or
// min_l) is left out and counted as suppressed.
// The filter runs here, after the transform, rather than inside it, so
// that the transform stays the pure function of one body it is, and
// memory stays bounded by the largest record: both bodies are spooled.
func (s *Server) suppressSmallClasses(sp *spool, x *exchange, st *anonymize.Stats) (*spool, []bool, error) {
	defer sp.Close()
	if err := sp.rewind(); err != nil {
		return nil, nil, err
	}
	limits := s.cfg.Limits
	out := newSpool(int(limits.SpoolMemoryBytes), limits.SpoolDir)
	var kept []bool
	released, suppressed, err := kFilter(out, sp, x.kTable, func(ok bool) { kept = append(kept, ok) })
	if err != nil {
		out.Close()
		return nil, nil, err
	}
	st.Released, st.Suppressed = released, st.Suppressed+suppressed
	return out, kept, nil
}

// copyBuffers lends the proxy 32 KiB buffers for copying responses.
type copyBuffers struct{}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyPool.Put(&b) }

var _ httputil.BufferPool = copyBuffers{}
var _ io.Reader = (*spool)(nil)
