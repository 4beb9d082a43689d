package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/demo"
)

// roleFlag makes the harness binary run one of its servers instead: each
// server under test runs in a process of its own, so its CPU time and
// memory can be read apart from the load generator's.
const roleFlag = "--role"

// readyPrefix starts the line a role prints once it serves, followed by
// JSON describing where.
const readyPrefix = "READY "

func runRole(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("--role: want upstream or proxy")
	}
	fs := flag.NewFlagSet("role", flag.ContinueOnError)
	cred := fs.String("cred", "", "upstream credential (the bearer token the departments require)")
	streamBytes := fs.Int64("stream-bytes", 0, "size of the synthetic visits stream")
	upstream := fs.String("upstream", "", "proxy: base URL of the department")
	prefix := fs.String("prefix", "/v1/health", "proxy: path prefix mapped to the department's root")
	opa := fs.String("opa", "", "proxy: OPA server asked for an allow decision per request (the sidecar pattern)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "upstream":
		return runUpstream(ctx, *cred, *streamBytes, stdout)
	case "proxy":
		return runProxy(ctx, *upstream, *prefix, *cred, *opa, stdout)
	}
	return fmt.Errorf("--role %q: want upstream or proxy", args[0])
}

// runUpstream serves the three demo departments and a synthetic health
// department whose /visits streams streamBytes of records made on the fly.
func runUpstream(ctx context.Context, cred string, streamBytes int64, stdout io.Writer) error {
	data := demo.Generate(demo.DefaultSeed)
	depts, err := demo.Start(ctx, data, cred)
	if err != nil {
		return err
	}
	defer depts.Close()
	records := make([][]byte, 0, len(data.Visits))
	for _, v := range data.Visits {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		records = append(records, b)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	stream := &http.Server{Handler: &visitStream{records: records, size: streamBytes, auth: "Bearer " + cred}}
	go stream.Serve(ln)
	defer stream.Close()

	where := map[string]string{"stream": "http://" + ln.Addr().String()}
	for k, v := range depts.URLs {
		where[k] = v
	}
	if err := ready(stdout, where); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func ready(stdout io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s%s\n", readyPrefix, b)
	return err
}

// visitStream answers every GET with one page of at least size bytes of
// visit records, cycling through the demo's, made as they are sent: the
// upstream itself holds no more than a write buffer.
type visitStream struct {
	records [][]byte
	size    int64
	auth    string
}

func (s *visitStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != s.auth {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(`{"items":[`)
	var n, written int64
	for i := 0; written < s.size; i++ {
		rec := s.records[i%len(s.records)]
		if i > 0 {
			bw.WriteByte(',')
		}
		// Each record gets a visit id of its own, so no two are equal.
		id := strconv.Itoa(i)
		rec = bytes.Replace(rec, []byte(`"visit_id":"`), []byte(`"visit_id":"S`+id+`-`), 1)
		if _, err := bw.Write(rec); err != nil {
			return
		}
		written += int64(len(rec)) + 1
		n++
	}
	fmt.Fprintf(bw, `],"page":1,"page_size":%d,"total":%d}`, n, n)
	bw.Flush()
}

// runProxy serves a bare reverse proxy in front of upstream: prefix is cut
// from the path and the upstream credential replaces the caller's. With
// opa set it first asks the OPA server whether to allow each request, as
// Envoy's ext_authz or Kong's OPA plugin do.
func runProxy(ctx context.Context, upstream, prefix, cred, opa string, stdout io.Writer) error {
	up, err := url.Parse(upstream)
	if err != nil || up.Host == "" {
		return fmt.Errorf("--upstream %q: want a base URL", upstream)
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
	credential := "Bearer " + cred
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.URL.Path = strings.TrimSuffix(up.Path, "/") + strings.TrimPrefix(pr.In.URL.Path, prefix)
			pr.Out.URL.RawPath = ""
			pr.Out.Header.Set("Authorization", credential)
		},
		Transport: transport,
	}
	var h http.Handler = rp
	if opa != "" {
		h = &sidecar{next: rp, decisionURL: strings.TrimSuffix(opa, "/") + "/v1/data/sidecar/allow",
			client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 128}}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	if err := ready(stdout, map[string]string{"url": "http://" + ln.Addr().String()}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// sidecar asks an OPA server for an allow decision, then proxies.
type sidecar struct {
	next        http.Handler
	decisionURL string
	client      *http.Client
}

// sidecarPolicy is the OPA server's policy: a no-op check in the spirit of
// OPA's own Envoy measurements, so the sidecar's cost is the round trip and
// the evaluation, not a policy's complexity.
const sidecarPolicy = `package sidecar

default allow := false

allow if {
	input.method == "GET"
	startswith(input.path, "/v1/")
	startswith(input.authorization, "Bearer ")
}
`

type sidecarInput struct {
	Input struct {
		Method        string `json:"method"`
		Path          string `json:"path"`
		Query         string `json:"query"`
		Authorization string `json:"authorization"`
	} `json:"input"`
}

func (s *sidecar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in sidecarInput
	in.Input.Method, in.Input.Path, in.Input.Query = r.Method, r.URL.Path, r.URL.RawQuery
	in.Input.Authorization = r.Header.Get("Authorization")
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, s.decisionURL, bytes.NewReader(body))
	if err != nil {
		http.Error(w, "decision request", http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		http.Error(w, "decision unavailable", http.StatusServiceUnavailable)
		return
	}
	var out struct {
		Result bool `json:"result"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		http.Error(w, "decision failed", http.StatusServiceUnavailable)
		return
	}
	if !out.Result {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	s.next.ServeHTTP(w, r)
}
