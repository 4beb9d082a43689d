package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/anonymize/dp"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
)

// The parameters of a statistics request; any other parameter is a filter.
var statsParams = []string{"metric", "field", "group_by", "epsilon"}

// statsRequest is a parsed GET /v1/{source}/{dataset}/stats.
type statsRequest struct {
	metric  dp.Metric
	field   string
	groupBy string
	epsilon float64
	filters url.Values
}

// parseStatsQuery reads the query. It returns what it could read even
// with an error, so that a refusal is audited with the ε requested.
func parseStatsQuery(q url.Values) (*statsRequest, *Error) {
	req := &statsRequest{filters: url.Values{}}
	for k, vs := range q {
		if !slices.Contains(statsParams, k) {
			req.filters[k] = vs
			continue
		}
		if len(vs) != 1 {
			return req, errBadRequest(k + " must be given once")
		}
	}
	if e := q.Get("epsilon"); e != "" {
		f, err := strconv.ParseFloat(e, 64)
		if err == nil && f > 0 && !math.IsInf(f, 0) {
			req.epsilon = f // audited as asked, even when refused
		}
		// Refused here, before the policy, the ledger or the department
		// is asked: an ε the noise or the ledger cannot honour must never
		// fail later, after the records were read.
		if err != nil || dp.CheckEpsilon(f) != nil {
			return req, errBadRequest(fmt.Sprintf("epsilon must be a number between %g and %g", dp.MinEpsilon, float64(dp.MaxEpsilon)))
		}
	}
	req.metric, req.field, req.groupBy = dp.Metric(q.Get("metric")), q.Get("field"), q.Get("group_by")
	switch {
	case req.metric == "":
		return req, errBadRequest("metric is required: count, sum or mean")
	case req.metric != dp.Count && req.metric != dp.Sum && req.metric != dp.Mean:
		return req, errBadRequest("metric must be count, sum or mean")
	case req.epsilon == 0:
		return req, errBadRequest("epsilon is required: the privacy loss this release may spend")
	case req.metric == dp.Count && req.field != "":
		return req, errBadRequest("a count takes no field")
	case req.metric != dp.Count && req.field == "":
		return req, errBadRequest("a " + string(req.metric) + " needs a field")
	case req.filters.Has("page") || req.filters.Has("page_size"):
		return req, errBadRequest("statistics read every page themselves: page and page_size are not accepted")
	}
	return req, nil
}

// statsInClear writes the statistics parameters of x's audit record in
// clear, once read: the metric when it is one, ε when it is a number, and
// field and group_by when they name a field the dataset declares. They
// say what was asked ("count by district", "mean cost by hospital"), not
// anything about a person; filter values, which may be a person's, and
// anything else unread stay keyed-hashed.
func statsInClear(x *exchange, ds *dataset, req *statsRequest) {
	q := x.ev.Query
	if q == nil {
		return
	}
	if m := req.metric; m == dp.Count || m == dp.Sum || m == dp.Mean {
		q["metric"] = []string{string(m)}
	}
	if req.epsilon > 0 {
		q["epsilon"] = []string{strconv.FormatFloat(req.epsilon, 'g', -1, 64)}
	}
	for k, v := range map[string]string{"field": req.field, "group_by": req.groupBy} {
		if _, declared := ds.cfg.Fields[v]; declared && v != "" {
			q[k] = []string{v}
		}
	}
}

// policyQuery is the request as the policy sees it (input.stats).
func (req *statsRequest) policyQuery() *policy.StatsQuery {
	q := &policy.StatsQuery{Metric: string(req.metric), Epsilon: req.epsilon}
	if req.field != "" {
		q.Field = &req.field
	}
	if req.groupBy != "" {
		q.GroupBy = &req.groupBy
	}
	return q
}

// statsJob is an allowed statistics request, ready to run.
type statsJob struct {
	ds      *dataset
	req     *statsRequest
	query   url.Values      // the upstream query: allowed filters and pushed-down row filters
	plan    *anonymize.Plan // keeps what the aggregation reads, under the decision's row filter
	integer bool            // the field is an integer: exact integer sums
	records *dp.Query       // a release of record-level data, or
	noise   *dp.NoiseQuery  // noise on an upstream's aggregates
	bounds  *[2]float64
	pop     *population
	cost    dp.Cost
	key     string // the normalised query, for the answer cache
}

