package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
)

// healthz answers while the process runs.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", newRequestID())
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// check is one readiness condition.
type check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// readyz answers 200 when a policy is loaded and the audit trail is
// writable, 503 otherwise, with each check's state.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", newRequestID())
	checks := map[string]check{}
	ready := true
	if set := s.policies.Current(); set == nil {
		checks["policy"] = check{Detail: "no policy loaded"}
		ready = false
	} else {
		checks["policy"] = check{OK: true, Detail: "revision " + set.Revision()}
	}
	if err := s.audit.Err(); err != nil {
		checks["audit"] = check{Detail: "audit trail not writable"}
		s.log.Warn("not ready: audit trail", "error", err)
		ready = false
	} else {
		checks["audit"] = check{OK: true}
	}
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "not ready", http.StatusServiceUnavailable
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
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			id := w.Header().Get("X-Request-Id")
			s.log.Error("panic", "request_id", id, "panic", v)
			e := errInternal(nil)
			writeError(w, e, errorJSON(id, e))
		}()
		next.ServeHTTP(w, r)
	})
}
