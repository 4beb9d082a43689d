package gateway

// The usage index, kept and served (DESIGN.md, "Usage: who used my
// data"). Every record release's outcome record names, in keyed hashes,
// whose records it held; once it is durable, and before the first byte
// leaves, the release is added to the index (usage.Index: a bbolt file in
// the trail's directory, or Redis shared by the replicas). The trail is
// the truth and the index follows it: an addition that fails is made
// again from the trail (usage.CatchUp) before the index answers, and at
// every start.

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/usage"
)

// UsageIndexFile is the embedded usage index's bbolt file, in the trail's
// directory.
const UsageIndexFile = "usage.db"

// usageState is the gateway's side of the usage index: releases are
// added by one writer, in batches, off the release path, in the order
// their records became durable; an answer from the index first waits for
// the writer to have added every release made before it was asked.
type usageState struct {
	idx   usage.Index
	queue chan usage.Entry
	// flush asks the writer to write what it holds now.
	flush chan struct{}
	// queued counts entries handed to the writer; done those it has
	// added (or failed to); doneCond signals done's moves.
	queued   atomic.Uint64
	mu       sync.Mutex
	done     uint64
	doneCond *sync.Cond
	// behindFrom, when not 0, is 1 + the seq after which the index may
	// lack a release the trail holds (an addition failed); catchUp
	// serialises the catch-ups that clear it.
	behindFrom atomic.Uint64
	catchUp    sync.Mutex
	// verified is the latest check of the trail, for usage answers.
	verifyMu sync.Mutex
	verified *trailCheck
}

// usageQueue bounds the releases waiting for the index writer; past it a
// release adds its own entry, which slows releases rather than dropping
// anything.
const usageQueue = 4096

// usageBatch is the most releases the writer adds at once, and
// usageLinger how long it waits for more after the first (an answer from
// the index cuts the wait short).
const (
	usageBatch  = 512
	usageLinger = 50 * time.Millisecond
)

// reorderMargin is how far before the index's head a catch-up at start
// reads the trail again: releases finish out of order, so an entry below
// the head may have been lost with the process while a later one was
// added. Adding an entry again changes nothing.
const reorderMargin = 100_000

// trailCheck is what a usage answer says of the trail it was read from.
type trailCheck struct {
	// Verified: the trail's hash chain (and its checkpoints, where it is
	// signed) verified from its first record to Through.
	Verified bool `json:"verified"`
	// Checked is when it was verified.
	Checked time.Time `json:"checked"`
	// Records is how many records were verified; Through the time of the
	// last record a signed checkpoint covers (records after it verify by
	// their chain alone).
	Records uint64    `json:"records"`
	Through time.Time `json:"through,omitzero"`
	// Problem says what failed, when it did.
	Problem string `json:"problem,omitempty"`
	// Replica names the trail; other replicas' releases are in the index
	// but their trails are verified where they are kept.
	Replica string `json:"replica,omitempty"`
}

// trailCheckEvery is how old a trail check may be before a usage answer
// runs a new one.
const trailCheckEvery = time.Minute

// openUsage sets the index up, catches it up with the trail and starts
// its writer, which stops when ctx ends.
func (s *Server) openUsage(ctx context.Context, deps Deps) error {
	if deps.Usage == nil {
		return nil
	}
	u := &usageState{idx: deps.Usage, queue: make(chan usage.Entry, usageQueue), flush: make(chan struct{}, 1)}
	u.doneCond = sync.NewCond(&u.mu)
	s.usage = u
	if deps.HubReadOnly {
		return nil
	}
	head, err := deps.Usage.Head(ctx, s.cfg.Audit.Replica)
	if err == nil {
		var n int
		if n, err = s.addFromTrail(ctx, head-min(head, reorderMargin)); err == nil && n > 0 {
			s.log.Info("usage index caught up with the trail", "releases", n)
		}
	}
	if err != nil {
		u.behindFrom.Store(1)
		s.log.Warn("the usage index could not catch up with the trail; it will try again before it answers", "error", err)
	}
	go s.writeUsage(ctx)
	return nil
}

// trailDir is the audit trail's directory.
func (s *Server) trailDir() string { return s.cfg.Path(s.cfg.Audit.Dir) }

