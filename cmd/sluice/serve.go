package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/gateway"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("serve", "Run the gateway until interrupted; SIGINT or SIGTERM stop it gracefully.")
	c.usage = "[--config FILE]"
	c.examples = []string{
		"sluice serve --config /etc/sluice/sluice.yaml",
		"sluice serve --config .sluice-demo/sluice.yaml",
	}
	path := c.flags.String("config", "sluice.yaml", "configuration file")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := c.noArgs(rest); err != nil {
		return err
	}
	cfg, err := gateway.LoadConfig(*path)
	if err != nil {
		return err
	}
	logger, flush := bufferedLogger(stderr)
	defer flush()
	scheme := "http"
	if cfg.ListenTLS != nil {
		scheme = "https"
	}
	return serveGateway(ctx, cfg, logger, func(addr string) {
		logger.Info("gateway listening", "url", scheme+"://"+addr)
		flush()
	})
}

// serveGateway runs the gateway until ctx ends, then shuts down
// gracefully: in-flight requests finish and the audit trail is flushed.
// ready is called with the listening address.
func serveGateway(ctx context.Context, cfg *gateway.Config, logger *slog.Logger, ready func(addr string)) error {
	// With listen_tls, the certificate is read first: a gateway that cannot
	// serve HTTPS starts nothing. Its files are watched until this returns.
	tlsCtx, stopTLS := context.WithCancel(ctx)
	defer stopTLS()
	tlsConfig, err := cfg.ServerTLS(tlsCtx, logger)
	if err != nil {
		return err
	}
	pols, err := openPolicies(ctx, cfg, logger, true)
	if err != nil {
		return err
	}
	defer pols.stop()
	active, shadow := pols.deps()
	trailOpts, err := auditOptions(cfg, logger)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	gateway.RegisterDefaultCollectors(reg)
	trailOpts.OnCommit = gateway.AuditCommitMetrics(reg)
	// The state closes after the trail (deferred first, run last): the
	// audit stream sends the trail's last records, and no charge is in
	// flight once the server has shut down.
	st, err := openState(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.close()
	if err := st.audit(cfg, &trailOpts, reg); err != nil {
		return err
	}
	trail, err := audit.Open(cfg.Path(cfg.Audit.Dir), trailOpts)
	if err != nil {
		return fmt.Errorf("open audit trail: %w", err)
	}
	defer func() {
		if err := trail.Close(); err != nil {
			logger.Error("closing audit trail", "error", err)
		}
	}()
	deps := gateway.Deps{Audit: trail, Policies: active, Shadow: shadow, Logger: logger, Metrics: reg}
	st.deps(&deps)
	srv, err := gateway.New(ctx, cfg, deps)
	if err != nil {
		return err
	}
	// net/http logs through the standard logger, quoting what a department
	// sent after its answer: those lines go to Sluice's log, hashed.
	log.SetFlags(0)
	log.SetOutput(srv.StdlibLogWriter())
	// Start-up (policies compiled, the trail and indexes opened) leaves
	// garbage that the collector, paced at GOGC=400 (tuneGC), would let
	// the heap grow to five times before collecting: collected now, the
	// first answers are paced by the gateway's own live heap.
	runtime.GC()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	logger.Info("policy loaded", "source", pols.active.Status().Source, "revision", pols.active.Current().Revision())
	ready(ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Limits.ShutdownTimeout))
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		logger.Warn("shutdown did not finish in time", "error", err)
		hs.Close()
	}
	logger.Info("gateway stopped")
	return nil
}
