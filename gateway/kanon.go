package gateway

// k-anonymity at release (a read decision's min_k and min_l): the
// equivalence classes of a caller's whole view of a dataset are counted
// by a full read of it into a class table, kept per view and rebuilt
// when older than the dataset's k_anonymity_refresh; each page released
// under the decision then leaves out the records of classes too small (or
// not diverse enough).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/anonymize/risk"
	"github.com/sluicegw/sluice/audit"
)

// kTables are the class tables of the views read under min_k, by view
// key. builds lets one build per view run at a time: a request that
// waits for it then finds the table fresh.
type kTables struct {
	builds keyLocks
	mu     sync.Mutex
	m      map[string]*kTable
}

// kTable is one view's class table and when it goes stale: the start of
// its read plus the dataset's k_anonymity_refresh.
type kTable struct {
	tab   *risk.Table
	stale time.Time
}

func (k *kTables) get(key string) *kTable {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[key]
}

// put stores t under key and lets go of every table stale at now: a view
// nobody reads any more (a policy revision, an organisation, a purpose
// gone) does not hold its table's memory for ever. A stale table is
// rebuilt before use anyway.
func (k *kTables) put(key string, t *kTable, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]*kTable{}
	}
	for key, old := range k.m {
		if !now.Before(old.stale) {
			delete(k.m, key)
		}
	}
	k.m[key] = t
}

