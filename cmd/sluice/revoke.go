package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/gateway"
	"github.com/sluicegw/sluice/state"
)

// runTokenRevoke is `sluice token revoke`: it adds a token id, or a
// subject whose tokens issued before a time are refused (for tokens
// without a jti), to the revocation list that every gateway polls.
//
// With Redis (--config naming state.redis, or --redis ADDR) the list is
// written directly, and every replica refuses the token within
// state.revocations.poll. With the embedded state the running gateway
// holds the state file's lock, so the revocation goes through the
// gateway's officer endpoint (--gateway URL --token OFFICER_TOKEN), which
// audits it; --config writes the file itself only while no gateway has
// it open, for the gateway to read when it starts.
func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("token revoke", "Revoke a token, or a subject's tokens issued before a time, on every gateway replica.")
	c.usage = "(--jti ID | --sub S [--issued-before T] [--issuer I]) (--config F | --redis ADDR | --gateway URL --token T) [flags]"
	c.about = `With Redis (--config naming state.redis, or --redis) the revocation list is
written directly, and every replica refuses the token within
state.revocations.poll. With the embedded state a running gateway holds the
state file: revoke through it (--gateway with an officer's --token), which
audits the revocation; --config writes the file only while no gateway has it
open.`
	c.examples = []string{
		"sluice token revoke --jti 5f2c0a9e1b7d4c33a1e0f9d2 --redis 127.0.0.1:6379",
		"sluice token revoke --sub alice --gateway http://127.0.0.1:8080 --token $OFFICER",
		"sluice token revoke --jti 5f2c0a9e1b7d4c33a1e0f9d2 --config sluice.yaml --expires 2026-12-01T00:00:00Z",
	}
	fs := c.flags
	jti := fs.String("jti", "", "id of the token to revoke (its jti claim)")
	sub := fs.String("sub", "", "revoke the tokens of this subject (their sub claim) issued before --issued-before")
	issuedBefore := fs.String("issued-before", "", "with --sub: the cutoff (RFC 3339; default now); tokens issued later are accepted")
	issuer := fs.String("issuer", "", "with --sub and --redis: the issuer whose subject it is (--config and --gateway use the configured one)")
	expires := fs.String("expires", "", "when the revoked tokens expire (RFC 3339); the revocation is kept until then (default: --ttl from now, or from --issued-before)")
	ttl := fs.Duration("ttl", 30*24*time.Hour, "how long to keep the revocation when --expires is not given")
	cfgPath := fs.String("config", "", "the gateway's configuration: revoke in its state backend")
	addr := fs.String("redis", "", "revoke in the Redis at host:port (the default user, no TLS)")
	prefix := fs.String("prefix", "sluice", "key prefix of the deployment in Redis, with --redis")
	gw := fs.String("gateway", "", "revoke through the gateway at this URL (POST /admin/v1/revocations)")
	token := fs.String("token", "", "an officer's token, with --gateway")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := c.noArgs(rest); err != nil {
		return err
	}
	usage := func(msg string) error { return usagef("token revoke", "%s", msg) }
	if (*jti == "") == (*sub == "") {
		return usage("give one of --jti and --sub")
	}
	if n := btoi(*cfgPath != "") + btoi(*addr != "") + btoi(*gw != ""); n != 1 {
		return usage("give one of --config, --redis and --gateway")
	}
	if *sub == "" && (*issuedBefore != "" || *issuer != "") {
		return usage("--issued-before and --issuer go with --sub")
	}
	if *sub != "" && (*issuer != "") != (*addr != "") {
		return usage("--issuer goes with --sub and --redis, and --redis with --sub needs it")
	}
	now := time.Now()
	rv := revocation{jti: *jti, subject: *sub, issuer: *issuer}
	from := now
	if *issuedBefore != "" {
		t, err := time.Parse(time.RFC3339, *issuedBefore)
		if err != nil {
			return usage("--issued-before: want an RFC 3339 time")
		}
		from = t
	}
	if rv.subject != "" {
		if from.After(now) {
			return usage("--issued-before is in the future: the tokens the subject is given until then would be refused too")
		}
		rv.issuedBefore = from
	}
	rv.until = from.Add(*ttl)
	if *expires != "" {
		t, err := time.Parse(time.RFC3339, *expires)
		if err != nil {
			return usage("--expires: want an RFC 3339 time")
		}
		rv.until = t
	}
	if !rv.until.After(now) {
		return usage("the tokens have expired already")
	}
	if *gw != "" && *token == "" {
		return usage("--gateway needs --token (an officer's)")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch {
	case *gw != "":
		err = revokeThroughGateway(ctx, *gw, *token, rv)
	case *addr != "":
		c := redis.NewClient(&redis.Options{Addr: *addr, DialTimeout: 5 * time.Second})
		defer c.Close()
		err = revokeInRedis(ctx, c, *prefix, rv)
	default:
		err = revokeInConfiguredState(ctx, *cfgPath, rv)
	}
	if err != nil {
		return err
	}
	if rv.jti != "" {
		fmt.Fprintf(stdout, "revoked token %s until %s\n", rv.jti, rv.until.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(stdout, "revoked the tokens of %s issued before %s until %s\n", rv.subject,
			rv.issuedBefore.UTC().Format(time.RFC3339), rv.until.UTC().Format(time.RFC3339))
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// revocation is what `sluice token revoke` was asked to revoke: a token
// id, or a subject's tokens issued before a time; either until a time.
type revocation struct {
	jti          string
	subject      string
	issuer       string // of the subject; the configured one when empty
	issuedBefore time.Time
	until        time.Time
}

// into writes r into the list st keeps.
func (r revocation) into(ctx context.Context, st gateway.Revocations) error {
	if r.jti != "" {
		return st.Revoke(ctx, r.jti, r.until)
	}
	return st.RevokeSubject(ctx, state.RevokedSubject{Issuer: r.issuer, Subject: r.subject},
		state.SubjectRevocation{IssuedBefore: r.issuedBefore, Expires: r.until})
}

func revokeInRedis(ctx context.Context, c redis.UniversalClient, prefix string, rv revocation) error {
	r, err := state.NewRedis(c, state.RedisOptions{Prefix: prefix})
	if err != nil {
		return err
	}
	return rv.into(ctx, r)
}

func revokeInConfiguredState(ctx context.Context, path string, rv revocation) error {
	cfg, err := gateway.LoadConfig(path)
	if err != nil {
		return err
	}
	rv.issuer = cfg.Auth.Issuer
	switch {
	case cfg.State.Redis != nil:
		c, err := redisClient(cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		return revokeInRedis(ctx, c, cfg.State.Redis.Prefix, rv)
	case cfg.State.Path != "":
		b, err := state.OpenBolt(cfg.Path(cfg.State.Path))
		if errors.Is(err, state.ErrLocked) {
			what := "--jti " + rv.jti
			if rv.jti == "" {
				what = "--sub " + rv.subject
			}
			return fmt.Errorf("token revoke: %s is open in a running gateway; revoke through it: sluice token revoke --gateway URL --token OFFICER_TOKEN %s", cfg.State.Path, what)
		}
		if err != nil {
			return err
		}
		defer b.Close()
		return rv.into(ctx, b)
	}
	return errors.New("token revoke: the configuration has no state (state.path or state.redis) to keep revocations in")
}

func revokeThroughGateway(ctx context.Context, base, token string, rv revocation) error {
	req := map[string]any{"expires_at": rv.until.UTC().Format(time.RFC3339)}
	if rv.jti != "" {
		req["jti"] = rv.jti
	} else {
		req["subject"], req["issued_before"] = rv.subject, rv.issuedBefore.UTC().Format(time.RFC3339Nano)
	}
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/admin/v1/revocations", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Authorization", "Bearer "+token)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("token revoke: the gateway answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
