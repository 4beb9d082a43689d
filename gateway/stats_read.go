package gateway

// Reading a statistics release's records from the department and
// aggregating them: the work that follows the reservation in stats.go,
// so every failure here is charged.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/sluicegw/sluice/anonymize/dp"
)

// runStats reads the records and releases them.
func (s *Server) runStats(ctx context.Context, x *exchange, job *statsJob) (*dp.Result, *Error) {
	opt := s.dpOptions()
	var (
		feed    func(rec map[string]json.RawMessage, unit string) *Error
		release func() (*dp.Result, error)
	)
	if job.noise != nil {
		n, err := dp.NewNoiser(*job.noise, opt)
		if err != nil {
			return nil, errInternal(err)
		}
		feed = func(rec map[string]json.RawMessage, _ string) *Error {
			part, ok := groupKey(rec, job.req.groupBy)
			if !ok {
				return nil
			}
			return addValue(rec, job, func(i int64) { n.AddInt(part, i) }, func(f float64) { n.AddFloat(part, f) })
		}
		release = n.Release
	} else {
		a, err := dp.NewAggregator(*job.records, opt)
		if err != nil {
			return nil, errInternal(err)
		}
		unitField := job.ds.cfg.PrivacyUnit
		feed = func(rec map[string]json.RawMessage, _ string) *Error {
			unit, ok := unitKey(rec[unitField])
			if !ok {
				return errUpstreamInvalid(fmt.Errorf("a record has no usable privacy unit %q", unitField))
			}
			part, ok := groupKey(rec, job.req.groupBy)
			if !ok {
				return nil
			}
			if job.req.metric == dp.Count {
				a.Add(unit, part)
				return nil
			}
			return addValue(rec, job, func(i int64) { a.AddInt(unit, part, i) }, func(f float64) { a.AddFloat(unit, part, f) })
		}
		release = a.Release
	}
	// The release was paid for before the first page: every failure of
	// the read is charged.
	rd := pageRead{ds: job.ds, query: job.query, plan: job.plan, env: s.env(x),
		reader: "a statistics request", hint: "; narrow it with a filter"}
	if e := s.readPages(ctx, x.id, rd, feed); e != nil {
		return nil, e
	}
	s.lap(x, stageUpstream)
	res, err := release()
	if err != nil {
		return nil, errInternal(err)
	}
	s.lap(x, stageTransform)
	return res, nil
}

// unitKey identifies a privacy unit by its JSON value: a string or a number.
func unitKey(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return "", false
		}
		return s, true
	case '{', '[', 'n', 't', 'f':
		return "", false
	}
	return "#" + string(raw), true // a number, kept apart from strings
}

// groupKey is a record's partition: its group-by value as text ("" when
// ungrouped); false when the record has no scalar value there.
func groupKey(rec map[string]json.RawMessage, field string) (string, bool) {
	if field == "" {
		return "", true
	}
	raw := rec[field]
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err == nil
	case 't', 'f':
		return string(raw), true
	case '{', '[', 'n':
		return "", false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatFloat(f, 'g', -1, 64), true
}

// addValue adds a record's field value. A record without a number there
// adds nothing; a non-integer in an integer field is an upstream fault.
func addValue(rec map[string]json.RawMessage, job *statsJob, addInt func(int64), addFloat func(float64)) *Error {
	raw := rec[job.req.field]
	if len(raw) == 0 || raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || raw[0] == 'n' || raw[0] == 't' || raw[0] == 'f' {
		return nil
	}
	if job.integer {
		i, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return errUpstreamInvalid(fmt.Errorf("field %q holds %.32s, not an integer", job.req.field, raw))
		}
		addInt(i)
		return nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) {
		return errUpstreamInvalid(fmt.Errorf("field %q holds %.32s, not a finite number", job.req.field, raw))
	}
	addFloat(f)
	return nil
}

// dpOptions are the randomness of one release.
func (s *Server) dpOptions() dp.Options {
	if s.dpRand != nil {
		return s.dpRand()
	}
	return dp.Options{}
}