// planStats checks the request against the decision's stats limits and
// the dataset's configuration, and plans it.
func (s *Server) planStats(ds *dataset, d *policy.Decision, req *statsRequest) (*statsJob, *Error) {
	lim, cfg := d.Stats, ds.cfg
	switch {
	case !slices.Contains(lim.Metrics, string(req.metric)):
		return nil, errForbidden(fmt.Sprintf("metric %q is not allowed (allowed: %s)", req.metric, strings.Join(lim.Metrics, ", ")))
	case req.epsilon > lim.MaxEpsilon:
		return nil, errForbidden(fmt.Sprintf("epsilon %g is above the policy's maximum of %g per query", req.epsilon, lim.MaxEpsilon))
	case req.groupBy != "" && !slices.Contains(lim.GroupBy, req.groupBy):
		return nil, errForbidden(fmt.Sprintf("group_by %q is not allowed (allowed: %s)", req.groupBy, strings.Join(lim.GroupBy, ", ")))
	case lim.ConsumerBudget <= 0:
		return nil, errForbidden("the policy grants no privacy budget for statistics on this dataset")
	case ds.pop == nil:
		return nil, errForbidden("this dataset belongs to no population with a privacy budget: it serves no statistics")
	}
	job := &statsJob{ds: ds, req: req, pop: ds.pop}
	accounting := job.pop.accounting
	if req.groupBy != "" {
		if _, ok := cfg.Fields[req.groupBy]; !ok && cfg.Fields != nil {
			return nil, errBadRequest(fmt.Sprintf("group_by %q is not a field of this dataset", req.groupBy))
		}
	}
	if req.field != "" {
		b, ok := lim.Bounds[req.field]
		if !ok {
			return nil, errForbidden(fmt.Sprintf("field %q has no bounds in the policy: sums and means need them", req.field))
		}
		job.bounds = &b
		switch cfg.Fields[req.field].Type {
		case "integer":
			job.integer = true
		case "number":
		default:
			return nil, errBadRequest(fmt.Sprintf("field %q is not declared numeric (integer or number)", req.field))
		}
	}
	q, e := statsUpstreamQuery(req.filters, ds, d)
	if e != nil {
		return nil, e
	}
	job.query = q
	var domain []string
	if req.groupBy != "" {
		if dom, ok := cfg.Domains[req.groupBy]; ok {
			domain = dom
		}
	}
	keep := map[string]anonymize.Rule{}
	for _, f := range []string{cfg.PrivacyUnit, req.groupBy, req.field} {
		if f != "" {
			keep[f] = anonymize.Rule{Op: "keep"}
		}
	}
	if n := cfg.Noise; n != nil {
		delete(keep, cfg.PrivacyUnit)
		sens, ok := n.Sensitivity[req.field]
		switch {
		case req.metric != dp.Sum:
			return nil, errBadRequest("this dataset is aggregated upstream: ask for the sum of one of its fields")
		case !ok:
			return nil, errForbidden(fmt.Sprintf("field %q has no declared sensitivity", req.field))
		case req.groupBy != "" && domain == nil:
			return nil, errForbidden(fmt.Sprintf("group_by %q has no public domain: aggregates cannot be grouped by it", req.groupBy))
		}
		job.noise = &dp.NoiseQuery{Epsilon: req.epsilon, Gaussian: n.Mechanism == "gaussian", MaxPartitions: n.MaxRows,
			Sensitivity: sens, Integer: job.integer, Grouped: req.groupBy != "", Domain: domain, Accounting: accounting}
		if job.noise.Gaussian {
			job.noise.Delta = n.Delta
		}
		job.cost = job.noise.Cost()
	} else {
		if cfg.PrivacyUnit == "" {
			return nil, errForbidden("this dataset declares no privacy unit: its records cannot be released as statistics")
		}
		job.records = &dp.Query{Metric: req.metric, Epsilon: req.epsilon, Grouped: req.groupBy != "", Domain: domain,
			MaxPartitions: cfg.MaxPartitions, Integer: job.integer, Accounting: accounting}
		if job.bounds != nil {
			job.records.Lower, job.records.Upper = job.bounds[0], job.bounds[1]
		}
		if job.records.SelectsPartitions() {
			job.records.Delta = cfg.Delta
		}
		if accounting == dp.ZCDP {
			job.records.NoiseDelta = cfg.Delta
		}
		job.cost = job.records.Cost()
	}
	spec := d.Plan.Spec()
	plan, err := anonymize.Compile(anonymize.Spec{Fields: keep, Rows: spec.Rows, Suppress: spec.Suppress})
	if err != nil {
		return nil, errInternal(fmt.Errorf("stats plan: %w", err))
	}
	job.plan = plan
	job.key = statsKey(ds, req, job, plan)
	return job, nil
}

