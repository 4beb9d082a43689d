package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// The middleware every route passes through, and the answers of last
// resort: panic recovery, the handler for paths the gateway does not serve,
// and the JSON writer of answers that are not records.

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

// writeJSON answers v as JSON with status, never to be cached: the
// gateway's own answers are about one caller at one moment.
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
