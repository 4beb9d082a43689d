package webhook

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
)

// Target is where a department's events go.
type Target struct {
	// Dept names the department; it labels deliveries and errors.
	Dept string
	// URL receives each event as a JSON POST: https, or http when
	// [Options.AllowHTTP] is set or the host is a loopback address. It
	// must not hold credentials: the signature is the only ones sent.
	URL string
	// Secret signs the deliveries; at least [MinSecretLen] bytes.
	Secret []byte
}

// check refuses a target, id or body that no attempt could deliver, or
// that must not be sent.
func (s *Sender) check(t Target, id string, body []byte) error {
	u, err := url.Parse(t.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		// The URL itself stays out of errors: a query can hold a token.
		return fmt.Errorf("webhook: %s: want an http(s) URL with a host", t.Dept)
	case u.Scheme == "http" && !s.opts.AllowHTTP && !isLoopback(u.Hostname()):
		return fmt.Errorf("webhook: %s: http only to a loopback address; use https", t.Dept)
	case u.User != nil:
		// net/http would turn them into an Authorization header.
		return fmt.Errorf("webhook: %s: credentials do not belong in the URL: deliveries are signed", t.Dept)
	case len(t.Secret) < MinSecretLen:
		return fmt.Errorf("webhook: %s: the secret has %d bytes, want at least %d", t.Dept, len(t.Secret), MinSecretLen)
	case !validID(id):
		return fmt.Errorf("webhook: %s: event id %q: want 1 to %d letters, digits, _ or -", t.Dept, id, maxIDLen)
	case len(body) > s.opts.MaxBody:
		return fmt.Errorf("webhook: %s: event %s: body of %d bytes exceeds the %d allowed", t.Dept, id, len(body), s.opts.MaxBody)
	case !json.Valid(body):
		return fmt.Errorf("webhook: %s: event %s: body is not JSON", t.Dept, id)
	}
	return nil
}

// isLoopback reports whether host names this machine: "localhost" or a
// loopback address (127.0.0.0/8, ::1).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// maxIDLen bounds an event id; hub ids are 24 characters.
const maxIDLen = 128

// validID reports whether id may be an event id. Keeping to letters,
// digits, _ and - keeps it a plain header value, and without a "." the
// signed "id.timestamp.body" cannot be split another way.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
