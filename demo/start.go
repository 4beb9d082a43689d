package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// departments are the demo departments, in the order Start brings them up.
var departments = []string{"police", "health", "civil"}

// shutdownGrace is how long Close lets in-flight requests finish before it
// cuts their connections.
const shutdownGrace = 5 * time.Second

// Departments are the three demo APIs running on loopback.
type Departments struct {
	// URLs maps each department ("police", "health", "civil") to its base
	// URL, such as "http://127.0.0.1:41234".
	URLs map[string]string

	servers   []*http.Server
	serving   sync.WaitGroup
	serveErrs []error // one per server, written before serving.Done
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Start listens on a free port of 127.0.0.1 for each department and serves
// the three departments' APIs over d until Close is called or ctx ends.
func Start(ctx context.Context, d *Data, credential string) (*Departments, error) {
	return StartAt(ctx, d, credential, nil)
}

// StartAt is Start with chosen listen addresses: addrs maps a department to
// a host:port such as "127.0.0.1:8081". A department without one listens on
// a free port of 127.0.0.1.
func StartAt(ctx context.Context, d *Data, credential string, addrs map[string]string) (*Departments, error) {
	handlers := make([]http.Handler, len(departments))
	for i, dept := range departments {
		h, err := Handler(dept, d, credential)
		if err != nil {
			return nil, err
		}
		handlers[i] = h
	}

	var lc net.ListenConfig
	listeners := make([]net.Listener, 0, len(departments))
	for _, dept := range departments {
		addr := addrs[dept]
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			for _, open := range listeners {
				open.Close()
			}
			return nil, fmt.Errorf("demo: listen on %s for %s: %w", addr, dept, err)
		}
		listeners = append(listeners, ln)
	}

	depts := &Departments{
		URLs:      make(map[string]string, len(departments)),
		serveErrs: make([]error, len(departments)),
		closing:   make(chan struct{}),
	}
	for i, dept := range departments {
		srv := &http.Server{Handler: handlers[i], ReadHeaderTimeout: 5 * time.Second}
		depts.servers = append(depts.servers, srv)
		depts.URLs[dept] = "http://" + listeners[i].Addr().String()
		depts.serving.Add(1)
		go func() {
			defer depts.serving.Done()
			if err := srv.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				depts.serveErrs[i] = fmt.Errorf("demo: serve %s: %w", dept, err)
			}
		}()
	}
	go func() {
		select {
		case <-ctx.Done():
			depts.Close()
		case <-depts.closing:
		}
	}()
	return depts, nil
}

// Close stops the departments gracefully: it stops accepting connections and
// waits up to five seconds for requests in flight. It is safe to call more
// than once and returns the same result each time.
func (depts *Departments) Close() error {
	depts.closeOnce.Do(func() {
		close(depts.closing)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		var errs []error
		for _, srv := range depts.servers {
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, err)
				srv.Close()
			}
		}
		depts.serving.Wait()
		depts.closeErr = errors.Join(append(errs, depts.serveErrs...)...)
	})
	return depts.closeErr
}
