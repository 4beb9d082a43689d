package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

const testCredential = "s3cret-demo-credential"

// apiSpec is what a test needs to know of one department's API.
type apiSpec struct {
	dept, dataset, key string
	// rows returns the key and district of each record, in dataset order.
	rows func(*Data) (keys, districts []string)
	// record returns the record with key, or nil.
	record func(d *Data, key string) any
}

var apis = []apiSpec{
	{"police", "residents", "id_number",
		func(d *Data) (k, ds []string) {
			for _, r := range d.Residents {
				k, ds = append(k, r.IDNumber), append(ds, r.District)
			}
			return k, ds
		},
		func(d *Data, key string) any {
			if i := slices.IndexFunc(d.Residents, func(r Resident) bool { return r.IDNumber == key }); i >= 0 {
				return d.Residents[i]
			}
			return nil
		}},
	{"health", "visits", "visit_id",
		func(d *Data) (k, ds []string) {
			for _, v := range d.Visits {
				k, ds = append(k, v.VisitID), append(ds, v.District)
			}
			return k, ds
		},
		func(d *Data, key string) any {
			if i := slices.IndexFunc(d.Visits, func(v Visit) bool { return v.VisitID == key }); i >= 0 {
				return d.Visits[i]
			}
			return nil
		}},
	{"civil", "assistance", "case_id",
		func(d *Data) (k, ds []string) {
			for _, c := range d.Assistance {
				k, ds = append(k, c.CaseID), append(ds, c.District)
			}
			return k, ds
		},
		func(d *Data, key string) any {
			if i := slices.IndexFunc(d.Assistance, func(c Case) bool { return c.CaseID == key }); i >= 0 {
				return d.Assistance[i]
			}
			return nil
		}},
}

// testServers serve each department over testData with testCredential.
// They are started once, on first use, because encoding the records is the
// slow part, and closed by TestMain.
var (
	testServersOnce sync.Once
	testServers     map[string]*httptest.Server
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, srv := range testServers {
		srv.Close()
	}
	os.Exit(code)
}

func serverURL(t *testing.T, dept string) string {
	t.Helper()
	testServersOnce.Do(func() {
		testServers = make(map[string]*httptest.Server)
		for _, api := range apis {
			h, err := Handler(api.dept, testData(), testCredential)
			if err != nil {
				panic(err)
			}
			testServers[api.dept] = httptest.NewServer(h)
		}
	})
	srv, ok := testServers[dept]
	if !ok {
		t.Fatalf("no test server for %s", dept)
	}
	return srv.URL
}

// page is the body of a list response.
type page struct {
	Items    []map[string]any `json:"items"`
	Page     int              `json:"page"`
	PageSize int              `json:"page_size"`
	Total    int              `json:"total"`
}

// errorBody is the body of an error response.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends a request with the given Authorization header (none if empty)
// and returns the status and body, after checking the body is JSON.
func do(t *testing.T, method, url, authorization string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, url, got)
	}
	if !json.Valid(body) {
		t.Errorf("%s %s: body is not JSON: %s", method, url, body)
	}
	return resp.StatusCode, body
}

// getPage fetches a list page with the test credential and decodes it.
func getPage(t *testing.T, dept, query string) page {
	t.Helper()
	api := specOf(t, dept)
	u := serverURL(t, dept) + "/" + api.dataset + "?" + query
	status, body := do(t, http.MethodGet, u, "Bearer "+testCredential)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %s", u, status, body)
	}
	var p page
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("GET %s: decode page: %v", u, err)
	}
	return p
}

// wantError checks that an error response has the status and code.
func wantError(t *testing.T, what string, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%s: decode error body %s: %v", what, body, err)
	}
	if status != wantStatus || e.Error.Code != wantCode || e.Error.Message == "" {
		t.Errorf("%s: status %d, error %+v; want %d with code %q and a message", what, status, e.Error, wantStatus, wantCode)
	}
}

func specOf(t *testing.T, dept string) apiSpec {
	t.Helper()
	for _, api := range apis {
		if api.dept == dept {
			return api
		}
	}
	t.Fatalf("no api spec for %s", dept)
	return apiSpec{}
}

// walk fetches every page of query and returns the keys of the records in
// the order served, checking each page's echo of page, page_size and total.
func walk(t *testing.T, api apiSpec, query string, pageSize int) (keys []string, total int) {
	t.Helper()
	for n := 1; ; n++ {
		p := getPage(t, api.dept, fmt.Sprintf("%s&page=%d&page_size=%d", query, n, pageSize))
		if p.Page != n || p.PageSize != pageSize {
			t.Fatalf("page %d: echoes page %d, page_size %d", n, p.Page, p.PageSize)
		}
		if n > 1 && p.Total != total {
			t.Fatalf("page %d: total %d, page 1 said %d", n, p.Total, total)
		}
		total = p.Total
		if len(p.Items) == 0 {
			return keys, total
		}
		if len(p.Items) > pageSize {
			t.Fatalf("page %d: %d items, page_size is %d", n, len(p.Items), pageSize)
		}
		for _, item := range p.Items {
			keys = append(keys, item[api.key].(string))
		}
	}
}