// statsUpstreamQuery guards a statistics request's filters as record reads
// are guarded, parameter by parameter against the decision, and pushes the
// decision's row filters down where the dataset can. Unlike a record
// read, a filter on a field the caller does not see is no oracle here:
// the answer is differentially private whatever subset it describes.
func statsUpstreamQuery(filters url.Values, ds *dataset, d *policy.Decision) (url.Values, *Error) {
	out := url.Values{}
	for k, vs := range filters {
		if !d.AllowsParam(k) {
			return nil, errForbidden(fmt.Sprintf("query parameter %q is not allowed", k))
		}
		out[k] = vs
	}
	for field, vals := range d.Plan.Pushdown() {
		if param := ds.cfg.Filters[field]; param != "" && !out.Has(param) {
			out[param] = vals
		}
	}
	return out, nil
}

// statsKey normalises a query for the answer cache: everything that shapes
// the answer's distribution — the dataset, the question, the filters, the
// decision's row filter and bounds, and the dataset's statistics settings —
// and nothing about who asks.
func statsKey(ds *dataset, req *statsRequest, job *statsJob, plan *anonymize.Plan) string {
	filters := map[string][]string{}
	for k, vs := range job.query {
		filters[k] = slices.Sorted(slices.Values(vs))
	}
	b, _ := json.Marshal(struct {
		V       int                 `json:"v"`
		Dataset string              `json:"dataset"`
		Metric  dp.Metric           `json:"metric"`
		Field   string              `json:"field"`
		GroupBy string              `json:"group_by"`
		Epsilon string              `json:"epsilon"`
		Filters map[string][]string `json:"filters"`
		Rows    []string            `json:"rows"`
		Records *dp.Query           `json:"records"`
		Noise   *dp.NoiseQuery      `json:"noise"`
		Unit    string              `json:"unit"`
		Member  string              `json:"records_member"`
	}{1, ds.src.cfg.Name + "/" + ds.cfg.Name, req.metric, req.field, req.groupBy,
		strconv.FormatFloat(req.epsilon, 'g', -1, 64), filters, plan.RowFilters(), job.records, job.noise,
		ds.cfg.PrivacyUnit, *ds.cfg.Records})
	sum := sha256.Sum256(b)
	return "stats/v1/" + hex.EncodeToString(sum[:])
}

// statsAnswer is a release as it is cached: the same for every caller.
type statsAnswer struct {
	Metric          string              `json:"metric"`
	Field           string              `json:"field,omitempty"`
	GroupBy         string              `json:"group_by,omitempty"`
	Filters         map[string][]string `json:"filters,omitempty"`
	Epsilon         float64             `json:"epsilon"`
	Delta           float64             `json:"delta"`
	Mechanism       string              `json:"mechanism"`
	Selection       string              `json:"partition_selection"`
	Bounding        *statsBounding      `json:"contribution_bounds"`
	ConfidenceLevel float64             `json:"confidence_level"`
	Partitions      []statsPartition    `json:"partitions"`
	ReleasedAt      time.Time           `json:"released_at"`
}

// statsBounding says how much one person could move the answer.
type statsBounding struct {
	// PrivacyUnit and the per-unit limits, for record-level data.
	PrivacyUnit   string `json:"privacy_unit,omitempty"`
	MaxPartitions int    `json:"max_partitions,omitempty"`
	PerPartition  int    `json:"per_partition,omitempty"`
	// Bounds clamp a unit's sum in a partition.
	Bounds *[2]float64 `json:"bounds,omitempty"`
	// MaxRows and Sensitivity, declared for upstream aggregates.
	MaxRows     int      `json:"max_rows,omitempty"`
	Sensitivity *float64 `json:"sensitivity,omitempty"`
}

type statsPartition struct {
	// Key is the group value; absent for an ungrouped total.
	Key   *string    `json:"key,omitempty"`
	Value float64    `json:"value"`
	CI95  [2]float64 `json:"ci95"`
}