// indexRelease hands x's release, whose outcome record is durable, to
// the index writer; when the writer is that far behind, it adds it
// itself. A failure leaves the index behind the trail, and the release
// goes ahead: the trail holds it, and the index catches up with the trail
// before it answers again.
func (s *Server) indexRelease(ctx context.Context, x *exchange) {
	u := s.usage
	if u == nil || x.ev.Released == nil || len(x.ev.Released.Units) == 0 && len(x.ev.Released.Records) == 0 {
		return
	}
	rec := audit.Record{Event: x.ev}
	e, ok := usage.FromRecord(&rec, s.cfg.Audit.Replica)
	if !ok {
		return
	}
	if len(e.Units)+len(e.Records) > maxHeldRecords {
		// A large release's names are added at once rather than held
		// in the queue, as its names records' are.
		s.addNow(ctx, e)
		return
	}
	// The record's slices are the exchange's, which the writer outlives.
	e.Units, e.Records = slices.Clone(e.Units), slices.Clone(e.Records)
	select {
	case u.queue <- e:
		u.queued.Add(1)
	default:
		s.addNow(ctx, e)
	}
}

// indexNow adds the names record ev of a large release to the usage
// index before it returns.
func (s *Server) indexNow(ctx context.Context, ev *audit.Event) {
	if s.usage == nil {
		return
	}
	rec := audit.Record{Event: *ev}
	if e, ok := usage.FromRecord(&rec, s.cfg.Audit.Replica); ok {
		s.addNow(ctx, e)
	}
}

// addNow adds e to the usage index, or notes that the index must catch
// up from e's record.
func (s *Server) addNow(ctx context.Context, e usage.Entry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := s.usage.idx.Add(ctx, e); err != nil {
		s.usageFailed(e.Seq, err)
	}
}

// writeUsage adds queued releases to the index, as many at once as are
// waiting, until ctx ends.
func (s *Server) writeUsage(ctx context.Context) {
	u := s.usage
	batch := make([]usage.Entry, 0, usageBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-u.queue:
			batch = append(batch[:0], e)
		}
		// Under load releases come in bursts: waiting a moment for more
		// lets one transaction write the index pages they share. A lone
		// release is written at once, so that every replica soon finds
		// it.
	drain:
		for len(batch) < usageBatch {
			select {
			case e := <-u.queue:
				batch = append(batch, e)
			default:
				break drain
			}
		}
		if len(batch) > 1 {
			linger := time.NewTimer(usageLinger)
		more:
			for len(batch) < usageBatch {
				select {
				case e := <-u.queue:
					batch = append(batch, e)
				case <-linger.C:
					break more
				case <-u.flush:
					break more
				}
			}
			linger.Stop()
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
		if err := u.idx.Add(actx, batch...); err != nil {
			s.usageFailed(slices.MinFunc(batch, func(a, b usage.Entry) int { return cmp.Compare(a.Seq, b.Seq) }).Seq, err)
		}
		cancel()
		u.mu.Lock()
		u.done += uint64(len(batch))
		u.doneCond.Broadcast()
		u.mu.Unlock()
	}
}

// usageFailed notes that the index may lack the releases from seq on.
func (s *Server) usageFailed(seq uint64, err error) {
	u := s.usage
	for {
		cur := u.behindFrom.Load()
		if cur != 0 && cur <= seq {
			break
		}
		if u.behindFrom.CompareAndSwap(cur, seq) {
			break
		}
	}
	s.metrics.usageBehind.Inc()
	s.log.Warn("releases could not be added to the usage index; they will be added from the trail", "seq", seq, "error", err)
}

// usageReady waits until the writer has added every release queued
// before it was called, and catches the index up with the trail when an
// addition failed.
func (s *Server) usageReady(ctx context.Context) *Error {
	u := s.usage
	target := u.queued.Load()
	select {
	case u.flush <- struct{}{}:
	default:
	}
	stop := context.AfterFunc(ctx, func() {
		u.mu.Lock()
		u.doneCond.Broadcast()
		u.mu.Unlock()
	})
	u.mu.Lock()
	for u.done < target && ctx.Err() == nil {
		u.doneCond.Wait()
	}
	u.mu.Unlock()
	stop()
	if err := ctx.Err(); err != nil {
		return errUnavailable("the usage index is behind", err)
	}
	if u.behindFrom.Load() == 0 {
		return nil
	}
	u.catchUp.Lock()
	defer u.catchUp.Unlock()
	from := u.behindFrom.Swap(0)
	if from == 0 {
		return nil
	}
	if _, err := s.addFromTrail(ctx, from-1); err != nil {
		s.usageFailed(from, err)
		return errUnavailable("the usage index is behind the trail and cannot catch up", err)
	}
	return nil
}

