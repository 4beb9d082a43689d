package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/sluicegw/sluice/gateway"
)

// replicaAddrs returns n listen addresses on consecutive ports from
// addr's; with port 0 each replica gets a free port of its own.
func replicaAddrs(addr string, n int) ([]string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p+n-1 > 65535 {
		return nil, fmt.Errorf("%q: want host:port with room for %d ports", addr, n)
	}
	out := make([]string, n)
	for i := range out {
		q := p
		if p != 0 {
			q = p + i
		}
		out[i] = net.JoinHostPort(host, strconv.Itoa(q))
	}
	return out, nil
}

// serveReplicas runs a gateway per configuration until ctx ends or one of
// them fails, which stops the others. ready is called once, with every
// listening address in order, when all of them listen.
func serveReplicas(ctx context.Context, cfgs []*gateway.Config, logger *slog.Logger, ready func(addrs []string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		addrs   = make([]string, len(cfgs))
		pending = len(cfgs)
		wg      sync.WaitGroup
		errs    = make([]error, len(cfgs))
	)
	for i, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = serveGateway(ctx, cfg, logger.With("replica", i+1), func(addr string) {
				mu.Lock()
				defer mu.Unlock()
				addrs[i] = addr
				if pending--; pending == 0 {
					ready(addrs)
				}
			})
			cancel() // one replica down: stop them all
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			if len(cfgs) == 1 {
				return err
			}
			return fmt.Errorf("replica %d: %w", i+1, err)
		}
	}
	return nil
}

// printReplicas lists the replicas and how to see that they share state.
func printReplicas(w io.Writer, dir, redisAddr string, m demoManifest) {
	fmt.Fprintf(w, "\nReplicas, sharing budgets, answers, rate limits and revocations in Redis %s:\n", redisAddr)
	for i, u := range m.Replicas {
		trail := filepath.Join(dir, "audit")
		if i > 0 {
			trail = filepath.Join(dir, fmt.Sprintf("audit-r%d", i+1))
		}
		fmt.Fprintf(w, "  r%d %s  trail %s\n", i+1, u, trail)
	}
	fmt.Fprintf(w, `
  # a statistics release on one replica is cached and charged for all
  curl -s -H "Authorization: Bearer $PUBLIC" '%s/v1/health/visits/stats?metric=count&group_by=district&epsilon=0.5'
  # revoke a token: every replica refuses it within a second
  go run ./cmd/sluice token revoke --redis %s --jti JTI
  # check a replica's trail against the checkpoint it keeps in Redis
  go run ./cmd/sluice audit verify --dir %s --redis %s --replica r1
`, m.Replicas[len(m.Replicas)-1], redisAddr, filepath.Join(dir, "audit"), redisAddr)
}