func TestHandlerRefusesUnknownDepartmentAndNilData(t *testing.T) {
	for _, c := range []struct {
		dept string
		data *Data
	}{
		{"tax", testData()},
		{"", testData()},
		{"police", nil},
	} {
		if _, err := Handler(c.dept, c.data, ""); err == nil {
			t.Errorf("Handler(%q, data nil=%v) succeeded, want an error", c.dept, c.data == nil)
		}
	}
}

func TestHealthzAnswersWithoutCredential(t *testing.T) {
	for _, api := range apis {
		status, body := do(t, http.MethodGet, serverURL(t, api.dept)+"/healthz", "")
		if status != http.StatusOK || string(bytes.TrimSpace(body)) != `{"status":"ok"}` {
			t.Errorf("%s /healthz: status %d, body %s", api.dept, status, body)
		}
	}
}

func TestPagesCoverEveryRecordExactlyOnceInOrder(t *testing.T) {
	for _, c := range []struct {
		dept     string
		pageSize int
	}{
		{"police", 1000},
		{"health", 1000},
		{"civil", 1000},
		{"civil", 7},
	} {
		t.Run(fmt.Sprintf("%s/page_size=%d", c.dept, c.pageSize), func(t *testing.T) {
			api := specOf(t, c.dept)
			want, _ := api.rows(testData())
			got, total := walk(t, api, "", c.pageSize)
			if total != len(want) {
				t.Errorf("total %d, want %d", total, len(want))
			}
			if !slices.Equal(got, want) {
				t.Errorf("pages served %d records that are not the dataset's %d in order", len(got), len(want))
			}
		})
	}
}

func TestListDefaultsToFirstPageOfTwenty(t *testing.T) {
	for _, api := range apis {
		p := getPage(t, api.dept, "")
		want, _ := api.rows(testData())
		if p.Page != 1 || p.PageSize != 20 || p.Total != len(want) || len(p.Items) != 20 {
			t.Errorf("%s: page %d, page_size %d, total %d, %d items; want 1, 20, %d, 20",
				api.dept, p.Page, p.PageSize, p.Total, len(p.Items), len(want))
		}
		if len(p.Items) > 0 && p.Items[0][api.key] != want[0] {
			t.Errorf("%s: first item %v, want %s", api.dept, p.Items[0][api.key], want[0])
		}
	}
}

func TestPageBeyondTheEndIsEmpty(t *testing.T) {
	for _, query := range []string{"page=100000", "page=9223372036854775807&page_size=1000", "page=2&district=nowhere"} {
		p := getPage(t, "police", query)
		if p.Items == nil || len(p.Items) != 0 {
			t.Errorf("%s: items %v, want []", query, p.Items)
		}
	}
}

func TestDistrictFilterReturnsOnlyThoseDistricts(t *testing.T) {
	for _, api := range apis {
		for _, districts := range [][]string{{"朝阳区"}, {"延庆区", "东城区"}, {"海淀区", "海淀区"}, {"nowhere"}} {
			t.Run(api.dept+"/"+strings.Join(districts, "+"), func(t *testing.T) {
				q := url.Values{"district": districts}.Encode()
				keys, rowDistricts := api.rows(testData())
				var want []string
				for i, k := range keys {
					if slices.Contains(districts, rowDistricts[i]) {
						want = append(want, k)
					}
				}
				got, total := walk(t, api, q, 250)
				if total != len(want) {
					t.Errorf("total %d, want %d", total, len(want))
				}
				if !slices.Equal(got, want) {
					t.Errorf("served %d records, not the %d of %v in dataset order", len(got), len(want), districts)
				}
				p := getPage(t, api.dept, q+"&page_size=1000")
				for _, item := range p.Items {
					if d := item["district"].(string); !slices.Contains(districts, d) {
						t.Errorf("%s %v is in %s", api.key, item[api.key], d)
					}
				}
			})
		}
	}
}

func TestBadQueriesAreRejected(t *testing.T) {
	for _, query := range []string{
		"page=0",
		"page=-1",
		"page=one",
		"page=1.5",
		"page=",
		"page=1&page=2",
		"page_size=0",
		"page_size=1001",
		"page_size=twenty",
		"page_size=99999999999999999999",
		"limit=10",
		"page=1&sort=name",
		"district=朝阳区&fields=name",
		"page=%zz",
	} {
		u := serverURL(t, "police") + "/residents?" + query
		status, body := do(t, http.MethodGet, u, "Bearer "+testCredential)
		wantError(t, query, status, body, http.StatusBadRequest, "bad_request")
	}
}