// addFromTrail adds to the index every release of this gateway's trail
// after seq after, reading the trail from its end; it returns how many.
func (s *Server) addFromTrail(ctx context.Context, after uint64) (int, error) {
	var batch []usage.Entry
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.usage.idx.Add(ctx, batch...)
		if err == nil {
			n += len(batch)
		}
		batch = batch[:0]
		return err
	}
	for rec, err := range audit.Scan(ctx, s.trailDir(), audit.Query{Action: "read", Decision: "allow", Newest: true}) {
		if err != nil {
			return n, err
		}
		if rec.Seq <= after {
			break
		}
		if e, ok := usage.FromRecord(rec, s.cfg.Audit.Replica); ok {
			if batch = append(batch, e); len(batch) == usageBatch {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, flush()
}

// trailChecked is the latest check of the trail, run anew when older than
// trailCheckEvery.
func (s *Server) trailChecked(ctx context.Context) trailCheck {
	u := s.usage
	u.verifyMu.Lock()
	defer u.verifyMu.Unlock()
	now := s.now()
	if u.verified != nil && now.Sub(u.verified.Checked) < trailCheckEvery {
		return *u.verified
	}
	c := &trailCheck{Checked: now.UTC(), Replica: s.cfg.Audit.Replica}
	rep, err := audit.Verify(ctx, s.trailDir(), s.verifyOptions())
	switch {
	case err != nil:
		c.Problem = "the trail could not be read"
		s.log.Error("verifying the trail for a usage answer", "error", err)
	default:
		c.Verified, c.Records = rep.OK, rep.Records
		if rep.LastCheckpoint != nil {
			c.Through = rep.LastCheckpoint.MaxTime
		}
		if rep.Bad != nil {
			c.Problem = rep.Bad.String()
		}
	}
	u.verified = c
	return *c
}

// usageRelease is one release in a usage answer.
type usageRelease struct {
	Time       time.Time         `json:"time"`
	RequestID  string            `json:"request_id"`
	Dept       string            `json:"dept,omitempty"`
	Roles      []string          `json:"roles,omitempty"`
	Subject    string            `json:"subject,omitempty"`
	Purpose    string            `json:"purpose,omitempty"`
	Grant      string            `json:"grant,omitempty"`
	LegalBasis string            `json:"legal_basis,omitempty"`
	Basis      string            `json:"basis,omitempty"`
	Dataset    string            `json:"dataset"`
	Fields     map[string]string `json:"fields,omitempty"`
	Replica    string            `json:"replica,omitempty"`
}

// usageReport is a usage answer: a person's releases over a period, and
// whether the trail they come from verified.
type usageReport struct {
	Since    *time.Time     `json:"since"`
	Until    time.Time      `json:"until"`
	Trail    trailCheck     `json:"trail"`
	Releases []usageRelease `json:"releases"`
}

// usageFor builds the report of the person whose privacy-unit value is
// id over [since, until) (until zero: now). officers says whether each
// release names who asked (auditors: yes; the person: no).
func (s *Server) usageFor(ctx context.Context, id string, since, until time.Time, officers bool) (*usageReport, *Error) {
	if e := s.usageReady(ctx); e != nil {
		return nil, e
	}
	if until.IsZero() {
		until = s.now().UTC()
	}
	rels, err := s.usage.idx.ByUnit(ctx, s.hasher.Unit(id), since, until)
	if err != nil {
		return nil, errUnavailable("the usage index is unavailable", err)
	}
	rep := &usageReport{Until: until, Trail: s.trailChecked(ctx), Releases: make([]usageRelease, 0, len(rels))}
	if !since.IsZero() {
		rep.Since = &since
	}
	bases := map[string]string{}
	for _, r := range rels {
		u := usageRelease{Time: r.Time, RequestID: r.RequestID, Dept: r.Dept, Roles: r.Roles, Purpose: r.Purpose,
			Grant: r.Grant, Basis: r.Basis, Dataset: r.Dataset, Fields: r.Fields, Replica: r.Replica}
		if officers {
			u.Subject = r.Subject
		}
		if r.Grant != "" {
			b, ok := bases[r.Grant]
			if !ok {
				b = s.legalBasis(ctx, r.Grant)
				bases[r.Grant] = b
			}
			u.LegalBasis = b
		}
		rep.Releases = append(rep.Releases, u)
	}
	slices.SortStableFunc(rep.Releases, func(a, b usageRelease) int { return cmp.Compare(a.Time.UnixNano(), b.Time.UnixNano()) })
	return rep, nil
}

// legalBasis is the legal basis the request behind grant stated; "" when
// the hub does not know it.
func (s *Server) legalBasis(ctx context.Context, grant string) string {
	if s.hub == nil {
		return ""
	}
	g, err := s.hub.Store().Grant(ctx, grant)
	if err != nil || g.Request == "" {
		return ""
	}
	q, err := s.hub.Store().Request(ctx, g.Request)
	if err != nil {
		return ""
	}
	return q.LegalBasis
}

// myUsage is GET /v1/me/usage[?since&until]: a citizen's own usage, found
// by the token's id_number claim. The officer who asked is not named.
func (s *Server) myUsage(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, "usage.read")
	if !s.authorize(w, r, x, s.policies.Current(), "usage.read") {
		return
	}
	if s.usage == nil {
		s.fail(w, r, x, errUnavailable("the usage index is not configured", nil))
		return
	}
	id, _ := x.principal.Claims["id_number"].(string)
	if id == "" {
		s.fail(w, r, x, errForbidden("usage is shown to the person it is about: the token names no id_number"))
		return
	}
	since, until, e := usagePeriod(x.params(r), x.queryErr, false)
	if e != nil {
		s.fail(w, r, x, e)
		return
	}
	rep, e := s.usageFor(r.Context(), id, since, until, false)
	if e != nil {
		s.fail(w, r, x, e)
		return
	}
	x.ev.Rows = len(rep.Releases)
	s.answerJSON(w, r, x, rep)
}

// auditUsage is GET /audit/v1/usage?subject=ID[&since&until]: a person's
// usage, for an auditor, naming who asked.
func (s *Server) auditUsage(ctx context.Context, r *http.Request, _ string) (any, *Error) {
	if s.usage == nil {
		return nil, errUnavailable("the usage index is not configured", nil)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	since, until, e := usagePeriod(q, err, true)
	if e != nil {
		return nil, e
	}
	return s.usageFor(ctx, q.Get("subject"), since, until, true)
}

// usagePeriod reads a usage query: since and until (RFC 3339 or a date,
// 2006-01-02, UTC), and for an auditor the subject, required. Anything
// else is refused.
func usagePeriod(q url.Values, qerr error, auditor bool) (since, until time.Time, e *Error) {
	if qerr != nil {
		return since, until, errBadRequest("malformed query")
	}
	for k, vs := range q {
		switch {
		case k == "since" || k == "until" || (auditor && k == "subject"):
		default:
			want := "since, until"
			if auditor {
				want = "subject, since, until"
			}
			return since, until, errBadRequest(fmt.Sprintf("unknown parameter %q (want %s)", k, want))
		}
		if len(vs) != 1 {
			return since, until, errBadRequest(fmt.Sprintf("parameter %q given more than once", k))
		}
	}
	if auditor && q.Get("subject") == "" {
		return since, until, errBadRequest("subject is required: the person's privacy-unit value (an ID number)")
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &since}, {"until", &until}} {
		v := q.Get(t.name)
		if v == "" {
			continue
		}
		ts, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if ts, err = time.Parse(time.DateOnly, v); err != nil {
				return since, until, errBadRequest(t.name + " must be an RFC 3339 time or a date (2006-01-02)")
			}
		}
		*t.dst = ts.UTC()
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return since, until, errBadRequest("since must be before until")
	}
	return since, until, nil
}