// statsResponse is what the caller gets: the answer, what this request
// spent and from which account, and what the caller's own accounts have
// left.
type statsResponse struct {
	Source  string `json:"source"`
	Dataset string `json:"dataset"`
	statsAnswer
	// Counts says, for a count, what is counted: people (the privacy
	// unit), each once in a group however many records they have, or
	// the department's rows when it aggregates.
	Counts string `json:"counts,omitempty"`
	// Accounting is the population's accountant: pure or zcdp.
	Accounting string `json:"accounting"`
	// Account is what was charged: the population, the allocation and
	// the budget period.
	Account statsAccount `json:"account"`
	// Guarantee states the population's budget in words.
	Guarantee string `json:"guarantee"`
	// Spent is what this request charged: nothing when cached.
	Spent     statsSpent     `json:"spent"`
	Remaining statsRemaining `json:"remaining"`
	Cached    bool           `json:"cached"`
}

// stats serves GET /v1/{source}/{dataset}/stats in the order invariant 7
// sets: authenticate → parse and validate → decide → plan → answer from
// the cache, or reserve the cost durably → read every page → bound,
// aggregate, add noise → cache → audit → release. Once the cost is
// reserved it stands, whatever happens next: no failure after the first
// upstream read is free. Nothing record-level ever leaves.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, "stats")
	ds, ok := s.openDataset(w, r, x)
	if !ok {
		return
	}
	req, e := parseStatsQuery(x.params(r))
	x.ev.EpsilonRequested = req.epsilon
	statsInClear(x, ds, req)
	if e != nil {
		s.fail(w, r, x, e)
		return
	}
	set := s.policies.Current()
	x.ev.PolicyRevision = set.Revision()
	in := s.input(x, r, "stats", ds)
	in.Stats = req.policyQuery()
	d := s.decide(r.Context(), x, set, in)
	x.decision = d
	x.ev.Reason = d.Reason
	if !d.Allow || d.Stats == nil {
		s.fail(w, r, x, errForbidden(denyMessage(d)))
		return
	}
	job, e := s.planStats(ds, d, req)
	if e == nil {
		e = s.refuseRecordReaders(r.Context(), set, in)
	}
	if e != nil {
		x.ev.Decision, x.ev.Reason = "deny", e.Msg // the policy allowed statistics; its limits refuse these
		s.fail(w, r, x, e)
		return
	}
	ch, e := job.pop.newCharge(x.principal, d.Stats, x.start)
	if e != nil {
		x.ev.Decision, x.ev.Reason = "deny", e.Msg
		s.fail(w, r, x, e)
		return
	}
	x.ev.Obligations = &audit.Obligations{Rows: d.Plan.RowFilters(), Params: sortedKeys(job.query),
		Population: ch.pop.name, Allocation: ch.class, Accounting: ch.pop.cfg.Accounting,
		ConsumerBudget: ch.consumerEpsilon, OrgBudget: ch.orgEpsilon}
	if !ch.period.Start.IsZero() {
		x.ev.Obligations.Period = ch.period.Start.Format(time.RFC3339)
	}
	if s.ledger == nil || s.answers == nil {
		s.fail(w, r, x, errUnavailable("statistics need a budget ledger: set state.path in the configuration", nil))
		return
	}
	x.ev.Decision = "allow"
	ctx := r.Context()
	// One release per query at a time in this process, so that concurrent
	// identical queries share one answer and one charge.
	defer s.statsLocks.lock(job.key)()
	if answer, ok, err := s.answers.Answer(ctx, job.key); err != nil {
		s.fail(w, r, x, errUnavailable("the answer cache is unavailable", err))
		return
	} else if ok {
		spent, err := s.ledger.Spent(ctx, ch.scope, ch.keys()...)
		if err != nil {
			s.fail(w, r, x, errUnavailable("the budget ledger is unavailable", err))
			return
		}
		s.answerStats(w, r, x, ch, answer, true, nil, spent)
		return
	}
	// Reserve before the first read: from here on the cost stands.
	receipt, err := s.ledger.Charge(context.WithoutCancel(ctx), state.Charge{RequestID: x.id, Scope: ch.scope,
		Cost: ch.ledgerCost(job.cost), Accounts: ch.accounts})
	var ex *state.ExhaustedError
	switch {
	case errors.As(err, &ex):
		e := ch.exhausted(ex, job.cost)
		x.ev.Decision, x.ev.Reason = "deny", e.Msg // the policy allowed; the budget refuses
		s.fail(w, r, x, e)
		return
	case err != nil:
		s.fail(w, r, x, errUnavailable("the budget ledger is unavailable", err))
		return
	}
	s.recordSpent(x, job, ch, receipt)
	res, e := s.runStats(ctx, x, job)
	if e != nil {
		s.fail(w, r, x, e)
		return
	}
	answer, err := json.Marshal(s.newAnswer(job, res))
	if err != nil {
		s.fail(w, r, x, errInternal(err))
		return
	}
	stored, err := s.answers.StoreAnswer(ctx, job.key, answer)
	if err != nil {
		s.fail(w, r, x, errUnavailable("the answer cache is unavailable", err))
		return
	}
	// Another replica may have released this query first: its answer is
	// the answer, although this request was charged too.
	s.answerStats(w, r, x, ch, stored, !bytes.Equal(stored, answer), &job.cost, receipt.Spent)
}