func TestRequestsWithoutTheCredentialAreRefused(t *testing.T) {
	for _, c := range []struct {
		authorization string
		want          int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer", http.StatusUnauthorized},
		{"Bearer ", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Bearer " + testCredential + "x", http.StatusUnauthorized},
		{"Basic " + testCredential, http.StatusUnauthorized},
		{testCredential, http.StatusUnauthorized},
		{"Bearer " + testCredential, http.StatusOK},
		{"bearer " + testCredential, http.StatusOK},
	} {
		for _, api := range apis {
			for _, path := range []string{"/" + api.dataset, "/" + api.dataset + "/nope", "/nowhere"} {
				what := fmt.Sprintf("%s %s with %q", api.dept, path, c.authorization)
				status, body := do(t, http.MethodGet, serverURL(t, api.dept)+path, c.authorization)
				switch {
				case c.want == http.StatusUnauthorized:
					wantError(t, what, status, body, http.StatusUnauthorized, "unauthorized")
				case status == http.StatusUnauthorized:
					t.Errorf("%s: refused with 401", what)
				}
			}
		}
	}
}

func TestWithoutACredentialEveryRequestIsServed(t *testing.T) {
	h, err := Handler("civil", testData(), "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	status, body := do(t, http.MethodGet, srv.URL+"/assistance?page_size=1", "")
	if status != http.StatusOK {
		t.Errorf("status %d, body %s; want 200", status, body)
	}
}

func TestLookupByIDReturnsTheRecord(t *testing.T) {
	d := testData()
	var endsInX string
	for _, r := range d.Residents {
		if strings.HasSuffix(r.IDNumber, "X") {
			endsInX = r.IDNumber
			break
		}
	}
	for _, c := range []struct{ dept, key string }{
		{"police", d.Residents[0].IDNumber},
		{"police", endsInX},
		{"health", d.Visits[len(d.Visits)/2].VisitID},
		{"civil", d.Assistance[len(d.Assistance)-1].CaseID},
	} {
		api := specOf(t, c.dept)
		u := serverURL(t, c.dept) + "/" + api.dataset + "/" + c.key
		status, body := do(t, http.MethodGet, u, "Bearer "+testCredential)
		var got struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &got); err != nil || status != http.StatusOK {
			t.Fatalf("GET %s: status %d, body %s, err %v", u, status, body, err)
		}
		want, err := json.Marshal(api.record(d, c.key))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Items) != 1 || !bytes.Equal(got.Items[0], want) {
			t.Errorf("GET %s: items %s, want [%s]", u, got.Items, want)
		}
	}
}

func TestLookupOfAbsentIDIsNotFound(t *testing.T) {
	for _, api := range apis {
		for _, id := range []string{"nope", "110101190001010000", "V2099000001", "C2099-00001"} {
			u := serverURL(t, api.dept) + "/" + api.dataset + "/" + id
			status, body := do(t, http.MethodGet, u, "Bearer "+testCredential)
			wantError(t, u, status, body, http.StatusNotFound, "not_found")
		}
	}
}

func TestUnknownPathsAreNotFound(t *testing.T) {
	for _, path := range []string{"/visits", "/visits/V2025000001", "/nope", "/residents/1/more", "/residents/"} {
		status, body := do(t, http.MethodGet, serverURL(t, "police")+path, "Bearer "+testCredential)
		wantError(t, path, status, body, http.StatusNotFound, "not_found")
	}
}

func TestMethodsOtherThanGETAreNotAllowed(t *testing.T) {
	id := testData().Residents[0].IDNumber
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		for _, path := range []string{"/residents", "/residents/" + id} {
			what := method + " " + path
			status, body := do(t, method, serverURL(t, "police")+path, "Bearer "+testCredential)
			wantError(t, what, status, body, http.StatusMethodNotAllowed, "method_not_allowed")
		}
	}
}

// discard is a ResponseWriter that keeps nothing, so benchmarks measure the
// handler rather than a recorder.
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func BenchmarkPage20(b *testing.B) {
	h, err := Handler("health", testData(), testCredential)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		query url.Values
	}{
		{"all", url.Values{"page": {"37"}, "page_size": {"20"}}},
		{"district", url.Values{"page": {"5"}, "page_size": {"20"}, "district": {"朝阳区"}}},
		{"two_districts", url.Values{"page": {"5"}, "page_size": {"20"}, "district": {"朝阳区", "海淀区"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/visits?"+c.query.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+testCredential)
			w := &discard{header: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}
