package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers that carry a delivery's signature.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock, either way: the window Standard Webhooks recommends.
// It bounds how long a captured request can be replayed.
const DefaultTolerance = 5 * time.Minute

// ErrInvalidSignature is wrapped by every refusal of [Verify] that is the
// request's fault (a missing header, a stale timestamp, no signature that
// matches): answer 401.
var ErrInvalidSignature = errors.New("webhook: invalid signature")

// Sign returns the Webhook-Signature value of body sent as event id at ts:
// "v1," and the standard base64 of HMAC-SHA256(secret, id.timestamp.body),
// the timestamp in unix seconds.
func Sign(secret []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(secret, id, strconv.FormatInt(ts.Unix(), 10), body))
}

// mac is the HMAC over what Standard Webhooks signs, with id and ts as
// they appear in the headers.
func mac(secret []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks that a request with headers h and body was signed with
// secret and that its timestamp is within tolerance of now (either way;
// tolerance ≤ 0 means [DefaultTolerance]). Webhook-Signature may hold
// several space-separated signatures, as it does while a secret is being
// rotated: one that matches is enough; entries other than "v1," ones are
// ignored. Signatures are compared in constant time.
//
// body must be the bytes received, before any decoding. A refusal wraps
// [ErrInvalidSignature]; a secret shorter than 32 bytes is an error of the
// receiver's configuration and does not.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("webhook: verify: the secret has %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, ts := h.Get(HeaderID), h.Get(HeaderTimestamp)
	sigs := strings.Fields(strings.Join(h.Values(HeaderSignature), " "))
	switch {
	case id == "":
		return fmt.Errorf("%w: no %s header", ErrInvalidSignature, HeaderID)
	case ts == "":
		return fmt.Errorf("%w: no %s header", ErrInvalidSignature, HeaderTimestamp)
	case len(sigs) == 0:
		return fmt.Errorf("%w: no %s header", ErrInvalidSignature, HeaderSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not unix seconds", ErrInvalidSignature, HeaderTimestamp)
	}
	if off := now.Sub(time.Unix(sec, 0)); off > tolerance || off < -tolerance {
		return fmt.Errorf("%w: timestamp %s is %s from now, beyond the %s tolerated",
			ErrInvalidSignature, ts, off.Round(time.Second), tolerance)
	}
	want := mac(secret, id, ts, body)
	for _, s := range sigs {
		b64, ok := strings.CutPrefix(s, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrInvalidSignature)
}
