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

// runTokenRevoke is `sluice token revoke`: it adds a token id to the
// revocation list that every gateway polls.
//
// With Redis (--config naming state.redis, or --redis ADDR) the list is
// written directly, and every replica refuses the token within
// state.revocations.poll. With the embedded state the running gateway
// holds the state file's lock, so the revocation goes through the
// gateway's officer endpoint (--gateway URL --token OFFICER_TOKEN), which
// audits it; --config writes the file itself only while no gateway has
// it open, for the gateway to read when it starts.
func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token revoke", stderr)
	jti := fs.String("jti", "", "id of the token to revoke (its jti claim; required)")
	expires := fs.String("expires", "", "when the token expires (RFC 3339); the revocation is kept until then (default: --ttl from now)")
	ttl := fs.Duration("ttl", 30*24*time.Hour, "how long to keep the revocation when --expires is not given")
	cfgPath := fs.String("config", "", "the gateway's configuration: revoke in its state backend")
	addr := fs.String("redis", "", "revoke in the Redis at host:port (the default user, no TLS)")
	prefix := fs.String("prefix", "sluice", "key prefix of the deployment in Redis, with --redis")
	gw := fs.String("gateway", "", "revoke through the gateway at this URL (POST /admin/v1/revocations)")
	token := fs.String("token", "", "an officer's token, with --gateway")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *jti == "" {
		return &exitError{code: 2, msg: "token revoke: --jti is required"}
	}
	if n := btoi(*cfgPath != "") + btoi(*addr != "") + btoi(*gw != ""); n != 1 {
		return &exitError{code: 2, msg: "token revoke: give one of --config, --redis and --gateway"}
	}
	until := time.Now().Add(*ttl)
	if *expires != "" {
		t, err := time.Parse(time.RFC3339, *expires)
		if err != nil {
			return &exitError{code: 2, msg: "token revoke: --expires: want an RFC 3339 time"}
		}
		until = t
	}
	if !until.After(time.Now()) {
		return &exitError{code: 2, msg: "token revoke: the token has expired already"}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	switch {
	case *gw != "":
		err = revokeThroughGateway(ctx, *gw, *token, *jti, until)
	case *addr != "":
		c := redis.NewClient(&redis.Options{Addr: *addr, DialTimeout: 5 * time.Second})
		defer c.Close()
		err = revokeInRedis(ctx, c, *prefix, *jti, until)
	default:
		err = revokeInConfiguredState(ctx, *cfgPath, *jti, until)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked token %s until %s\n", *jti, until.UTC().Format(time.RFC3339))
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func revokeInRedis(ctx context.Context, c redis.UniversalClient, prefix, jti string, until time.Time) error {
	r, err := state.NewRedis(c, state.RedisOptions{Prefix: prefix})
	if err != nil {
		return err
	}
	return r.Revoke(ctx, jti, until)
}

func revokeInConfiguredState(ctx context.Context, path, jti string, until time.Time) error {
	cfg, err := gateway.LoadConfig(path)
	if err != nil {
		return err
	}
	switch {
	case cfg.State.Redis != nil:
		c, err := redisClient(cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		return revokeInRedis(ctx, c, cfg.State.Redis.Prefix, jti, until)
	case cfg.State.Path != "":
		b, err := state.OpenBolt(cfg.Path(cfg.State.Path))
		if errors.Is(err, state.ErrLocked) {
			return fmt.Errorf("token revoke: %s is open in a running gateway; revoke through it: sluice token revoke --gateway URL --token OFFICER_TOKEN --jti %s", cfg.State.Path, jti)
		}
		if err != nil {
			return err
		}
		defer b.Close()
		return b.Revoke(ctx, jti, until)
	}
	return errors.New("token revoke: the configuration has no state (state.path or state.redis) to keep revocations in")
}

func revokeThroughGateway(ctx context.Context, base, token, jti string, until time.Time) error {
	if token == "" {
		return &exitError{code: 2, msg: "token revoke: --gateway needs --token (an officer's)"}
	}
	body, _ := json.Marshal(map[string]any{"jti": jti, "expires_at": until.UTC().Format(time.RFC3339)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/admin/v1/revocations", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
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
