package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// Delivery is the outcome of one attempt to deliver an event, or of an
// event dropped on [Sender.Close].
type Delivery struct {
	// ID is the event's id (its Webhook-Id).
	ID string
	// Dept and URL are the target's.
	Dept string
	URL  string
	// Attempt counts from 1. For an event dropped on Close it is the
	// attempt that will not be made.
	Attempt int
	// Status is the response's status code; 0 when there was none.
	Status int
	// Err says briefly why the attempt failed ("status 503", "timeout",
	// "connection refused", "gateway stopping"); "" when OK. It never
	// holds the secret or anything the receiver sent back.
	Err string
	// Final is set when no attempt will follow for this event.
	Final bool
	// OK is set when the receiver accepted the event (a 2xx).
	OK bool
	// At is when the attempt began, by [Options.Now].
	At time.Time
	// Took is how long it took, by [Options.Now].
	Took time.Duration
	// RetryIn is the wait before the next attempt; 0 when Final.
	RetryIn time.Duration
}

// stoppingReason is the Err of an attempt cut short, or an event
// dropped, by Close.
const stoppingReason = "gateway stopping"

// maxResponseRead is how much of a response body is read, to be
// discarded: enough for a receiver's usual short answer to leave the
// connection reusable, not enough for a hostile one to cost anything.
const maxResponseRead = 4 << 10

// verdict is what an attempt's outcome means for the event.
type verdict int

const (
	delivered verdict = iota // accepted: done
	retry                    // try again after a wait
	refused                  // failed, and trying again would not help
)

// classify judges a response status. 408, 409, 425 and 429 are the 4xx a
// receiver may answer to a request it would accept later; 3xx is final
// because redirects are not followed (see Options.Client).
func classify(status int) verdict {
	switch {
	case status >= 200 && status < 300:
		return delivered
	case status >= 500 && status < 600,
		status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooEarly, status == http.StatusTooManyRequests:
		return retry
	default:
		return refused
	}
}

// attempt makes attempt j.attempt to deliver j, returning its outcome
// (Final left for the caller to decide), what it means, and, for a retry,
// how long to wait.
func (s *Sender) attempt(j *job) (Delivery, verdict, time.Duration) {
	start := s.opts.Now()
	d := Delivery{ID: j.id, Dept: j.target.Dept, URL: j.target.URL, Attempt: j.attempt, At: start}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, j.target.URL, bytes.NewReader(j.body))
	if err != nil {
		// Send checked the URL, so this is a bug rather than the target.
		d.Err = "request not built"
		s.opts.Logger.Error("webhook request not built", "dept", d.Dept, "id", d.ID, "error", err)
		return d, refused, 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice-webhook/1")
	req.Header.Set(HeaderID, j.id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(start.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(j.target.Secret, j.id, start, j.body))

	resp, err := s.client.Do(req)
	if err != nil {
		d.Took = s.opts.Now().Sub(start)
		d.Err = s.reason(err)
		// The url.Error's own message would repeat the URL, query and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		s.opts.Logger.Warn("webhook delivery failed", "dept", d.Dept, "id", d.ID, "attempt", d.Attempt,
			"reason", d.Err, "error", err)
		return d, retry, s.delay(j.attempt, 0)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxResponseRead)
	resp.Body.Close()
	d.Took = s.opts.Now().Sub(start)
	d.Status = resp.StatusCode
	v := classify(resp.StatusCode)
	switch {
	case v == delivered:
		d.OK = true
		s.opts.Logger.Debug("webhook delivered", "dept", d.Dept, "id", d.ID, "attempt", d.Attempt, "status", d.Status)
		return d, v, 0
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		d.Err = fmt.Sprintf("status %d: redirect not followed", resp.StatusCode)
	default:
		d.Err = fmt.Sprintf("status %d", resp.StatusCode)
	}
	s.opts.Logger.Warn("webhook delivery failed", "dept", d.Dept, "id", d.ID, "attempt", d.Attempt,
		"status", d.Status, "reason", d.Err)
	if v == retry {
		return d, v, s.delay(j.attempt, retryAfter(resp.Header, start))
	}
	return d, v, 0
}

// reason names a failed request's cause in a few words, for Delivery.Err:
// the full error may hold the URL, which is kept out of the trail.
func (s *Sender) reason(err error) string {
	var (
		ne   net.Error
		dns  *net.DNSError
		ua   x509.UnknownAuthorityError
		host x509.HostnameError
		inv  x509.CertificateInvalidError
		rh   tls.RecordHeaderError
	)
	switch {
	case s.ctx.Err() != nil:
		return stoppingReason
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "host not found"
		}
		return "name lookup failed"
	case errors.As(err, &ua), errors.As(err, &host), errors.As(err, &inv):
		return "tls certificate not accepted"
	case errors.As(err, &rh):
		return "not a tls server"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	default:
		return "network error"
	}
}
