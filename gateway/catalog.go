package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/policy"
)

// catalogEntry is one dataset as the caller would get it.
type catalogEntry struct {
	Source         string `json:"source"`
	Dataset        string `json:"dataset"`
	Path           string `json:"path"`
	Classification string `json:"classification,omitempty"`
	PrivacyUnit    string `json:"privacy_unit,omitempty"`
	// Sharing, Owner and Basis are the hub's catalogue entry: whether
	// records may be requested (unconditional, conditional, none), which
	// department decides, and for none the rule that forbids it.
	Sharing string `json:"sharing"`
	Owner   string `json:"owner"`
	Basis   string `json:"basis,omitempty"`
	// Request says how to ask for the dataset's records, when the caller
	// may and the dataset is shared.
	Request *requestLink `json:"request,omitempty"`
	Read    *readView    `json:"read"`
	Stats   *statsView   `json:"stats"`
	Fields  []fieldEntry `json:"fields"`
}

// requestLink is how to ask the hub for a dataset's records.
type requestLink struct {
	Method string         `json:"method"`
	Href   string         `json:"href"`
	Body   map[string]any `json:"body"`
}

// fieldEntry is one declared or released field with the caller's
// treatment of it ("drop" when the read decision does not name it).
type fieldEntry struct {
	Name      string         `json:"name"`
	Type      string         `json:"type,omitempty"`
	Level     string         `json:"level,omitempty"`
	Treatment anonymize.Rule `json:"treatment"`
}

type readView struct {
	Allowed bool     `json:"allowed"`
	Reason  string   `json:"reason,omitempty"`
	Rows    []string `json:"rows,omitempty"`
	Params  []string `json:"params,omitempty"`
	MaxRows int      `json:"max_rows,omitempty"`
	Lookup  bool     `json:"lookup_by_id,omitempty"`
}

type statsView struct {
	Allowed bool                `json:"allowed"`
	Reason  string              `json:"reason,omitempty"`
	Limits  *policy.StatsLimits `json:"limits,omitempty"`
}

// catalog serves GET /v1/catalog: the datasets the caller may use and, per
// field, the treatment the caller would get.
func (s *Server) catalog(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, "catalog")
	if e := s.authenticate(x, r); e != nil {
		s.fail(w, r, x, e)
		return
	}
	set := s.policies.Current()
	x.ev.PolicyRevision = set.Revision()
	// A caller who may ask the hub for data sees every dataset shared on
	// request, besides those the policy lets it read or count.
	mayRequest := s.hub != nil && s.decide(r.Context(), x, set, s.input(x, r, "request.submit", nil)).Allow
	entries := []catalogEntry{}
	for _, srcName := range slices.Sorted(maps.Keys(s.sources)) {
		src := s.sources[srcName]
		for _, dsName := range slices.Sorted(maps.Keys(src.datasets)) {
			ds := src.datasets[dsName]
			requestable := mayRequest && ds.cfg.Sharing != "none"
			if !requestable && !s.decide(r.Context(), x, set, s.input(x, r, "catalog", ds)).Allow {
				continue
			}
			e := s.catalogEntry(r, x, set, ds)
			if requestable {
				e.Request = &requestLink{Method: http.MethodPost, Href: "/v1/requests",
					Body: map[string]any{"dataset": e.Source + "/" + e.Dataset, "fields": []string{}, "purpose": "",
						"legal_basis": "", "valid_until": ""}}
			}
			entries = append(entries, e)
		}
	}
	x.ev.Decision, x.ev.Rows = "allow", len(entries)
	s.answerRevalidated(w, r, x, map[string]any{"datasets": entries, "policy_revision": set.Revision()})
}

// answerRevalidated answers v as answerJSON does, with an ETag (a hash
// of the body: the caller's view changes with the policy revision and
// the configuration), and answers 304 without a body to a request whose
// If-None-Match names it. The answer is the caller's own (private) and
// must be revalidated each time (no-cache): a revoked grant shows at once.
// Both are audited.
func (s *Server) answerRevalidated(w http.ResponseWriter, r *http.Request, x *exchange, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.fail(w, r, x, errInternal(err))
		return
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	status := http.StatusOK
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		status, body = http.StatusNotModified, nil
	}
	x.ev.Status, x.ev.Bytes = status, int64(len(body))
	if !s.recorded(w, r, x) {
		return
	}
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusNotModified {
		w.WriteHeader(status)
	} else {
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
	s.logDone(x, nil)
}

// etagMatches reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 asks of If-None-Match), or is "*".
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func (s *Server) catalogEntry(r *http.Request, x *exchange, set *policy.Set, ds *dataset) catalogEntry {
	e := catalogEntry{
		Source: ds.src.cfg.Name, Dataset: ds.cfg.Name, Path: "/v1/" + ds.src.cfg.Name + "/" + ds.cfg.Name,
		Classification: ds.cfg.Classification, PrivacyUnit: ds.cfg.PrivacyUnit,
		Sharing: ds.cfg.Sharing, Owner: ds.cfg.Owner, Basis: ds.cfg.Basis,
	}
	read := s.decide(r.Context(), x, set, s.input(x, r, "read", ds))
	e.Read = &readView{Allowed: read.Allow, Reason: read.Reason}
	rules := map[string]anonymize.Rule{}
	if read.Allow {
		e.Read.Rows, e.Read.Params, e.Read.MaxRows = read.Plan.RowFilters(), read.Params, read.MaxRows
		e.Read.Lookup = ds.cfg.IDField != "" && lookupAllowed(ds, read, "x") == nil
		rules = read.Fields
	}
	names := map[string]bool{}
	for n := range ds.cfg.Fields {
		names[n] = true
	}
	for n, rule := range rules {
		if rule.Op != "drop" {
			names[n] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		f := fieldEntry{Name: n, Type: ds.cfg.Fields[n].Type, Level: ds.cfg.Fields[n].Level, Treatment: anonymize.Rule{Op: "drop"}}
		if rule, ok := rules[n]; ok {
			f.Treatment = rule
		}
		e.Fields = append(e.Fields, f)
	}
	stats := s.decide(r.Context(), x, set, s.input(x, r, "stats", ds))
	e.Stats = &statsView{Allowed: stats.Allow && stats.Stats != nil, Reason: stats.Reason}
	if e.Stats.Allowed {
		e.Stats.Limits = stats.Stats
	}
	return e
}
