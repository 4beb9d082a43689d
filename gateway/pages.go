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
	// reader says who reads, for the 413: "a statistics request".
	reader string
	// hint, if any, follows the 413's message: what the caller can do.
	hint string
}

// readPages reads rd's dataset page by page (stats_page_size records a
// page), each page through rd's plan, and hands every record it releases
// to feed, until a page comes back empty, within the dataset's
// stats_timeout (504). More than max_records records is 413.
func (s *Server) readPages(ctx context.Context, requestID string, rd pageRead, feed func(map[string]json.RawMessage) *Error) *Error {
	ds, cfg := rd.ds, rd.ds.cfg
	ctx, cancel := ds.src.readDeadline(ctx, cfg)
	defer cancel()
	shape := anonymize.Shape{Records: *cfg.Records}
	limits := anonymize.Limits{MaxRecordBytes: int(s.cfg.Limits.MaxRecordBytes), MaxBodyBytes: int64(s.cfg.Limits.MaxResponseBytes)}
	var buf bytes.Buffer
	read := 0
	for page := 1; ; page++ {
		q := url.Values{}
		for k, vs := range rd.query {
			q[k] = vs
		}
		q.Set("page", strconv.Itoa(page))
		q.Set("page_size", strconv.Itoa(cfg.StatsPageSize))
		buf.Reset()
		st, err := s.fetchPage(ctx, ds.src, requestID, ds.src.url(cfg, "", q), rd.plan, &buf, shape, rd.env, limits)
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
		var body struct {
			Items []map[string]json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(buf.Bytes(), &body); err != nil {
			return errInternal(fmt.Errorf("read page: %w", err))
		}
		for _, rec := range body.Items {
			if e := feed(rec); e != nil {
				return s.departmentFailure(e)
			}
		}
	}
}

// fetchPage gets one page from the department and transforms it into buf.
func (s *Server) fetchPage(ctx context.Context, src *source, requestID string, target *url.URL,
	plan *anonymize.Plan, buf *bytes.Buffer, shape anonymize.Shape, env *anonymize.Env, lim anonymize.Limits) (anonymize.Stats, error) {
	var st anonymize.Stats
	err := src.fetch(ctx, requestID, target, func(body io.Reader) (err error) {
		st, err = plan.Transform(buf, body, shape, env, lim)
		return err
	})
	return st, err
}
