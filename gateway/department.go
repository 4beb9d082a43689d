package gateway

// Everything the gateway says to a department and reads back from one,
// for record reads (through httputil.ReverseProxy) and statistics reads
// (page by page) alike, lives in this file: where a request goes, the
// credentials and the only headers it carries (invariant 5), the
// transport and its timeouts, what a response must be before anything of
// it is used, and how a department's failure is described. Nothing a
// department sends reaches the caller, the audit trail or the logs
// except the released body and the headers the gateway sets itself: a
// failure is recorded in the gateway's own words, a class and a keyed
// hash of what was received.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/sluicegw/sluice/anonymize"
)

// newSource reads a source's credentials and builds the transport, the
// record proxy and the statistics client that reach it.
func (s *Server) newSource(sc *SourceConfig) (*source, error) {
	base, err := url.Parse(sc.Upstream)
	if err != nil {
		return nil, err
	}
	src := &source{cfg: sc, base: base, datasets: map[string]*dataset{}}
	if cr := sc.Credentials; cr != nil {
		var v string
		if cr.ValueFile != "" {
			b, err := os.ReadFile(s.cfg.Path(cr.ValueFile))
			if err != nil {
				return nil, fmt.Errorf("credentials.value_file: %w", err)
			}
			v = strings.TrimRight(string(b), "\r\n")
		} else if v = os.Getenv(cr.ValueEnv); v == "" {
			return nil, fmt.Errorf("credentials.value_env: %s is empty", cr.ValueEnv)
		}
		src.cred.header, src.cred.value = http.CanonicalHeaderKey(cr.Header), v
	}
	for i := range sc.Datasets {
		dc := &sc.Datasets[i]
		src.datasets[dc.Name] = &dataset{src: src, cfg: dc, info: dc.Resource(sc.Name),
			released: s.metrics.released.WithLabelValues(sc.Name, dc.Name)}
	}
	transport := &http.Transport{
		Proxy:                 nil, // the upstream is reached directly, never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: time.Duration(sc.Timeout),
		// With a TLSClientConfig of its own, the transport speaks HTTP/2
		// only when forced to.
		ForceAttemptHTTP2: true,
	}
	if sc.TLS != nil {
		if transport.TLSClientConfig, err = sc.TLS.clientConfig(s.cfg); err != nil {
			return nil, err
		}
	}
	src.proxy = &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      transport,
		ModifyResponse: s.release,
		ErrorHandler:   s.proxyError,
		ErrorLog:       s.newDepartmentLog(),
		BufferPool:     copyBuffers{},
	}
	src.client = &http.Client{
		Transport: transport,
		// A redirect would leave the configured upstream: refuse it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return src, nil
}

// url is where a dataset (or one record of it, id) is asked for, with
// query q.
func (src *source) url(ds *DatasetConfig, id string, q url.Values) *url.URL {
	target := *src.base
	target.Path = strings.TrimSuffix(target.Path, "/") + ds.Path
	target.RawPath = ""
	if id != "" {
		target.RawPath = strings.TrimSuffix(target.EscapedPath(), "/") + "/" + url.PathEscape(id)
		target.Path = strings.TrimSuffix(target.Path, "/") + "/" + id
	}
	target.RawQuery = q.Encode()
	return &target
}

// header is every header a request to the department carries: nothing
// of the caller's, the source's own credentials.
func (src *source) header(requestID string) http.Header {
	h := http.Header{}
	h.Set("Accept", "application/json")
	h.Set("User-Agent", "sluice")
	h.Set("X-Request-Id", requestID)
	if c := src.cred; c.header != "" {
		h.Set(c.header, c.value)
	}
	return h
}

// rewrite builds the upstream request of a record read from scratch: the
// decided URL and the source's headers. Nothing of the caller's headers,
// cookies or body is forwarded.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	x := pr.In.Context().Value(exchangeKey{}).(*exchange)
	pr.Out.URL = x.target
	pr.Out.Host = ""
	pr.Out.Header = x.ds.src.header(x.id)
	pr.Out.Body = http.NoBody
	pr.Out.ContentLength = 0
	pr.Out.Trailer = nil
}