// recordSpent puts a reservation in the audit record and the metrics.
func (s *Server) recordSpent(x *exchange, job *statsJob, ch *charge, receipt state.Receipt) {
	o := x.ev.Obligations
	o.EpsilonSpent, o.DeltaSpent = job.cost.Epsilon, job.cost.Delta
	if ch.pop.accounting == dp.ZCDP {
		o.RhoSpent = job.cost.Rho
	}
	if !receipt.Replayed {
		s.metrics.epsilon.WithLabelValues(x.ev.Source, x.ev.Dataset).Add(job.cost.Epsilon)
	}
}

// refuseRecordReaders refuses statistics to a caller the policy lets
// read the dataset's records: the records tell it the exact answers, so
// the noise would protect no one and the stated guarantee would mislead.
// A read decision that cannot be made refuses too.
func (s *Server) refuseRecordReaders(ctx context.Context, set *policy.Set, in *policy.Input) *Error {
	read := *in
	read.Action, read.Stats = "read", nil
	read.Request.Path = strings.TrimSuffix(in.Request.Path, "/stats")
	read.Request.Params = map[string][]string{}
	d, err := set.Decide(ctx, &read)
	if err != nil || d.Allow {
		return errForbidden("this caller may read the dataset's records: statistics about it would protect no one, so none are released")
	}
	return nil
}

// newAnswer turns a release into its cached form.
func (s *Server) newAnswer(job *statsJob, res *dp.Result) *statsAnswer {
	a := &statsAnswer{
		Metric: string(job.req.metric), Field: job.req.field, GroupBy: job.req.groupBy,
		Epsilon: res.Loss.Epsilon, Delta: res.Loss.Delta, Mechanism: res.Mechanism, Selection: res.Selection,
		ConfidenceLevel: dp.Confidence, ReleasedAt: s.now().UTC(), Partitions: []statsPartition{},
	}
	if len(job.req.filters) > 0 {
		a.Filters = job.req.filters
	}
	if q := job.records; q != nil {
		a.Bounding = &statsBounding{PrivacyUnit: job.ds.cfg.PrivacyUnit, MaxPartitions: q.MaxPartitions, PerPartition: 1, Bounds: job.bounds}
	} else {
		sens := job.noise.Sensitivity
		a.Bounding = &statsBounding{MaxRows: job.noise.MaxPartitions, Sensitivity: &sens}
	}
	for _, p := range res.Partitions {
		out := statsPartition{Value: p.Value, CI95: [2]float64{p.Low, p.High}}
		if job.req.groupBy != "" {
			out.Key = &p.Key
		}
		a.Partitions = append(a.Partitions, out)
	}
	return a
}

// answerStats audits and then releases an answer with what the caller's
// own accounts have left; spent is nil for a cached answer.
func (s *Server) answerStats(w http.ResponseWriter, r *http.Request, x *exchange, ch *charge, answer []byte,
	cached bool, spent *dp.Cost, balance []state.Budget) {
	resp := statsResponse{Source: x.ev.Source, Dataset: x.ev.Dataset, Cached: cached, Accounting: ch.pop.cfg.Accounting,
		Account: ch.account(), Guarantee: ch.guarantee(), Spent: ch.spent(spent), Remaining: ch.remaining(balance)}
	if err := json.Unmarshal(answer, &resp.statsAnswer); err != nil {
		s.fail(w, r, x, errInternal(fmt.Errorf("cached answer: %w", err)))
		return
	}
	if resp.Metric == string(dp.Count) && resp.Bounding != nil {
		resp.Counts = "rows, as the department aggregates them"
		if u := resp.Bounding.PrivacyUnit; u != "" {
			resp.Counts = "people (" + u + ")"
		}
	}
	x.ev.Rows = len(resp.Partitions)
	s.answerJSON(w, r, x, resp)
}
