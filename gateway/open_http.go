package gateway

// The open data API: GET /open/v1/... without a token, rate limited per
// client address, read from memory. Visitors' reads are not audited (they
// release nothing that is not already public, and a flood of them must
// not fill the trail); each release's computation is.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sluicegw/sluice/anonymize/dp"
	"github.com/sluicegw/sluice/state"
)

// openRoutes adds the open data routes to mux when open data is on.
func (s *Server) openRoutes(mux *routeMux) {
	if s.open == nil {
		return
	}
	mux.HandleFunc("GET /open/v1/catalog", s.openAPI(s.openCatalog))
	mux.HandleFunc("GET /open/v1/releases", s.openAPI(s.openReleases))
	mux.HandleFunc("GET /open/v1/releases/{file}", s.openAPI(s.openRelease))
	mux.HandleFunc("GET /open/v1/ledger", s.openAPI(s.openLedgerHTTP))
	mux.HandleFunc("GET /open/", s.openPage)
	mux.Handle("GET /open", http.RedirectHandler("/open/", http.StatusMovedPermanently))
}

// openAPI wraps an open route: a request id, the per-address rate limit,
// no query parameters (there are no ad-hoc questions to ask), and a
// JSON error with its code.
func (s *Server) openAPI(serve func(w http.ResponseWriter, r *http.Request) *Error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("Access-Control-Allow-Origin", "*") // public data, no credentials
		h.Set("X-Content-Type-Options", "nosniff")
		e := s.limitOpen(r)
		if e == nil && r.URL.RawQuery != "" {
			e = errBadRequest("the open data API takes no query parameters: its tables are published as declared")
		}
		if e == nil {
			e = serve(w, r)
		}
		if e != nil {
			writeError(w, e, errorJSON(id, e))
		}
	}
}

// limitOpen applies open.rate to the client's address.
func (s *Server) limitOpen(r *http.Request) *Error {
	c := s.cfg.Open.Rate
	ctx, cancel := context.WithTimeout(r.Context(), limiterTimeout)
	defer cancel()
	wait, err := s.allow(ctx, "open:"+clientKey(clientIP(r)), c, true)
	if err != nil || wait == 0 {
		return nil // a limiter that cannot decide does not close public data
	}
	s.scale.rateLimited.WithLabelValues("open").Inc()
	return errRateLimited(fmt.Sprintf("too many requests from this address: the limit is %d per %s (bursts of %d); retry after %s",
		c.Rate, time.Duration(c.Per), c.Burst, wait.Round(time.Millisecond)), wait)
}

// openReleaseSummary is a release in the list.
type openReleaseSummary struct {
	ID         string     `json:"id"`
	Title      string     `json:"title"`
	TitleZH    string     `json:"title_zh,omitempty"`
	Dataset    string     `json:"dataset"`
	Metric     string     `json:"metric"`
	GroupBy    string     `json:"group_by,omitempty"`
	Epsilon    float64    `json:"epsilon"`
	Every      string     `json:"every"`
	Period     OpenPeriod `json:"period"`
	ReleasedAt time.Time  `json:"released_at"`
	Current    bool       `json:"current"`
	JSON       string     `json:"json"`
	CSV        string     `json:"csv"`
}

func (s *Server) openReleases(w http.ResponseWriter, r *http.Request) *Error {
	out := struct {
		Releases []openReleaseSummary `json:"releases"`
	}{Releases: []openReleaseSummary{}}
	for _, t := range s.open.tables() {
		out.Releases = append(out.Releases, openReleaseSummary{ID: t.ID, Title: t.Title, TitleZH: t.TitleZH,
			Dataset: t.Source + "/" + t.Dataset, Metric: t.Metric, GroupBy: t.GroupBy, Epsilon: t.Epsilon, Every: t.Period.Every,
			Period: t.Period, ReleasedAt: t.ReleasedAt, Current: t.Current,
			JSON: "/open/v1/releases/" + t.ID, CSV: "/open/v1/releases/" + t.ID + ".csv"})
	}
	writeOpenJSON(w, out)
	return nil
}

