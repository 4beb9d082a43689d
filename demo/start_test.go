package demo

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// noReuse is a client that dials afresh for every request, so a request
// after shutdown cannot ride on a connection opened before it.
var noReuse = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

func TestStartServesEveryDepartmentOnLoopback(t *testing.T) {
	ds, err := Start(context.Background(), testData(), testCredential)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	for _, api := range apis {
		base, ok := ds.URLs[api.dept]
		if !ok {
			t.Errorf("no URL for %s", api.dept)
			continue
		}
		u, err := url.Parse(base)
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "0" {
			t.Errorf("%s: URL %q is not http on a port of 127.0.0.1 (err %v)", api.dept, base, err)
		}
		status, body := do(t, http.MethodGet, base+"/"+api.dataset+"?page_size=1", "Bearer "+testCredential)
		if status != http.StatusOK {
			t.Errorf("%s: GET /%s: status %d, body %s", api.dept, api.dataset, status, body)
		}
	}
	if len(ds.URLs) != len(apis) {
		t.Errorf("URLs %v, want one for each of %d departments", ds.URLs, len(apis))
	}
}

func TestStartAtListensOnTheGivenAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ds, err := StartAt(context.Background(), testData(), "", map[string]string{"health": addr})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if got, want := ds.URLs["health"], "http://"+addr; got != want {
		t.Errorf("health URL %q, want %q", got, want)
	}
	if _, err := StartAt(context.Background(), testData(), "", map[string]string{"civil": addr}); err == nil {
		t.Error("StartAt on an address in use succeeded, want an error")
	}
}

func TestCloseStopsServing(t *testing.T) {
	ds, err := Start(context.Background(), testData(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for dept, base := range ds.URLs {
		if resp, err := noReuse.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after Close", dept)
		}
	}
	if err := ds.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestContextEndStopsServing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ds, err := Start(ctx, testData(), "")
	if err != nil {
		t.Fatal(err)
	}
	base := ds.URLs["police"]
	if resp, err := noReuse.Get(base + "/healthz"); err != nil {
		t.Fatalf("before cancel: %v", err)
	} else {
		resp.Body.Close()
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := noReuse.Get(base + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("still answering 5s after the context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := ds.Close(); err != nil {
		t.Errorf("Close after the context ended: %v", err)
	}
}
