package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/sluicegw/sluice/internal/version"
)

// healthz answers while the process runs, with the build that runs, so
// that an operator can see which version each replica serves.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", newRequestID())
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": version.Version().String()})
}

// check is one readiness condition.
type check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// readyz answers 200 when a policy is loaded, the audit trail is writable
// and the state backend (and the revocation list copied from it) is
// current, 503 otherwise, with each check's state; under state.on_failure
// open a replica without its state answers 200 "degraded".
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", newRequestID())
	checks := map[string]check{}
	ready, degraded := true, false
	checks["policy"] = policyCheck(s.policies, "policy")
	ready = checks["policy"].OK
	if s.shadow != nil {
		// A shadow set is never enforced: its state does not gate readiness.
		checks["shadow_policy"] = policyCheck(s.shadow, "shadow policy")
	}
	if err := s.auditErr(); err != nil {
		checks["audit"] = check{Detail: "audit trail not writable"}
		s.log.Warn("not ready: audit trail", "error", err)
		ready = false
	} else {
		checks["audit"] = check{OK: true}
	}
	if s.ledger != nil {
		if p, ok := s.ledger.(pinger); ok {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			err := p.Ping(ctx)
			cancel()
			if err != nil {
				checks["state"] = check{Detail: "state backend unreachable: " + stateDetail(err)}
				s.log.Warn("not ready: state", "error", err)
				degraded = true
			} else {
				checks["state"] = check{OK: true}
			}
		}
	}
	if s.revocations != nil {
		checks["revocations"] = s.revocationCheck()
		degraded = degraded || !checks["revocations"].OK
	}
	// Without its state a replica refuses statistics, and under
	// on_failure closed everything else too: out of rotation. Under open
	// it still serves the rest, so it stays in, saying it is degraded.
	open := s.cfg.State.OnFailure == FailOpen
	status, code := "ready", http.StatusOK
	switch {
	case !ready || (degraded && !open):
		status, code = "not ready", http.StatusServiceUnavailable
	case degraded:
		status = "degraded"
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
}

// auditErr is nil when the trail can take records. After a failed write
// the trail stays failed until a batch succeeds; a probe write tells
// readiness sooner whether the disk has come back.
func (s *Server) auditErr() error {
	err := s.audit.Err()
	if err == nil {
		return nil
	}
	if p, ok := s.audit.(prober); ok {
		if perr := p.Probe(); perr != nil {
			return perr
		}
		return nil
	}
	return err
}
