// Package webhook pushes events to a department's own service: each one is
// POSTed as JSON, signed, and retried with back-off until it is accepted,
// refused, or out of attempts; every attempt is reported.
//
// # Signatures
//
// Deliveries are signed as Standard Webhooks (https://www.standardwebhooks.com/)
// signs them. Each request carries
//
//	Webhook-Id: ntc_…                  the event id, the same on every retry
//	Webhook-Timestamp: 1767225600      unix seconds of this attempt
//	Webhook-Signature: v1,<base64>     HMAC-SHA256(secret, id + "." + timestamp + "." + body)
//
// The secret is the bytes of the department's secret file, at least 32 of
// them, without a trailing newline (see [LoadSecret]). A receiver using a
// Standard Webhooks library passes it as "whsec_" followed by the secret
// in standard base64. The signature is the only credential a request
// carries: no Authorization header, no cookies, no credentials in the URL.
//
// A receiving department checks a request with [Verify] before trusting
// it, over the body exactly as received:
//
//	func (h *noticeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
//		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
//		if err != nil {
//			http.Error(w, "unreadable body", http.StatusBadRequest)
//			return
//		}
//		if err := webhook.Verify(h.secret, r.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
//			http.Error(w, "not signed by the gateway", http.StatusUnauthorized)
//			return
//		}
//		// A retry repeats Webhook-Id: handle each id once.
//		h.handle(r.Header.Get("Webhook-Id"), body)
//		w.WriteHeader(http.StatusNoContent)
//	}
//
// # Delivery
//
// A [Sender] delivers in the background from a bounded queue, so that
// [Sender.Send] never blocks a request. Any 2xx accepts a delivery. 5xx,
// 408, 409, 425, 429 and network failures (refused connections, timeouts)
// are retried with exponential back-off, honouring Retry-After; any other
// status, redirects included, is final: redirects are never followed, so
// a signed body goes nowhere but the configured URL. A receiver should
// answer quickly and expect to see an id more than once (a response lost
// to a timeout is retried).
//
// Every attempt is reported through [Options.Record] as a [Delivery]; the
// last one for an event has Final set. Nothing is kept across a restart:
// the caller keeps the events themselves.
package webhook