// openRelease serves a table as JSON, or as CSV when its name ends .csv.
func (s *Server) openRelease(w http.ResponseWriter, r *http.Request) *Error {
	file := r.PathValue("file")
	id, csv := strings.CutSuffix(file, ".csv")
	sv := s.open.served(id)
	if sv == nil {
		if s.declared(id) {
			return errUnavailable("this release has not been computed yet; it is computed once per period", nil)
		}
		return errNotFound("no such release")
	}
	h := w.Header()
	h.Set("ETag", sv.etag)
	h.Set("Cache-Control", "public, max-age=60")
	h.Set("Last-Modified", sv.table.ReleasedAt.UTC().Format(http.TimeFormat))
	if csv {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+id+`.csv"`)
	} else {
		h.Set("Content-Type", "application/json")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, sv.etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if csv {
		w.Write(sv.csv)
	} else {
		w.Write(sv.json)
	}
	return nil
}

// declared reports whether id names a declared release.
func (s *Server) declared(id string) bool {
	for _, rel := range s.open.releases {
		if rel.cfg.ID == id {
			return true
		}
	}
	return false
}

// writeOpenJSON answers v, public and cacheable for a minute.
func writeOpenJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Cache-Control", "public, max-age=60")
	writePublicJSON(w, v)
}

// writePublicJSON answers v with the Cache-Control already set.
func writePublicJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

func (s *Server) openLedgerHTTP(w http.ResponseWriter, r *http.Request) *Error {
	l, err := s.openLedger(r.Context())
	if err != nil {
		return errUnavailable("the budget ledger is unavailable", err)
	}
	w.Header().Set("Cache-Control", "no-cache")
	writePublicJSON(w, l)
	return nil
}

// openLedger reads what each population's open allocation has spent in
// the budget period in force, and what each release charged to it spent.
func (s *Server) openLedger(ctx context.Context) (*OpenLedger, error) {
	now := s.now()
	l := &OpenLedger{AsOf: now.UTC(), Allocations: []OpenAllocation{}}
	byPop := map[*population][]*openRelease{}
	var pops []*population
	for _, rel := range s.open.releases {
		if byPop[rel.ds.pop] == nil {
			pops = append(pops, rel.ds.pop)
		}
		byPop[rel.ds.pop] = append(byPop[rel.ds.pop], rel)
	}
	for _, p := range pops {
		rels := byPop[p]
		var ch *charge
		keys := []string{jsonKey("allocation", openAllocation)}
		for _, rel := range rels {
			c, e := p.newCharge(rel.principal(), rel.lim, now)
			if e != nil {
				return nil, e
			}
			ch = c
			keys = append(keys, c.accounts[consumerAccount].Key)
		}
		spent, err := s.ledger.Spent(ctx, ch.scope, keys...)
		if err != nil {
			return nil, err
		}
		a := OpenAllocation{Population: p.name, Allocation: openAllocation, Accounting: p.cfg.Accounting,
			EpsilonCap: p.cfg.Allocations[openAllocation], Releases: []OpenReleaseSpend{}}
		if !ch.period.Start.IsZero() {
			per := ch.period
			a.BudgetPeriod = &per
		}
		a.EpsilonSpent = p.epsilonOf(spent[0])
		a.EpsilonLeft = max(0, a.EpsilonCap-a.EpsilonSpent)
		for i, rel := range rels {
			a.Releases = append(a.Releases, OpenReleaseSpend{ID: rel.cfg.ID, EpsilonPerPeriod: rel.job.cost.Epsilon,
				Every: days(rel.every), EpsilonSpent: p.epsilonOf(spent[i+1])})
		}
		l.Allocations = append(l.Allocations, a)
	}
	return l, nil
}

// epsilonOf states what an account spent in ε: as it is under pure
// accounting, by the standard conversion of its ρ under zCDP.
func (p *population) epsilonOf(b state.Budget) float64 {
	if p.accounting == dp.ZCDP {
		return dp.EpsilonForRho(b.Epsilon, p.conversionDelta())
	}
	return b.Epsilon
}