// len is the number of tables held.
func (k *kTables) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// viewKey names the view an exchange's read decision releases: the
// dataset, the decision's transform and row filters (not max_rows, which
// caps a response, not the view), min_k and min_l (the table holds up to
// k people a class), and what changes released values — pseudonyms are
// keyed per issuer, organisation and purpose, per subject when the token
// names no organisation, and per subject under a consumer scope. It is the hex of a 128-bit hash.
func viewKey(x *exchange) string {
	d, p := x.decision, x.principal
	spec := d.Plan.Spec()
	view := struct {
		Dataset  string                    `json:"dataset"`
		Fields   map[string]anonymize.Rule `json:"fields"`
		Rows     []anonymize.Cond          `json:"rows"`
		Suppress *anonymize.Suppress       `json:"suppress"`
		MinK     int                       `json:"min_k"`
		MinL     int                       `json:"min_l"`
		Issuer   string                    `json:"issuer"`
		Org      string                    `json:"org"`
		Purpose  string                    `json:"purpose"`
		Consumer string                    `json:"consumer"`
	}{Dataset: x.ev.Source + "/" + x.ev.Dataset, Fields: spec.Fields, Rows: spec.Rows, Suppress: spec.Suppress,
		MinK: d.MinK, MinL: d.MinL, Issuer: p.Issuer, Org: p.Org, Purpose: x.purpose}
	if p.Org == "" || consumerScoped(spec.Fields) {
		view.Consumer = p.Subject
	}
	b, err := json.Marshal(view)
	if err != nil {
		// A decision's parts are JSON the policy gave: they marshal. A
		// key that cannot be formed shares no table with anyone.
		b = []byte(newRequestID())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// consumerScoped reports whether a rule pseudonymises per caller identity.
func consumerScoped(rules map[string]anonymize.Rule) bool {
	for _, r := range rules {
		if r.Params["scope"] == "consumer" {
			return true
		}
	}
	return false
}

// kTableFor returns the class table of x's view, building it when there
// is none or it is older than the dataset's k_anonymity_refresh. A build
// that fails is 503: nothing is released without the table.
func (s *Server) kTableFor(ctx context.Context, x *exchange) (*risk.Table, *Error) {
	key := viewKey(x)
	unlock := s.kTables.builds.lock(key)
	defer unlock()
	now := s.now()
	if t := s.kTables.get(key); t != nil && now.Before(t.stale) {
		return t.tab, nil
	}
	tab, e := s.buildKTable(ctx, x, key, now)
	if e != nil {
		return nil, e
	}
	s.kTables.put(key, &kTable{tab: tab, stale: now.Add(time.Duration(x.ds.cfg.KAnonymityRefresh))}, now)
	return tab, nil
}

// buildKTable reads the whole of x's view through its decision's
// transform, as a risk report does, and audits the read in a record of
// its own (action k_anonymity), charged to nobody: it releases nothing.
// The read outlives the request that started it, within the dataset's
// stats_timeout, since other requests wait for it.
func (s *Server) buildKTable(ctx context.Context, x *exchange, key string, start time.Time) (*risk.Table, *Error) {
	ctx = context.WithoutCancel(ctx)
	d := x.decision
	ev := audit.Event{Time: start.UTC(), RequestID: newRequestID(), Action: "k_anonymity", Method: http.MethodGet,
		Path: s.auditPath("/v1/" + x.ev.Source + "/" + x.ev.Dataset), Source: x.ev.Source, Dataset: x.ev.Dataset,
		Decision: "allow", PolicyRevision: x.ev.PolicyRevision, Status: http.StatusOK,
		Obligations: &audit.Obligations{Fields: x.ev.Obligations.Fields, Rows: x.ev.Obligations.Rows, MinK: d.MinK, MinL: d.MinL}}
	tab, e := s.readKTable(ctx, ev.RequestID, x)
	records, classes := 0, 0
	if tab != nil {
		records, classes = tab.Records(), tab.Classes()
	}
	ev.Rows = records
	ev.Reason = fmt.Sprintf("class table of view %s (min_k %d, min_l %d) for request %s: %d records in %d classes",
		key, d.MinK, d.MinL, x.id, records, classes)
	if e != nil {
		ev.Decision, ev.Status, ev.Code = "error", http.StatusServiceUnavailable, "unavailable"
		ev.Reason += "; failed: " + e.Msg
		if e.cause != nil {
			ev.Reason += ": " + e.cause.Error()
		}
	}
	ev.DurationMS = float64(s.now().Sub(start).Microseconds()) / 1000
	actx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	err := s.audit.Append(actx, &ev)
	if e != nil {
		s.log.Warn("k-anonymity table build failed", "request_id", x.id, "build_id", ev.RequestID, "dataset", ev.Source+"/"+ev.Dataset, "error", e.Error())
		return nil, errUnavailable("the k-anonymity class table of this view cannot be built; nothing is released without it", e)
	}
	if err != nil {
		return nil, errUnavailable("the audit trail is unavailable", err)
	}
	return tab, nil
}

// readKTable reads x's view into a new class table.
func (s *Server) readKTable(ctx context.Context, requestID string, x *exchange) (*risk.Table, *Error) {
	d := x.decision
	rd, fields, _, e := s.wholeView(x, d, "a k-anonymity class table")
	if e != nil {
		return nil, e
	}
	tab, err := risk.NewTable(fields, d.MinK, d.MinL)
	if err != nil {
		return nil, errInternal(fmt.Errorf("k-anonymity fields: %w", err))
	}
	e = s.readPages(ctx, requestID, rd, func(rec map[string]json.RawMessage, unit string) *Error {
		tab.Add(rec, unit)
		return nil
	})
	return tab, e
}

// kFilter copies a transformed body from src to dst, leaving out each
// record tab does not release, and adds "suppressed": the number left out,
// after items. The body is the transform's own output, whose shape is
// fixed — {"items":[REC,REC,...] then ,"member":value... } — so records
// are found by their brackets, a byte at a time, and each is judged in
// place (risk.Table.ReleasesJSON): one record is held at a time, never
// decoded into a map. kept, when set, is told of each record in turn
// whether it was released.
func kFilter(dst io.Writer, src io.Reader, tab *risk.Table, kept func(bool)) (released, suppressed int, err error) {
	b := kBufs.Get().(*kBuffers)
	defer kBufs.Put(b)
	b.r.Reset(src)
	b.w.Reset(dst)
	defer b.r.Reset(nil)
	defer b.w.Reset(nil)
	return kFilterWith(b.r, b.w, tab, kept)
}

// kBuffers are the reader and writer kFilter borrows, so that a page
// does not allocate its buffers.
type kBuffers struct {
	r *bufio.Reader
	w *bufio.Writer
}

var kBufs = sync.Pool{New: func() any {
	return &kBuffers{r: bufio.NewReaderSize(nil, 16<<10), w: bufio.NewWriterSize(nil, 16<<10)}
}}

func kFilterWith(r *bufio.Reader, w *bufio.Writer, tab *risk.Table, kept func(bool)) (released, suppressed int, err error) {
	prefix := `{"` + anonymize.OutputRecords + `":[`
	head := make([]byte, len(prefix))
	if _, err := io.ReadFull(r, head); err != nil || string(head) != prefix {
		return 0, 0, fmt.Errorf("k-anonymity filter: the body does not start with %s", prefix)
	}
	w.WriteString(prefix)
	var rec []byte
	for {
		c, err := r.ReadByte()
		switch {
		case err != nil:
			return 0, 0, fmt.Errorf("k-anonymity filter: the records end early: %w", err)
		case c == ']':
		case c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t':
			continue
		case c == '{':
			if rec, err = readObject(r, append(rec[:0], c)); err != nil {
				return 0, 0, err
			}
			ok := tab.ReleasesJSON(rec)
			if kept != nil {
				kept(ok)
			}
			if !ok {
				suppressed++
				continue
			}
			if released > 0 {
				w.WriteByte(',')
			}
			w.Write(rec)
			released++
			continue
		default:
			return 0, 0, fmt.Errorf("k-anonymity filter: a record is not an object")
		}
		break
	}
	rest, err := io.ReadAll(r) // the members after the records, and the closing brace
	if err != nil {
		return 0, 0, err
	}
	w.WriteString(`],"suppressed":`)
	w.WriteString(strconv.Itoa(suppressed))
	w.Write(bytes.TrimRight(rest, " \n\r\t"))
	w.WriteByte('\n')
	return released, suppressed, w.Flush()
}

// readObject appends to rec, which holds an object's opening brace, the
// rest of the object from r, strings and nesting followed.
func readObject(r *bufio.Reader, rec []byte) ([]byte, error) {
	depth, inString, escaped := 1, false, false
	for depth > 0 {
		c, err := r.ReadByte()
		if err != nil {
			return rec, fmt.Errorf("k-anonymity filter: a record ends early: %w", err)
		}
		rec = append(rec, c)
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return rec, nil
}
