package gateway

// Reading every page of a dataset through a plan: what a statistics
// release aggregates (stats_read.go) and what a risk report assesses
// (risk.go) are both a whole view of a dataset, read page by page.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/anonymize/risk"
	"github.com/sluicegw/sluice/policy"
)

// pageRead is a read of every page of a dataset.
type pageRead struct {
	ds *dataset
	// query is the upstream query (allowed filters and pushed-down row
	// filters); page and page_size are set for each page.
	query url.Values
	// plan transforms each page, and env is its release environment
	// (whose pseudonyms).
	plan *anonymize.Plan
	env  *anonymize.Env
	// units, if set, is a plan of the same rows that keeps only the
	// dataset's privacy unit, in clear: each page is transformed by both,
	// and feed is given each record's unit beside it. The units are never
	// released; they say whose record it is.
	units *anonymize.Plan
	// reader says who reads, for the 413: "a statistics request".
	reader string
	// hint, if any, follows the 413's message: what the caller can do.
	hint string
}

// readPages reads rd's dataset page by page (stats_page_size records a
// page), each page through rd's plan, and hands every record it releases
// to feed — with its privacy unit ([risk.UnitOf]) when rd.units is set,
// "" otherwise — until a page comes back empty, within the dataset's
// stats_timeout (504). More than max_records records is 413.
func (s *Server) readPages(ctx context.Context, requestID string, rd pageRead, feed func(rec map[string]json.RawMessage, unit string) *Error) *Error {
	ds, cfg := rd.ds, rd.ds.cfg
	ctx, cancel := ds.src.readDeadline(ctx, cfg)
	defer cancel()
	shape := anonymize.Shape{Records: *cfg.Records}
	limits := anonymize.Limits{MaxRecordBytes: int(s.cfg.Limits.MaxRecordBytes), MaxBodyBytes: int64(s.cfg.Limits.MaxResponseBytes)}
	var buf, ubuf bytes.Buffer
	read := 0
	for page := 1; ; page++ {
		q := url.Values{}
		for k, vs := range rd.query {
			q[k] = vs
		}
		q.Set("page", strconv.Itoa(page))
		q.Set("page_size", strconv.Itoa(cfg.StatsPageSize))
		buf.Reset()
		ubuf.Reset()
		var st anonymize.Stats
		err := ds.src.fetch(ctx, requestID, ds.src.url(cfg, "", q), func(body io.Reader) (err error) {
			if rd.units == nil {
				st, err = rd.plan.Transform(&buf, body, shape, rd.env, limits)
				return err
			}
			// Both plans read the same page: it is held, within the
			// response limit, as the transform would hold its output.
			raw, err := io.ReadAll(io.LimitReader(body, limits.MaxBodyBytes+1))
			if err != nil {
				return err
			}
			if st, err = rd.plan.Transform(&buf, bytes.NewReader(raw), shape, rd.env, limits); err != nil {
				return err
			}
			_, err = rd.units.Transform(&ubuf, bytes.NewReader(raw), shape, rd.env, limits)
			return err
		})
		if err != nil {
			return s.departmentFailure(err)
		}
		read += st.Records
		if read > cfg.MaxRecords {
			return errTooLarge(fmt.Sprintf("the dataset holds more than %d records, the most %s reads%s", cfg.MaxRecords, rd.reader, rd.hint), nil)
		}
		if st.Records == 0 {
			return nil
		}
		var body, units struct {
			Items []map[string]json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(buf.Bytes(), &body); err != nil {
			return errInternal(fmt.Errorf("read page: %w", err))
		}
		if rd.units != nil {
			if err := json.Unmarshal(ubuf.Bytes(), &units); err != nil {
				return errInternal(fmt.Errorf("read page units: %w", err))
			}
			if len(units.Items) != len(body.Items) {
				return errInternal(fmt.Errorf("read page: %d records, %d privacy units", len(body.Items), len(units.Items)))
			}
		}
		unitField := cfg.PrivacyUnit
		for i, rec := range body.Items {
			unit := ""
			if rd.units != nil {
				raw := units.Items[i][unitField]
				if len(raw) == 0 || string(raw) == "null" {
					return errUpstreamInvalid(fmt.Errorf("a record has no privacy unit %q", unitField))
				}
				unit = risk.UnitOf(raw)
			}
			if e := feed(rec, unit); e != nil {
				return s.departmentFailure(e)
			}
		}
	}
}

// wholeView prepares the read of every record a read decision releases —
// through its transform, without its max_rows cap, which bounds one
// response while the caller pages past it — with each record's privacy
// unit when the dataset names one: what a risk report assesses and a
// k-anonymity table counts. It returns the read and the view's fields for
// the risk package (and those released as a constant, listed apart).
func (s *Server) wholeView(x *exchange, d *policy.Decision, reader string) (pageRead, []risk.Field, []string, *Error) {
	ds := x.ds
	spec := d.Plan.Spec()
	spec.MaxRows = 0
	plan, err := anonymize.Compile(spec)
	if err != nil {
		return pageRead{}, nil, nil, errInternal(fmt.Errorf("%s plan: %w", reader, err))
	}
	query, _, e := upstreamQuery(url.Values{}, ds, d)
	if e != nil {
		return pageRead{}, nil, nil, e
	}
	rd := pageRead{ds: ds, query: query, plan: plan, env: s.env(x), reader: reader}
	if unit := ds.cfg.PrivacyUnit; unit != "" {
		spec.Fields = map[string]anonymize.Rule{unit: {Op: "keep"}}
		if rd.units, err = anonymize.Compile(spec); err != nil {
			return pageRead{}, nil, nil, errInternal(fmt.Errorf("%s units plan: %w", reader, err))
		}
	}
	fields, constant := riskFields(ds, d.Plan.Spec().Fields)
	return rd, fields, constant, nil
}
