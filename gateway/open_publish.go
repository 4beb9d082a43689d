package gateway

// Computing open releases: once per period, by the gateway itself, in
// the order statistics are computed (plan → reserve the cost → read →
// aggregate → audit → cache), with the release's period as the charge's
// request id, so that no number of visitors, retries or replicas charges
// a period twice.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/anonymize/dp"
	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
	"github.com/sluicegw/sluice/state"
)

// openAllocation is the allocation of a population open releases draw on.
const openAllocation = "open"

// openLookBack bounds how many earlier periods a release's last good
// table is looked for in, when the current period's is missing.
const openLookBack = 24

// openRetry is how long a failed release waits before it is tried again
// (the charge stands, so a retry costs nothing more).
const openRetry = time.Minute

// planOpen plans the declared releases: a release the gateway could
// never make is an error at start, naming the release.
func (s *Server) planOpen() error {
	if !s.cfg.Open.Enabled {
		return nil
	}
	o := &openData{latest: map[string]*openServed{}}
	for i := range s.cfg.Open.Releases {
		rc := &s.cfg.Open.Releases[i]
		rel, err := s.planRelease(rc)
		if err != nil {
			return fmt.Errorf("open.releases[%d] (%s): %w", i, rc.ID, err)
		}
		o.releases = append(o.releases, rel)
	}
	s.open = o
	return nil
}

func (s *Server) planRelease(rc *OpenReleaseConfig) (*openRelease, error) {
	srcName, dsName, _ := strings.Cut(rc.Dataset, "/")
	src := s.sources[srcName]
	if src == nil || src.datasets[dsName] == nil {
		return nil, fmt.Errorf("dataset %q is not configured", rc.Dataset)
	}
	ds := src.datasets[dsName]
	if ds.pop == nil {
		return nil, fmt.Errorf("dataset %q belongs to no population with a privacy budget", rc.Dataset)
	}
	alloc, ok := ds.pop.cfg.Allocations[openAllocation]
	if !ok {
		return nil, fmt.Errorf("population %q has no %q allocation to charge", ds.pop.name, openAllocation)
	}
	if rc.GroupBy != "" {
		if _, ok := ds.cfg.Domains[rc.GroupBy]; !ok {
			return nil, fmt.Errorf("group_by %q has no public domain in %s: an open table lists every group", rc.GroupBy, rc.Dataset)
		}
	}
	lim := &policy.StatsLimits{Metrics: []string{rc.Metric}, MaxEpsilon: rc.Epsilon, Account: openAllocation, ConsumerBudget: alloc}
	if rc.GroupBy != "" {
		lim.GroupBy = []string{rc.GroupBy}
	}
	if rc.Field != "" {
		lim.Bounds = map[string][2]float64{rc.Field: {rc.Bounds[0], rc.Bounds[1]}}
	}
	plan, err := anonymize.Compile(anonymize.Spec{})
	if err != nil {
		return nil, err
	}
	req := &statsRequest{metric: dp.Metric(rc.Metric), field: rc.Field, groupBy: rc.GroupBy, epsilon: rc.Epsilon}
	job, e := s.planStats(ds, &policy.Decision{Allow: true, Stats: lim, Plan: plan}, req)
	if e != nil {
		return nil, errors.New(e.Msg)
	}
	if job.cost.Epsilon > alloc {
		return nil, fmt.Errorf("a release costs ε=%g, more than the whole %q allocation of %g", job.cost.Epsilon, openAllocation, alloc)
	}
	return &openRelease{cfg: rc, ds: ds, job: job, lim: lim, every: time.Duration(rc.Every)}, nil
}

// periodAt is the release's period in force at t, counted from the Unix
// epoch so that every replica agrees.
func (rel *openRelease) periodAt(t time.Time) OpenPeriod {
	n := int64(rel.every / time.Second)
	sec := t.Unix()
	start := sec - ((sec%n)+n)%n
	return OpenPeriod{Every: days(rel.every), Start: time.Unix(start, 0).UTC(), End: time.Unix(start+n, 0).UTC()}
}

// key names one period's release: in the answer cache, and as the
// charge's request id. It includes the planned query, so a changed
// declaration is a new release.
func (rel *openRelease) key(p OpenPeriod) string {
	return "open/v1/" + rel.cfg.ID + "/" + p.Start.Format(time.RFC3339) + "/" + strings.TrimPrefix(rel.job.key, "stats/v1/")[:16]
}

// principal is the consumer a release is charged as: no token names an
// empty issuer, so no caller shares its account.
func (rel *openRelease) principal() *Principal {
	return &Principal{Subject: "open/" + rel.cfg.ID}
}

