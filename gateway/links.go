package gateway

import (
	"net/url"
	"strconv"
	"strings"
)

// linkTo is an RFC 8288 Link header value for the same path with the
// query's param set to value: `</v1/x?page=3>; rel="next"`. The other
// parameters are kept as the caller gave them.
func linkTo(path string, query url.Values, param, value, rel string) string {
	q := url.Values{}
	for k, vs := range query {
		q[k] = vs
	}
	q.Set(param, value)
	return "<" + path + "?" + q.Encode() + `>; rel="` + rel + `"`
}

// pageLinks are what a page of records links to: the next page when the
// department's page came back full (there may be more), and the previous
// and first pages after the first.
type pageLinks struct {
	path  string
	query url.Values
	page  int // 1 when the caller gave none
	size  int // the page size asked of the department; 0 when not given
}

// newPageLinks reads the page and page size of a records request from
// the query sent upstream (page_size within max_rows).
func newPageLinks(path string, caller, upstream url.Values) *pageLinks {
	l := &pageLinks{path: path, query: caller, page: 1}
	if n, err := strconv.Atoi(upstream.Get("page")); err == nil && n > 1 {
		l.page = n
	}
	if n, err := strconv.Atoi(upstream.Get("page_size")); err == nil && n > 0 {
		l.size = n
	}
	return l
}

// header is the Link header of a page whose department page held read
// records; "" for none.
func (l *pageLinks) header(read int) string {
	var links []string
	if l.size > 0 && read >= l.size {
		links = append(links, l.to(l.page+1, "next"))
	}
	if l.page > 1 {
		links = append(links, l.to(l.page-1, "prev"), l.to(1, "first"))
	}
	return strings.Join(links, ", ")
}

func (l *pageLinks) to(page int, rel string) string {
	q := url.Values{}
	for k, vs := range l.query {
		q[k] = vs
	}
	if l.size > 0 {
		q.Set("page_size", strconv.Itoa(l.size))
	}
	return linkTo(l.path, q, "page", strconv.Itoa(page), rel)
}