// serveRecords proxies a record read decided in x, within the source's
// timeout, keeping the department's informational responses from the
// caller; rewrite, release and proxyError take it from there.
func (src *source) serveRecords(w http.ResponseWriter, r *http.Request, x *exchange) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(src.cfg.Timeout))
	defer cancel()
	ctx = context.WithValue(ctx, exchangeKey{}, x)
	src.proxy.ServeHTTP(newNoInformational(w), r.WithContext(ctx))
}

// readDeadline bounds a whole read of ds, every page of it (a statistics
// release, a risk report): a department that never stops paging does not
// hold the request past it.
func (src *source) readDeadline(ctx context.Context, ds *DatasetConfig) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Duration(ds.StatsTimeout))
}

// fetch asks the department for one page of a statistics read and hands
// its body to read, all within the source's timeout. The response has
// passed checkResponse.
func (src *source) fetch(ctx context.Context, requestID string, target *url.URL, read func(io.Reader) error) error {
	return src.get(ctx, requestID, target, false, read)
}

// get is fetch, or with lookup the fetch of one record by id, whose 404
// is the not_found error rather than a department's failure.
func (src *source) get(ctx context.Context, requestID string, target *url.URL, lookup bool, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(src.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return err
	}
	req.Header = src.header(requestID)
	resp, err := src.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if e := checkResponse(resp, lookup); e != nil {
		return e
	}
	return read(resp.Body)
}

// checkResponse is what a department's answer must be before any of it is
// read: 200 (or 404 for a record looked up), and JSON in UTF-8.
func checkResponse(resp *http.Response, lookup bool) *Error {
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound && lookup:
		return errNotFound("no such record")
	default:
		return errUpstreamInvalid(&upstreamStatus{resp.StatusCode})
	}
	if err := checkJSON(resp.Header.Get("Content-Type")); err != nil {
		return errUpstreamInvalid(err)
	}
	return nil
}

// errNotJSON refuses a body that is not JSON in UTF-8; it does not quote
// the content type the department sent.
var errNotJSON = errors.New("the content type is not JSON in UTF-8")

// checkJSON accepts application/json (or a +json type) in UTF-8.
func checkJSON(ct string) error {
	switch ct {
	case "application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8":
		return nil // what nearly every upstream sends: no need to parse it
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return errNotJSON
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errNotJSON
	}
	return nil
}

// proxyError answers a failed record read: the department was
// unreachable, timed out, answered wrongly, or the release failed.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	x := r.Context().Value(exchangeKey{}).(*exchange)
	if errors.Is(r.Context().Err(), context.Canceled) {
		e := &Error{Status: 499, Code: "canceled", Msg: "the caller went away", cause: s.fault(err)}
		s.fail(w, r, x, e)
		return
	}
	s.fail(w, r, x, s.departmentFailure(err))
}

// departmentFailure classifies a failure to fetch or release what a
// department sent (upstreamError), and replaces its cause, whose text may
// quote the department's bytes, with a fault in the gateway's own words.
// Errors of the gateway's own making (the trail, the answer cache) pass
// as they are.
func (s *Server) departmentFailure(err error) *Error {
	e := upstreamError(err)
	switch e.Code {
	case "upstream_invalid", "upstream_timeout", "too_large", "not_found":
		if e.cause != nil {
			out := *e
			out.cause = s.fault(e.cause)
			return &out
		}
	}
	return e
}

// upstreamError classifies a failure to fetch or transform.
func upstreamError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return errUpstreamTimeout(err)
	case errors.Is(err, anonymize.ErrTooLarge):
		return errTooLarge("the answer is over the gateway's size limits; ask for fewer records", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errUpstreamTimeout(err)
	}
	return errUpstreamInvalid(err)
}

// departmentFault is a department's failure as the trail and the logs
// see it: a class, and the keyed hash of the error's text, so that two
// records of the same fault can be matched without either holding what
// the department sent.
type departmentFault struct {
	class, digest string
}

