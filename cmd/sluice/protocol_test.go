package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// planted is personal data a hostile department hides in the parts of an
// HTTP answer that are not its records.
const planted = "110101199003077777"

// rawDepartment answers each path with the bytes given, whatever HTTP
// allows: it is a department misbehaving at the protocol level.
func rawDepartment(t *testing.T, answers map[string]string) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					c.SetDeadline(time.Now().Add(5 * time.Second))
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					path := strings.TrimPrefix(req.URL.Path, "/")
					answer, ok := answers[path]
					if !ok {
						answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
					}
					if _, err := c.Write([]byte(answer)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return &upstream{Server: &httptest.Server{URL: "http://" + ln.Addr().String()}}
}

// ok200 is a proper answer of one record.
func ok200(extra string) string {
	body := `{"items":[{"id":1,"district":"朝阳区"}]}`
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s%s", len(body), body, extra)
}

// TestADepartmentMisbehavingAtTheProtocolLevelLeaksNothing: informational
// responses before the answer, bytes after it, malformed status lines and
// headers, each carrying a planted identity number. Nothing planted
// reaches the caller's bytes, the trail (which still verifies) or the
// gateway's log; the informational responses never reach the caller.
func TestADepartmentMisbehavingAtTheProtocolLevelLeaksNothing(t *testing.T) {
	hints := "HTTP/1.1 103 Early Hints\r\nSet-Cookie: id=" + planted + "\r\nLink: </" + planted + ">; rel=preload\r\nX-Planted: " + planted + "\r\n\r\n"
	dept := rawDepartment(t, map[string]string{
		"good":     hints + ok200(""),
		"nested":   "HTTP/1.1 100 Continue\r\nX-Planted: " + planted + "\r\n\r\n" + ok200(""),
		"escaped":  ok200("HTTP/1.1 200 OK\r\nX-Planted: " + planted + "\r\n\r\n" + planted),
		"garbage":  planted + " is not HTTP\r\n\r\n",
		"huge":     "HTTP/1.1 " + planted + " OK\r\n\r\n",
		"redirect": "HTTP/1.1 2OO " + planted + "\r\n\r\n",
		"ctype":    "HTTP/1.1 200 OK\r\nContent-Type: text/" + planted + "\r\nContent-Length: 2\r\n\r\n{}",
		"cut":      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Bad " + planted + ": yes\r\n\r\n{}",
		"status":   "HTTP/1.1 500 " + planted + "\r\nContent-Length: 0\r\n\r\n",
		"dupkey":   strings.Repeat("HTTP/1.1 103 Early Hints\r\nX-Planted: "+planted+"\r\n\r\n", 8) + ok200(""),
		"slow":     hints + "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"items\":[{\"id\":\"" + planted,
		"slowbody": "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz" + planted + "\r\n",
	})
	// net/http writes what it has to say through the standard logger;
	// whatever reaches it unfiltered lands here.
	var stdlog syncBuffer
	log.SetOutput(&stdlog)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	g := startTestGateway(t, dept)
	tok := g.token(t, "tester")
	for _, tc := range []struct {
		dataset string
		status  int
	}{
		{"good", 200}, {"nested", 200}, {"escaped", 200},
		{"dupkey", 200}, // eight 103s, each dropped
		{"garbage", 502}, {"huge", 502}, {"redirect", 502}, {"ctype", 502}, {"status", 502}, {"slowbody", 502},
		{"cut", 504},  // a malformed header line: the client waits for a body that never ends
		{"slow", 504}, // a 103, then a body shorter than its length
	} {
		t.Run(tc.dataset, func(t *testing.T) {
			var informational []int
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
				informational = append(informational, code)
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, g.url+"/v1/bad/"+tc.dataset, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body strings.Builder
			bufio.NewReader(resp.Body).WriteTo(&body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.status, body.String())
			}
			if len(informational) > 0 {
				t.Errorf("the caller received informational responses %v", informational)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("the answer has no X-Request-Id")
			}
			for name, vs := range resp.Header {
				if strings.Contains(strings.Join(vs, " "), planted) || name == "Set-Cookie" || name == "Link" || name == "X-Planted" {
					t.Errorf("the department's header %s: %v reached the caller", name, vs)
				}
			}
			if strings.Contains(body.String(), planted) {
				t.Errorf("the caller received the planted value: %s", body.String())
			}
			rec := recordFor(t, filepath.Join(g.dir, "audit"), resp.Header.Get("X-Request-Id"))
			if fmt.Sprint(rec["status"]) != fmt.Sprint(float64(tc.status)) {
				t.Errorf("audit record %v", rec)
			}
		})
	}
	// Bytes after an answer surface when the idle connection is read.
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(trailBytes(t, filepath.Join(g.dir, "audit")), planted) {
		t.Error("the trail holds the planted value")
	}
	if logged := g.proc.stderr.String() + stdlog.String(); strings.Contains(logged, planted) {
		t.Errorf("the log holds the planted value:\n%s", logged)
	}
	if !strings.Contains(g.proc.stderr.String(), "bytes after a department's answer") {
		t.Errorf("the bytes after an answer were not reported:\n%s", g.proc.stderr.String())
	}
	if out, _, err := runCmd(t, "audit", "verify", "--dir", g.dir); err != nil {
		t.Errorf("the trail does not verify: %v %s", err, out)
	}
}
