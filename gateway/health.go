package gateway

import (
	"context"
	"encoding/json"
	"errors"
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

// unknown answers paths the gateway does not serve: the caller is
// authenticated first, so unauthenticated probes learn nothing of the
// route layout, and the refusal is audited.
func (s *Server) unknown(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, "unknown")
	if e := s.authenticate(x, r); e != nil {
		s.fail(w, r, x, e)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.fail(w, r, x, errMethod())
		return
	}
	s.fail(w, r, x, errNotFound("no such route"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// recoverer turns a panic into a 500 JSON error instead of a dropped
// connection, and logs it with the request id. http.ErrAbortHandler is
// re-raised, as net/http expects.
func recoverer(s *Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ref := &exchangeRef{}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			x := ref.x
			if x == nil { // the panic came before the exchange began
				x = s.begin(w, r, "unknown")
			}
			s.log.Error("panic", "request_id", x.id, "panic", v)
			// Audited as an error, like any failure: what the exchange
			// knew of the caller, the dataset and the decision stays.
			x.ev.Decision = "error"
			x.ev.Reason = "the gateway failed internally"
			s.fail(w, r, x, errInternal(nil))
		}()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeRefKey{}, ref)))
	})
}

// exchangeRef lets the recoverer find the exchange a handler began, so
// that a panic is audited with what was known of the request.
type exchangeRef struct{ x *exchange }

type exchangeRefKey struct{}

// prober is an audit trail that can test a write without a record.
type prober interface{ Probe() error }

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

// pinger is a state backend that can say whether it is reachable.
type pinger interface {
	Ping(ctx context.Context) error
}
