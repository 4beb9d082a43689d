package gateway

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Error is a failure the caller is told about: a status, a stable code and
// a message safe to show. The cause, which may name internals, is only
// logged.
type Error struct {
	Status int
	Code   string
	Msg    string
	// RetryAfter, when set, is sent as Retry-After (seconds).
	RetryAfter int
	// budget, on a privacy_budget_exhausted refusal, is what the release
	// needed and what the refusing account has left, as numbers.
	budget *BudgetRefusal
	cause  error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.cause)
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.cause }

func errBadRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Msg: msg}
}

func errUnauthenticated(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Msg: msg}
}

func errForbidden(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Msg: msg}
}

// errBudgetExhausted refuses a statistics release its budgets cannot pay
// for; msg says what is left.
func errBudgetExhausted(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "privacy_budget_exhausted", Msg: msg}
}

func errNotFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Msg: msg}
}

func errConflict(msg string) *Error {
	return &Error{Status: http.StatusConflict, Code: "conflict", Msg: msg}
}

func errMethod() *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Msg: "this route does not take that method"}
}

func errUpstreamInvalid(cause error) *Error {
	return &Error{Status: http.StatusBadGateway, Code: "upstream_invalid",
		Msg: "the department's service sent a response the gateway cannot release", cause: cause}
}

func errTooLarge(msg string, cause error) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Msg: msg, cause: cause}
}

func errUpstreamTimeout(cause error) *Error {
	return &Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
		Msg: "the department's service did not answer in time", cause: cause}
}

// errRateLimited refuses a request over a rate limit; the caller may try
// again after wait (sent as Retry-After, whole seconds, at least 1).
func errRateLimited(msg string, wait time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Msg: msg,
		RetryAfter: max(1, int(math.Ceil(wait.Seconds())))}
}

func errUnavailable(msg string, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Msg: msg, cause: cause}
}

func errInternal(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error", cause: cause}
}

// failStage names the step of an exchange that refused or failed it, for
// its audit record: what an auditor sorts refusals by (a probe of a
// hidden field is "parameters", a guessed record "lookup").
func failStage(x *exchange, e *Error) string {
	switch e.Code {
	case "unauthenticated":
		return "authenticate"
	case "rate_limited":
		return "rate_limit"
	case "privacy_budget_exhausted":
		return "budget"
	case "method_not_allowed":
		return "method"
	case "conflict":
		return "state"
	case "bad_request":
		return "request"
	case "too_large":
		return "limits"
	case "upstream_invalid", "upstream_timeout", "upstream_unavailable":
		return "upstream"
	case "not_found":
		if x.ds == nil {
			return "route"
		}
		return "lookup"
	case "forbidden":
		if x.ev.Decision == "allow" {
			return "parameters" // the policy allowed; a guard on the request refused
		}
		return "policy"
	}
	return "gateway"
}

// errorBody is the JSON error document of DESIGN.md.
type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
		// A privacy_budget_exhausted refusal adds its numbers.
		*BudgetRefusal
	} `json:"error"`
}

// errorJSON renders the error document.
func errorJSON(requestID string, e *Error) []byte {
	var body errorBody
	body.Error.Code, body.Error.Message, body.Error.RequestID = e.Code, e.Msg, requestID
	body.Error.BudgetRefusal = e.budget
	b, _ := json.Marshal(body)
	return append(b, '\n')
}

// writeError is the one place errors become HTTP responses. body is
// errorJSON's rendering of e.
func writeError(w http.ResponseWriter, e *Error, body []byte) {
	h := w.Header()
	for k := range h {
		if !keepOnError(k) {
			delete(h, k)
		}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="sluice", error="invalid_token"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	w.Write(body)
}
