package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testSecret is 32 bytes, the shortest secret allowed.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// signed returns the headers Sign gives body sent as id at ts.
func signed(secret []byte, id string, ts time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(secret, id, ts, body))
	return h
}

// The vector the Standard Webhooks libraries test against: its secret,
// whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, decodes to these 24 bytes.
func TestSignMatchesTheStandardWebhooksVector(t *testing.T) {
	secret := []byte{0x31, 0xf2, 0x90, 0xf6, 0xbf, 0x06, 0x29, 0x8a, 0xab, 0x4f, 0x08, 0xd4,
		0x3c, 0x3f, 0x08, 0x2c, 0xf6, 0x48, 0xa3, 0x62, 0xda, 0x2d, 0xa4, 0xb0}
	got := Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerifyAcceptsWhatSignSigned(t *testing.T) {
	sent := time.Unix(1767225600, 0)
	body := []byte(`{"type":"notice.sent","notice":{"id":"ntc_1"}}`)
	h := signed(testSecret, "ntc_1", sent, body)
	for _, now := range []time.Time{sent, sent.Add(DefaultTolerance), sent.Add(-DefaultTolerance)} {
		if err := Verify(testSecret, h, body, now, DefaultTolerance); err != nil {
			t.Errorf("Verify at %s after sending: %v", now.Sub(sent), err)
		}
	}
}

func TestVerifyRefusesWhatWasNotSignedOrIsStale(t *testing.T) {
	sent := time.Unix(1767225600, 0)
	body := []byte(`{"type":"notice.sent"}`)
	otherSecret := []byte("another secret, also of 32 bytes")
	for _, tc := range []struct {
		name string
		edit func(h http.Header) []byte // returns the body received
		now  time.Time
		tol  time.Duration
		want string
	}{
		{"wrong secret", func(h http.Header) []byte {
			h.Set(HeaderSignature, Sign(otherSecret, "ntc_1", sent, body))
			return body
		}, sent, 0, "no v1 signature matches"},
		{"tampered body", func(http.Header) []byte { return []byte(`{"type":"notice.sent" }`) }, sent, 0, "no v1 signature matches"},
		{"another id", func(h http.Header) []byte { h.Set(HeaderID, "ntc_2"); return body }, sent, 0, "no v1 signature matches"},
		{"timestamp changed", func(h http.Header) []byte {
			h.Set(HeaderTimestamp, strconv.FormatInt(sent.Unix()+1, 10))
			return body
		}, sent, 0, "no v1 signature matches"},
		{"old timestamp", func(http.Header) []byte { return body }, sent.Add(DefaultTolerance + time.Second), 0, "beyond the 5m0s tolerated"},
		{"future timestamp", func(http.Header) []byte { return body }, sent.Add(-DefaultTolerance - time.Second), 0, "beyond the 5m0s tolerated"},
		{"old for a tighter tolerance", func(http.Header) []byte { return body }, sent.Add(time.Minute), 30 * time.Second, "beyond the 30s tolerated"},
		{"no id", func(h http.Header) []byte { h.Del(HeaderID); return body }, sent, 0, "no Webhook-Id header"},
		{"no timestamp", func(h http.Header) []byte { h.Del(HeaderTimestamp); return body }, sent, 0, "no Webhook-Timestamp header"},
		{"no signature", func(h http.Header) []byte { h.Del(HeaderSignature); return body }, sent, 0, "no Webhook-Signature header"},
		{"timestamp not a number", func(h http.Header) []byte { h.Set(HeaderTimestamp, "yesterday"); return body }, sent, 0, "not unix seconds"},
		{"only another version", func(h http.Header) []byte {
			h.Set(HeaderSignature, "v1a,"+strings.TrimPrefix(h.Get(HeaderSignature), "v1,"))
			return body
		}, sent, 0, "no v1 signature matches"},
		{"signature not base64", func(h http.Header) []byte { h.Set(HeaderSignature, "v1,@@@@"); return body }, sent, 0, "no v1 signature matches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := signed(testSecret, "ntc_1", sent, body)
			got := tc.edit(h)
			err := Verify(testSecret, h, got, tc.now, tc.tol)
			if !errors.Is(err, ErrInvalidSignature) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify = %v, want ErrInvalidSignature saying %q", err, tc.want)
			}
		})
	}
}

// While a secret is rotated, the sender signs with both, and a receiver
// holding either accepts.
func TestVerifyAcceptsAnyOfSeveralSignaturesDuringARotation(t *testing.T) {
	sent := time.Unix(1767225600, 0)
	body := []byte(`{"type":"notice.sent"}`)
	oldSecret, newSecret := testSecret, []byte("the new secret, at least 32 bytes")
	h := signed(oldSecret, "ntc_1", sent, body)
	h.Set(HeaderSignature, Sign(oldSecret, "ntc_1", sent, body)+" "+Sign(newSecret, "ntc_1", sent, body))
	for _, secret := range [][]byte{oldSecret, newSecret} {
		if err := Verify(secret, h, body, sent, 0); err != nil {
			t.Errorf("Verify with %q: %v", secret, err)
		}
	}
	if err := Verify([]byte("neither the old nor the new secret"), h, body, sent, 0); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("Verify with a third secret = %v, want ErrInvalidSignature", err)
	}
}

// A short secret is the receiver's mistake, not the request's: it must
// not read as a bad signature, nor let one through.
func TestVerifyRefusesAShortSecret(t *testing.T) {
	sent := time.Unix(1767225600, 0)
	body := []byte(`{}`)
	for _, secret := range [][]byte{nil, []byte("short")} {
		h := signed(secret, "ntc_1", sent, body)
		err := Verify(secret, h, body, sent, 0)
		if err == nil || errors.Is(err, ErrInvalidSignature) {
			t.Errorf("Verify with a %d-byte secret = %v, want a configuration error", len(secret), err)
		}
	}
}