func (f *departmentFault) Error() string { return "department: " + f.class + " (" + f.digest + ")" }

// fault describes err in the gateway's words.
func (s *Server) fault(err error) error {
	if err == nil {
		return nil
	}
	var f *departmentFault
	if errors.As(err, &f) {
		return f
	}
	return &departmentFault{class: faultClass(err), digest: s.hasher.Sum(err.Error())}
}

// faultClass names the kind of a department's failure.
func faultClass(err error) string {
	var (
		status   *upstreamStatus
		netErr   net.Error
		syntax   *json.SyntaxError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		certErr  *tls.CertificateVerificationError
		recordEr tls.RecordHeaderError
		opErr    *net.OpError
	)
	msg := err.Error()
	switch {
	case errors.As(err, &status):
		return fmt.Sprintf("status %d", status.code)
	case errors.Is(err, errNotJSON):
		return "not JSON"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, anonymize.ErrTooLarge):
		return "over the size limits"
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &certErr):
		return "certificate not trusted"
	case errors.As(err, &recordEr):
		return "not TLS"
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert the department sent as a "remote
		// error": most often, it wanted a client certificate it did not get.
		return "TLS handshake refused"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection cut short"
	case strings.Contains(msg, "malformed HTTP"), strings.Contains(msg, "too many 1xx"),
		strings.Contains(msg, "invalid header"), strings.Contains(msg, "bogus"):
		return "malformed HTTP response"
	case errors.As(err, &syntax), strings.Contains(msg, "JSON"), strings.Contains(msg, "json"):
		return "malformed JSON"
	case errors.As(err, &opErr):
		return "network error"
	}
	return "invalid response"
}

// upstreamStatus is a department's answer with a status the gateway does
// not release.
type upstreamStatus struct{ code int }

func (e *upstreamStatus) Error() string { return fmt.Sprintf("upstream status %d", e.code) }

// newDepartmentLog is the record proxy's error log: each line net/http
// writes about an exchange with a department, in the gateway's words.
func (s *Server) newDepartmentLog() *log.Logger {
	return log.New(&faultWriter{s: s}, "", 0)
}

// StdlibLogWriter is a destination for the standard library's log
// package, which net/http writes to directly: "Unsolicited response
// received on idle HTTP channel starting with ..." quotes the bytes a
// department sent after its answer. Each line becomes a warning of
// Sluice's log with a keyed hash in place of the text. cmd/sluice points
// log.SetOutput at it.
func (s *Server) StdlibLogWriter() io.Writer { return &faultWriter{s: s} }

type faultWriter struct{ s *Server }

func (w *faultWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	class := "net/http"
	if strings.Contains(line, "Unsolicited response") {
		class = "net/http: bytes after a department's answer"
	}
	w.s.log.Warn("standard library log line", "class", class, "digest", w.s.hasher.Sum(line))
	return len(p), nil
}

// noInformational keeps a department's informational (1xx) responses from
// the caller. httputil.ReverseProxy relays each one as it arrives, with
// the department's headers, and then clears every header the gateway had
// set; behind this writer the proxy writes headers into a map of its own,
// a 1xx is dropped with them, and only the final answer's headers join
// the gateway's (X-Request-Id stays).
type noInformational struct {
	w       http.ResponseWriter
	h       http.Header
	written bool
}

func newNoInformational(w http.ResponseWriter) *noInformational {
	return &noInformational{w: w, h: http.Header{}}
}

func (n *noInformational) Header() http.Header { return n.h }

func (n *noInformational) WriteHeader(code int) {
	if code < 200 {
		clear(n.h)
		return
	}
	if n.written {
		return
	}
	n.written = true
	dst := n.w.Header()
	for k, v := range n.h {
		dst[k] = v
	}
	n.w.WriteHeader(code)
}

func (n *noInformational) Write(b []byte) (int, error) {
	if !n.written {
		n.WriteHeader(http.StatusOK)
	}
	return n.w.Write(b)
}

// Unwrap lets http.ResponseController reach the caller's writer (flush).
func (n *noInformational) Unwrap() http.ResponseWriter { return n.w }