// keepOpen publishes each release at the start of each period until ctx
// ends. A failed release is retried with back-off, from openRetry up to
// an hour (each attempt is on the trail; the charge stands, so a retry
// costs no budget); one the budget cannot pay waits for the budget's
// next period.
func (s *Server) keepOpen(ctx context.Context) {
	type backoff struct {
		at   time.Time
		wait time.Duration
	}
	retry := map[string]backoff{}
	for {
		next := s.now().Add(time.Hour)
		for _, rel := range s.open.releases {
			now := s.now()
			per := rel.periodAt(now)
			if sv := s.open.served(rel.cfg.ID); sv != nil && sv.table.Current && sv.table.Period.Start.Equal(per.Start) {
				next = earliest(next, per.End)
				continue
			}
			b := retry[rel.cfg.ID]
			if now.Before(b.at) {
				next = earliest(next, b.at)
				continue
			}
			err := s.refreshOpen(ctx, rel, now)
			if err == nil {
				delete(retry, rel.cfg.ID)
				next = earliest(next, per.End)
				continue
			}
			b.wait = min(max(2*b.wait, openRetry), time.Hour)
			b.at = now.Add(b.wait)
			var ex *openExhausted
			if errors.As(err, &ex) {
				b.at = ex.renews
			}
			retry[rel.cfg.ID] = b
			next = earliest(next, b.at)
			s.log.Warn("open release failed; the last good one is served", "release", rel.cfg.ID, "retry", b.at, "error", err)
		}
		t := time.NewTimer(max(time.Second, next.Sub(s.now())))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// openExhausted is a release the open allocation cannot pay for until
// renews (the far future when the budget never renews).
type openExhausted struct {
	err    error
	renews time.Time
}

func (e *openExhausted) Error() string { return e.err.Error() }
func (e *openExhausted) Unwrap() error { return e.err }

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// refreshOpen makes the release of the period in force the one served,
// computing it if no replica has; when it cannot, the last good table of
// an earlier period is served, marked as such, and the error returned.
func (s *Server) refreshOpen(ctx context.Context, rel *openRelease, now time.Time) error {
	per := rel.periodAt(now)
	t, err := s.publish(ctx, rel, per)
	if err == nil {
		t.Current = true
		return s.open.put(t)
	}
	if sv := s.open.served(rel.cfg.ID); sv != nil && !sv.table.Current {
		return err // already serving the last good one
	}
	for k, p := 1, per; k <= openLookBack; k++ {
		p = rel.periodAt(p.Start.Add(-time.Second))
		b, ok, lerr := s.answers.Answer(ctx, rel.key(p))
		if lerr != nil || !ok {
			continue
		}
		var last OpenTable
		if json.Unmarshal(b, &last) != nil {
			continue
		}
		last.Current = false
		last.Note = fmt.Sprintf("the release for %s to %s could not be computed; this is the last good one, released %s",
			per.Start.Format(time.DateOnly), per.End.Format(time.DateOnly), last.ReleasedAt.Format(time.DateOnly))
		if perr := s.open.put(&last); perr != nil {
			return perr
		}
		break
	}
	return err
}

// publish returns the release of period per: the one cached, else a new
// one, computed, charged once, audited and cached.
func (s *Server) publish(ctx context.Context, rel *openRelease, per OpenPeriod) (*OpenTable, error) {
	if s.ledger == nil || s.answers == nil {
		return nil, errors.New("open data needs a budget ledger: set state.path in the configuration")
	}
	key := rel.key(per)
	defer s.statsLocks.lock(key)()
	if b, ok, err := s.answers.Answer(ctx, key); err != nil {
		return nil, fmt.Errorf("the answer cache: %w", err)
	} else if ok {
		var t OpenTable
		return &t, json.Unmarshal(b, &t)
	}
	job, ds := rel.job, rel.ds
	x := &exchange{id: newRequestID(), route: "open", start: s.now(), ds: ds, principal: rel.principal()}
	x.lap = x.start
	x.ev = audit.Event{Time: x.start.UTC(), RequestID: x.id, Subject: rel.principal().Subject, Action: "open.release",
		Method: http.MethodGet, Path: "/open/v1/releases/" + rel.cfg.ID, Source: ds.src.cfg.Name, Dataset: ds.cfg.Name,
		Object: key, Decision: "allow", Status: http.StatusOK, EpsilonRequested: rel.cfg.Epsilon,
		Reason: fmt.Sprintf("open release %s for %s to %s", rel.cfg.ID, per.Start.Format(time.RFC3339), per.End.Format(time.RFC3339))}
	ch, e := ds.pop.newCharge(rel.principal(), rel.lim, x.start)
	if e != nil {
		return nil, s.openFailed(ctx, x, e)
	}
	x.ev.Obligations = &audit.Obligations{Population: ch.pop.name, Allocation: ch.class, Accounting: ch.pop.cfg.Accounting,
		ConsumerBudget: ch.consumerEpsilon}
	if !ch.period.Start.IsZero() {
		x.ev.Obligations.Period = ch.period.Start.Format(time.RFC3339)
	}
	// The period's key is the charge's request id: a retry, or another
	// replica computing the same period, charges nothing again.
	receipt, err := s.ledger.Charge(context.WithoutCancel(ctx), state.Charge{RequestID: key, Scope: ch.scope,
		Cost: ch.ledgerCost(job.cost), Accounts: ch.accounts})
	var ex *state.ExhaustedError
	switch {
	case errors.As(err, &ex):
		x.ev.Decision = "deny"
		renews := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		if !ch.period.Start.IsZero() {
			renews = ch.period.End
		}
		return nil, &openExhausted{err: s.openFailed(ctx, x, ch.exhausted(ex, job.cost)), renews: renews}
	case err != nil:
		return nil, s.openFailed(ctx, x, errUnavailable("the budget ledger is unavailable", err))
	}
	s.recordSpent(x, job, ch, receipt)
	if receipt.Replayed { // the trail holds the charge once, where it was made
		o := x.ev.Obligations
		o.EpsilonSpent, o.DeltaSpent, o.RhoSpent = 0, 0, 0
		x.ev.Reason += "; this period was charged before"
	}
	res, e := s.runStats(ctx, x, job)
	if e != nil {
		return nil, s.openFailed(ctx, x, e)
	}
	t := s.openTable(rel, per, ch, res)
	answer, err := json.Marshal(t)
	if err != nil {
		return nil, s.openFailed(ctx, x, errInternal(err))
	}
	x.ev.Rows = len(t.Cells)
	if err := s.record(ctx, x); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	stored, err := s.answers.StoreAnswer(ctx, key, answer)
	if err != nil {
		return nil, fmt.Errorf("the answer cache: %w", err)
	}
	var out OpenTable // another replica's, when it stored first
	return &out, json.Unmarshal(stored, &out)
}

// openFailed audits a release that failed and returns its error.
func (s *Server) openFailed(ctx context.Context, x *exchange, e *Error) error {
	if x.ev.Decision == "allow" {
		x.ev.Decision = "error"
	}
	x.ev.Status, x.ev.Code, x.ev.Stage = e.Status, e.Code, failStage(x, e)
	x.ev.Reason += "; failed: " + e.Msg
	if err := s.record(ctx, x); err != nil {
		return fmt.Errorf("%s (and the audit record failed: %w)", e.Msg, err)
	}
	if e.cause != nil {
		return fmt.Errorf("%s: %w", e.Msg, e.cause)
	}
	return errors.New(e.Msg)
}

// openTable turns a release into its published table: every group of the
// public domain, in the domain's order, a cell withheld where its number
// is smaller than its own margin of error or below the threshold.
func (s *Server) openTable(rel *openRelease, per OpenPeriod, ch *charge, res *dp.Result) *OpenTable {
	rc, ds := rel.cfg, rel.ds
	t := &OpenTable{ID: rc.ID, Title: rc.Title, TitleZH: rc.TitleZH, Description: rc.Description, DescriptionZH: rc.DescriptionZH,
		Source: ds.src.cfg.Name, Dataset: ds.cfg.Name, Metric: rc.Metric, Field: rc.Field, GroupBy: rc.GroupBy,
		Epsilon: res.Loss.Epsilon, Delta: res.Loss.Delta, Mechanism: res.Mechanism, Accounting: ch.pop.cfg.Accounting,
		ConfidenceLevel: dp.Confidence, Period: per, ReleasedAt: s.now().UTC(), Cells: []OpenCell{},
		Budget:    OpenBudget{Population: ch.pop.name, Allocation: ch.class, EpsilonCap: ch.pop.cfg.Allocations[openAllocation]},
		Guarantee: ch.guarantee()}
	if !ch.period.Start.IsZero() {
		p := ch.period
		t.Budget.BudgetPeriod = &p
	}
	if rc.Metric == string(dp.Count) {
		t.Counts = "people (" + ds.cfg.PrivacyUnit + "), each once per group"
	}
	byKey := map[string]dp.Partition{}
	for _, p := range res.Partitions {
		byKey[p.Key] = p
	}
	keys := []string{""}
	if rc.GroupBy != "" {
		keys = ds.cfg.Domains[rc.GroupBy]
	}
	var margins []float64
	for _, k := range keys {
		c := OpenCell{Epsilon: t.Epsilon}
		if rc.GroupBy != "" {
			c.Key = &k
		}
		p, ok := byKey[k]
		half := (p.High - p.Low) / 2
		switch {
		case !ok:
			c.Suppressed = SuppressedNoise // the library released no number for it
		case p.Value < rc.SuppressBelow:
			c.Suppressed = SuppressedThreshold
		case p.Value < half:
			c.Suppressed = SuppressedNoise
		default:
			v, ci := p.Value, [2]float64{p.Low, p.High}
			c.Value, c.CI95 = &v, &ci
		}
		if ok && !math.IsNaN(half) {
			margins = append(margins, half)
		}
		t.Cells = append(t.Cells, c)
	}
	t.Margin = median(margins)
	return t
}

// median of xs, 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// days writes d as the configuration does: whole days as "30d".
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
