package gateway

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/policy"
)

// sharedState is what replicas share in these tests: the revocation list
// and the rate limiter (state.Memory with a LocalLimiter, state.Bolt,
// state.Redis).
type sharedState interface {
	Revocations
	RateLimiter
}

// newReplicas starts n gateways configured alike (scalePolicy, the health
// source, extra YAML) over st, taking tokens signed with one secret, as
// replicas behind a load balancer would. Their st field is nil.
func newReplicas(t *testing.T, n int, extra string, st sharedState) []*scaleGateway {
	t.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	up := httptest.NewServer(http.HandlerFunc(serveItems))
	t.Cleanup(up.Close)
	gs := make([]*scaleGateway, n)
	for i := range gs {
		cfg, set := loadFixture(t, map[string][]byte{"hs.key": secret, "policies/sluice.rego": []byte(scalePolicy),
			"sluice.yaml": []byte(hsHealth(up.URL) + `      - name: visits
        path: /visits
        privacy_unit: patient_id
        fields:
          visit_id: {type: string, level: L2}
          patient_id: {type: id_cn, level: L4}
          district: {type: string, level: L1}
` + extra)})
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		g := &scaleGateway{secret: secret, audit: &orderAudit{}}
		var err error
		g.srv, err = New(ctx, cfg, Deps{Audit: g.audit, Policies: policy.NewEngine(set), Logger: slog.New(slog.DiscardHandler),
			Revocations: st, Limiter: st})
		if err != nil {
			t.Fatal(err)
		}
		gs[i] = g
	}
	return gs
}

// tokenIssuedAt signs a token for sub with roles, without jti, issued at
// iat (no "iat" claim when iat is zero).
func (g *scaleGateway) tokenIssuedAt(t *testing.T, sub string, iat time.Time, roles ...string) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": "test-idp", "aud": "sluice", "sub": sub, "roles": roles, "exp": time.Now().Add(time.Hour).Unix()}
	if !iat.IsZero() {
		claims["iat"] = iat.Unix()
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(g.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// from sends a request from the client address addr (host:port).
func (g *scaleGateway) from(addr, method, path, token string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = addr
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	g.srv.ServeHTTP(w, r)
	return w
}
