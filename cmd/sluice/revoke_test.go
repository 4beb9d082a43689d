package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/state"
)

// TestRevokedSubjectIsRefusedByEveryReplicaWithinASecond: `sluice token
// revoke --sub`, written to the shared state with --config and sent to one
// replica with --gateway: the subject's tokens issued before are refused
// by every replica within a second, a token issued after and other
// subjects' tokens are not.
func TestRevokedSubjectIsRefusedByEveryReplicaWithinASecond(t *testing.T) {
	rs := startReplicas(t, 3, replicaOptions{consumerBudget: 5, datasetBudget: 50})
	issued := func(sub string, at time.Time) string {
		tok, err := signToken(rs.key, tokenClaims{Subject: sub, Roles: []string{"reader"}, TTL: time.Hour}, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other := issued("otto", time.Now().Add(-time.Minute))
	for _, how := range []struct{ sub, via string }{{"rita", "cli"}, {"ruth", "endpoint"}} {
		t.Run(how.via, func(t *testing.T) {
			old := issued(how.sub, time.Now().Add(-time.Minute))
			for _, u := range rs.urls {
				if r := get(t, u+"/v1/town/people", old); r.status != http.StatusOK {
					t.Fatalf("%s before revocation: %d %s", u, r.status, r.body)
				}
			}
			args := []string{"token", "revoke", "--sub", how.sub, "--config", rs.cfgs[0]}
			if how.via == "endpoint" {
				args = []string{"token", "revoke", "--sub", how.sub, "--gateway", rs.urls[1], "--token", rs.token(t, "oscar", "officer")}
			}
			start := time.Now()
			if out, errOut, err := runCmd(t, args...); err != nil || !strings.Contains(out, "revoked the tokens of "+how.sub) {
				t.Fatalf("token revoke: %v\n%s%s", err, out, errOut)
			}
			for _, u := range rs.urls {
				for get(t, u+"/v1/town/people", old).status != http.StatusUnauthorized {
					if time.Since(start) > time.Second {
						t.Fatalf("%s still accepts the token %v after it was revoked", u, time.Since(start))
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			t.Logf("revoked (%s) on %d replicas within %v", how.via, len(rs.urls), time.Since(start).Round(time.Millisecond))
			reissued := issued(how.sub, time.Now().Add(2*time.Second))
			for _, u := range rs.urls {
				for name, tok := range map[string]string{"a token issued after": reissued, "another subject's token": other} {
					if r := get(t, u+"/v1/town/people", tok); r.status != http.StatusOK {
						t.Errorf("%s, %s: %d %s", u, name, r.status, r.body)
					}
				}
			}
		})
	}
}

// TestTokenRevokeBySubjectInRedisNamesTheIssuer: with --redis there is no
// configuration to take the issuer from, so --issuer says it.
func TestTokenRevokeBySubjectInRedisNamesTheIssuer(t *testing.T) {
	srv := redistest.Start(t)
	cutoff := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if out, errOut, err := runCmd(t, "token", "revoke", "--sub", "alice", "--issuer", "https://idp.example",
		"--issued-before", cutoff.Format(time.RFC3339), "--redis", srv.Addr(), "--prefix", "p1"); err != nil {
		t.Fatalf("token revoke: %v\n%s%s", err, out, errOut)
	}
	r, err := state.NewRedis(srv.Client(), state.RedisOptions{Prefix: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.Revoked(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	got := l.Subjects[state.RevokedSubject{Issuer: "https://idp.example", Subject: "alice"}]
	if !got.IssuedBefore.Equal(cutoff) || !got.Expires.Equal(cutoff.Add(30*24*time.Hour)) {
		t.Errorf("revocation %+v, want cut off at %v and kept 30 days from then", got, cutoff)
	}
}

func TestTokenRevokeRefusesUnclearRequests(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis", "127.0.0.1:1"}, "give one of --jti and --sub"},
		{[]string{"--jti", "x", "--sub", "alice", "--redis", "127.0.0.1:1"}, "give one of --jti and --sub"},
		{[]string{"--jti", "x", "--issued-before", future, "--redis", "127.0.0.1:1"}, "--issued-before and --issuer go with --sub"},
		{[]string{"--sub", "alice", "--redis", "127.0.0.1:1"}, "--redis with --sub needs it"},
		{[]string{"--sub", "alice", "--issuer", "i", "--gateway", "http://127.0.0.1:1", "--token", "t"}, "--issuer goes with --sub and --redis"},
		{[]string{"--sub", "alice", "--issuer", "i", "--redis", "127.0.0.1:1", "--issued-before", future}, "in the future"},
		{[]string{"--sub", "alice", "--issuer", "i", "--redis", "127.0.0.1:1", "--issued-before", "yesterday"}, "want an RFC 3339 time"},
		{[]string{"--sub", "alice", "--issuer", "i", "--redis", "127.0.0.1:1", "--issued-before", "2020-01-01T00:00:00Z"}, "expired already"},
		{[]string{"--sub", "alice", "--config", "a.yaml", "--redis", "127.0.0.1:1"}, "give one of --config, --redis and --gateway"},
	} {
		_, _, err := runCmd(t, append([]string{"token", "revoke"}, tc.args...)...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v (exit %d), want exit 2 saying %q", tc.args, err, exitCode(err), tc.want)
		}
	}
}
