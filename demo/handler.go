package demo

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Paging limits of the list endpoint.
const (
	defaultPageSize = 20
	maxPageSize     = 1000
)

// Handler serves one department's API: dept is "police" (dataset
// "residents"), "health" ("visits") or "civil" ("assistance"). When
// credential is non-empty every request except GET /healthz must carry
// "Authorization: Bearer <credential>", else it is refused with 401.
//
// Each record is encoded once here, so serving a page only copies bytes.
func Handler(dept string, d *Data, credential string) (http.Handler, error) {
	if d == nil {
		return nil, errors.New("demo: handler for nil data")
	}
	var ds *dataset
	var err error
	switch dept {
	case "police":
		ds, err = newDataset("residents", d.Residents,
			func(r Resident) string { return r.IDNumber }, func(r Resident) string { return r.District })
	case "health":
		ds, err = newDataset("visits", d.Visits,
			func(v Visit) string { return v.VisitID }, func(v Visit) string { return v.District })
	case "civil":
		ds, err = newDataset("assistance", d.Assistance,
			func(c Case) string { return c.CaseID }, func(c Case) string { return c.District })
	default:
		return nil, fmt.Errorf("demo: unknown department %q (want police, health or civil)", dept)
	}
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", dept, err)
	}
	return routes(ds, credential), nil
}

// dataset is one department's records, encoded and indexed for serving.
type dataset struct {
	name       string
	records    [][]byte         // each record's JSON, in dataset order
	all        []int            // every row, in order
	byID       map[string]int   // key → row
	byDistrict map[string][]int // district → rows, in order
}

func newDataset[T any](name string, records []T, key, district func(T) string) (*dataset, error) {
	ds := &dataset{
		name:       name,
		records:    make([][]byte, len(records)),
		all:        make([]int, len(records)),
		byID:       make(map[string]int, len(records)),
		byDistrict: make(map[string][]int),
	}
	for i, rec := range records {
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("encode %s record %d: %w", name, i, err)
		}
		k := key(rec)
		if _, dup := ds.byID[k]; dup {
			return nil, fmt.Errorf("%s: duplicate key %q", name, k)
		}
		ds.records[i], ds.all[i], ds.byID[k] = b, i, i
		ds.byDistrict[district(rec)] = append(ds.byDistrict[district(rec)], i)
	}
	return ds, nil
}

// listQuery is a validated query of the list endpoint.
type listQuery struct {
	page, pageSize int
	districts      []string // empty means every district
}

func parseListQuery(raw string) (listQuery, error) {
	q := listQuery{page: 1, pageSize: defaultPageSize}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return q, badRequest("malformed query string")
	}
	// Sorted, so that a query with several faults always names the same one.
	for _, name := range slices.Sorted(maps.Keys(values)) {
		vs := values[name]
		switch name {
		case "district":
			q.districts = vs
		case "page":
			if q.page, err = intParam(name, vs, 1, 0); err != nil {
				return q, err
			}
		case "page_size":
			if q.pageSize, err = intParam(name, vs, 1, maxPageSize); err != nil {
				return q, err
			}
		default:
			return q, badRequest("unknown query parameter %q (want page, page_size or district)", name)
		}
	}
	return q, nil
}

// intParam parses a parameter given once as an integer of at least lo and,
// when hi is positive, at most hi.
func intParam(name string, vs []string, lo, hi int) (int, error) {
	if len(vs) != 1 {
		return 0, badRequest("%s given %d times", name, len(vs))
	}
	n, err := strconv.Atoi(vs[0])
	switch {
	case err != nil:
		return 0, badRequest("%s must be an integer, got %q", name, vs[0])
	case n < lo:
		return 0, badRequest("%s must be at least %d, got %d", name, lo, n)
	case hi > 0 && n > hi:
		return 0, badRequest("%s must be at most %d, got %d", name, hi, n)
	}
	return n, nil
}

// lists returns the index lists a district filter selects: every row when
// districts is empty, else one list per distinct district named. The lists
// are sorted, disjoint and must not be modified.
func (ds *dataset) lists(districts []string) [][]int {
	if len(districts) == 0 {
		return [][]int{ds.all}
	}
	lists := make([][]int, 0, len(districts))
	for i, d := range districts {
		if !slices.Contains(districts[:i], d) {
			lists = append(lists, ds.byDistrict[d])
		}
	}
	return lists
}