// openCatalog lists the published tables as a DCAT catalogue in JSON-LD
// (DCAT 3, the vocabulary CKAN's DCAT harvester reads): each table a
// dcat:Dataset, its JSON and CSV its distributions.
func (s *Server) openCatalog(w http.ResponseWriter, r *http.Request) *Error {
	base := "https://" + r.Host
	if r.TLS == nil {
		base = "http://" + r.Host
	}
	type distribution struct {
		Type        string `json:"@type"`
		Title       string `json:"dct:title"`
		AccessURL   string `json:"dcat:accessURL"`
		DownloadURL string `json:"dcat:downloadURL"`
		MediaType   string `json:"dcat:mediaType"`
	}
	type dataset struct {
		ID           string         `json:"@id"`
		Type         string         `json:"@type"`
		Identifier   string         `json:"dct:identifier"`
		Title        []langString   `json:"dct:title"`
		Description  []langString   `json:"dct:description,omitempty"`
		Publisher    map[string]any `json:"dct:publisher"`
		Modified     string         `json:"dct:modified"`
		Temporal     map[string]any `json:"dct:temporal"`
		Frequency    string         `json:"dct:accrualPeriodicity"`
		Keywords     []string       `json:"dcat:keyword"`
		Source       string         `json:"dct:source"`
		Distribution []distribution `json:"dcat:distribution"`
		Privacy      map[string]any `json:"sluice:privacy"`
	}
	cat := map[string]any{
		"@context": map[string]string{"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
			"foaf": "http://xmlns.com/foaf/0.1/", "xsd": "http://www.w3.org/2001/XMLSchema#", "sluice": base + "/open/v1/terms#"},
		"@id": base + "/open/v1/catalog", "@type": "dcat:Catalog",
		"dct:title":     []langString{{"Open statistics", "en"}, {"开放统计数据", "zh"}},
		"dct:publisher": map[string]any{"@type": "foaf:Agent", "foaf:name": s.cfg.Open.Publisher},
		"foaf:homepage": base + "/open/",
	}
	var sets []dataset
	for _, t := range s.open.tables() {
		u := base + "/open/v1/releases/" + t.ID
		d := dataset{ID: u, Type: "dcat:Dataset", Identifier: t.ID, Title: langs(t.Title, t.TitleZH),
			Description: langs(t.Description, t.DescriptionZH),
			Publisher:   map[string]any{"@type": "foaf:Agent", "foaf:name": s.cfg.Open.Publisher},
			Modified:    t.ReleasedAt.UTC().Format(time.RFC3339),
			Temporal: map[string]any{"@type": "dct:PeriodOfTime", "dcat:startDate": t.Period.Start.Format(time.RFC3339),
				"dcat:endDate": t.Period.End.Format(time.RFC3339)},
			Frequency: "P" + strings.TrimSuffix(t.Period.Every, "d") + "D",
			Keywords:  []string{"statistics", "differential privacy", t.Source, t.Dataset},
			Source:    t.Source + "/" + t.Dataset,
			Distribution: []distribution{
				{Type: "dcat:Distribution", Title: "JSON", AccessURL: u, DownloadURL: u, MediaType: "application/json"},
				{Type: "dcat:Distribution", Title: "CSV", AccessURL: u, DownloadURL: u + ".csv", MediaType: "text/csv"}},
			Privacy: map[string]any{"epsilon": t.Epsilon, "delta": t.Delta, "mechanism": t.Mechanism,
				"population": t.Budget.Population, "allocation": t.Budget.Allocation, "ledger": base + "/open/v1/ledger"}}
		if !strings.HasSuffix(t.Period.Every, "d") {
			d.Frequency = ""
		}
		if len(d.Description) == 0 {
			d.Description = nil
		}
		sets = append(sets, d)
	}
	if sets == nil {
		sets = []dataset{}
	}
	cat["dcat:dataset"] = sets
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "application/ld+json")
	b, err := json.Marshal(cat)
	if err != nil {
		return errInternal(err)
	}
	w.Write(append(b, '\n'))
	return nil
}

// langString is a JSON-LD string in a language.
type langString struct {
	Value string `json:"@value"`
	Lang  string `json:"@language"`
}

func langs(en, zh string) []langString {
	var out []langString
	if en != "" {
		out = append(out, langString{en, "en"})
	}
	if zh != "" {
		out = append(out, langString{zh, "zh"})
	}
	return out
}