// unionPage returns rows [start, start+n) of the union of sorted, disjoint
// lists in order, without building the union: it binary-searches for the
// first row on the page and merges forward from there, so a page costs the
// same however deep it is.
func unionPage(lists [][]int, start, n int) []int {
	if len(lists) == 1 {
		return lists[0][start : start+n]
	}
	// below(x) counts the rows less than x across all lists.
	below := func(x int) int {
		c := 0
		for _, l := range lists {
			c += sort.SearchInts(l, x)
		}
		return c
	}
	last := 0
	for _, l := range lists {
		if len(l) > 0 {
			last = max(last, l[len(l)-1])
		}
	}
	first := sort.Search(last+1, func(x int) bool { return below(x+1) > start })
	pos := make([]int, len(lists))
	for i, l := range lists {
		pos[i] = sort.SearchInts(l, first)
	}
	out := make([]int, 0, n)
	for len(out) < n {
		next := -1
		for i, l := range lists {
			if pos[i] < len(l) && (next < 0 || l[pos[i]] < lists[next][pos[next]]) {
				next = i
			}
		}
		out = append(out, lists[next][pos[next]])
		pos[next]++
	}
	return out
}

// page encodes one page of q as {"items":[...],"page":P,"page_size":S,"total":N}.
func (ds *dataset) page(q listQuery) []byte {
	lists := ds.lists(q.districts)
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	var onPage []int
	// Compare before multiplying, so a huge page number cannot overflow.
	if q.page-1 < (total+q.pageSize-1)/q.pageSize {
		start := (q.page - 1) * q.pageSize
		onPage = unionPage(lists, start, min(q.pageSize, total-start))
	}
	size := 64
	for _, row := range onPage {
		size += len(ds.records[row]) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"items":[`...)
	for i, row := range onPage {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ds.records[row]...)
	}
	b = append(b, `],"page":`...)
	b = strconv.AppendInt(b, int64(q.page), 10)
	b = append(b, `,"page_size":`...)
	b = strconv.AppendInt(b, int64(q.pageSize), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	return append(b, "}\n"...)
}

func (ds *dataset) serveList(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("dataset") != ds.name {
		writeError(w, unknownDataset(r.PathValue("dataset")))
		return
	}
	q, err := parseListQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ds.page(q))
}

func (ds *dataset) serveRecord(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("dataset") != ds.name {
		writeError(w, unknownDataset(r.PathValue("dataset")))
		return
	}
	row, ok := ds.byID[r.PathValue("id")]
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, "not_found", fmt.Sprintf("no %s record %q", ds.name, r.PathValue("id"))})
		return
	}
	rec := ds.records[row]
	b := make([]byte, 0, len(rec)+16)
	b = append(b, `{"items":[`...)
	b = append(b, rec...)
	writeJSON(w, http.StatusOK, append(b, "]}\n"...))
}

func serveHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, &apiError{http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("method %s not allowed", r.Method)})
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, &apiError{http.StatusNotFound, "not_found", "no such endpoint"})
}

// requireBearer refuses requests that do not carry credential as a bearer
// token. An empty credential lets every request through.
func requireBearer(credential string, next http.Handler) http.Handler {
	if credential == "" {
		return next
	}
	want := []byte(credential)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(token), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-demo"`)
			writeError(w, &apiError{http.StatusUnauthorized, "unauthorized", "missing or wrong bearer credential"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError is a failure the caller is told about.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...)}
}

func unknownDataset(name string) *apiError {
	return &apiError{http.StatusNotFound, "not_found", fmt.Sprintf("no dataset %q", name)}
}

// writeError is the one place an error becomes an HTTP response. Errors that
// are not an *apiError are internal, and their text stays inside.
func writeError(w http.ResponseWriter, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = &apiError{http.StatusInternalServerError, "internal", "internal error"}
	}
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(struct {
		Error body `json:"error"`
	}{body{e.code, e.msg}})
	writeJSON(w, e.status, append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
