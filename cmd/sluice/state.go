package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/gateway"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/state"
	usageidx "github.com/sluicegw/sluice/usage"
)

// openedState is the gateway's state backend as the configuration asks:
// nothing, the embedded bbolt file, or Redis shared with other replicas.
type openedState struct {
	bolt   *state.Bolt
	hub    hub.Store
	hubDB  *hub.Bolt // the hub's own bbolt file beside the state file
	client redis.UniversalClient
	redis  *state.Redis
	stream *state.AuditStream
	usage  usageidx.Index
	logger *slog.Logger
}

// openState opens the configured state. Redis being unreachable does not
// stop the gateway from starting: it refuses what needs Redis (and says
// so on /readyz) until Redis answers.
func openState(ctx context.Context, cfg *gateway.Config, logger *slog.Logger) (*openedState, error) {
	st := &openedState{logger: logger}
	switch {
	case cfg.State.Path != "":
		b, err := state.OpenBolt(cfg.Path(cfg.State.Path))
		if err != nil {
			return nil, err
		}
		st.bolt = b
		// The hub keeps its own file: the ledger's bbolt file is locked
		// by its handle.
		h, err := hub.OpenBolt(cfg.HubPath())
		if err != nil {
			b.Close()
			return nil, err
		}
		st.hub, st.hubDB = h, h
	case cfg.State.Redis != nil:
		c, err := redisClient(cfg)
		if err != nil {
			return nil, err
		}
		r, err := state.NewRedis(c, state.RedisOptions{Prefix: cfg.State.Redis.Prefix,
			ChargeRetention: time.Duration(*cfg.State.Redis.ChargeRetention)})
		if err != nil {
			c.Close()
			return nil, err
		}
		st.client, st.redis = c, r
		h, err := hub.NewRedis(c, hub.RedisOptions{Prefix: cfg.State.Redis.Prefix})
		if err != nil {
			c.Close()
			return nil, err
		}
		st.hub = h
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := r.Ping(cctx); err != nil {
			logger.Warn("redis unreachable at start; requests that need it are refused until it answers", "error", err)
		} else {
			for _, w := range r.CheckConfig(cctx) {
				logger.Warn("redis configuration puts the privacy budgets at risk", "warning", w)
			}
		}
	}
	if err := st.openUsage(cfg); err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

// openUsage opens the usage index: in Redis with the state (any replica
// answers for all), else a bbolt file in the trail's directory.
func (st *openedState) openUsage(cfg *gateway.Config) error {
	if st.client != nil {
		u, err := usageidx.NewRedis(st.client, cfg.State.Redis.Prefix)
		if err != nil {
			return fmt.Errorf("usage index: %w", err)
		}
		st.usage = u
		return nil
	}
	dir := cfg.Path(cfg.Audit.Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("audit.dir: %w", err)
	}
	u, err := usageidx.OpenBolt(filepath.Join(dir, gateway.UsageIndexFile))
	if err != nil {
		return fmt.Errorf("usage index: %w", err)
	}
	st.usage = u
	return nil
}

// audit adds the Redis witness and stream to the trail's options.
func (st *openedState) audit(cfg *gateway.Config, opts *audit.Options, reg prometheus.Registerer) error {
	a := &cfg.Audit
	if st.redis == nil {
		return nil
	}
	if a.RedisWitness {
		w, err := st.redis.Witness(a.Replica)
		if err != nil {
			return fmt.Errorf("audit.replica: %w", err)
		}
		opts.Witness = w
	}
	if sc := a.Stream; sc != nil {
		s, err := st.redis.Stream(state.StreamOptions{Key: sc.Key, Replica: a.Replica, MaxLen: sc.MaxLen, Queue: sc.Queue,
			Logger: st.logger})
		if err != nil {
			return fmt.Errorf("audit.stream: %w", err)
		}
		st.stream = s
		opts.OnDurable = s.Offer
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "sluice_audit_stream_published_total",
				Help: "Audit records copied to the Redis stream.",
			}, func() float64 { return float64(s.Published()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "sluice_audit_stream_dropped_total",
				Help: "Audit records not copied to the Redis stream because its queue was full (Redis slow or down); the local trail holds them.",
			}, func() float64 { return float64(s.Dropped()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sluice_audit_stream_queued",
				Help: "Audit records waiting to be copied to the Redis stream.",
			}, func() float64 { return float64(s.Queued()) }),
		)
	}
	return nil
}

// deps hands the state to the gateway.
func (st *openedState) deps(d *gateway.Deps) {
	d.Hub, d.Usage = st.hub, st.usage
	switch {
	case st.bolt != nil:
		d.Ledger, d.Answers, d.Revocations = st.bolt, st.bolt, st.bolt
	case st.redis != nil:
		d.Ledger, d.Answers, d.Revocations, d.Limiter = st.redis, st.redis, st.redis, st.redis
	}
}

// close runs after the trail's close: the stream sends what the trail
// made durable last, for a few seconds at most, then the backend closes.
func (st *openedState) close() {
	if st.stream != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := st.stream.Close(ctx); err != nil {
			st.logger.Warn("audit stream", "error", err)
		}
		cancel()
	}
	if st.bolt != nil {
		if err := st.bolt.Close(); err != nil {
			st.logger.Error("closing state", "error", err)
		}
	}
	if st.hubDB != nil {
		if err := st.hubDB.Close(); err != nil {
			st.logger.Error("closing the hub's state", "error", err)
		}
	}
	if st.usage != nil {
		if err := st.usage.Close(); err != nil {
			st.logger.Error("closing the usage index", "error", err)
		}
	}
	if st.client != nil {
		st.client.Close()
	}
}

// redisLogger sends go-redis's own messages (dial retries and the like)
// to the debug log: the gateway logs what they mean for requests itself.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.Debug(fmt.Sprintf(format, v...), "component", "go-redis")
}

var setRedisLogger sync.Once

// redisClient builds the client state.redis describes: a failover client
// with master_name, a cluster client with cluster or several addrs, else
// a client of one server. Timeouts are short and retries few, so that a
// request fails fast (503) while Redis is away rather than hang.
func redisClient(cfg *gateway.Config) (redis.UniversalClient, error) {
	rc := cfg.State.Redis
	setRedisLogger.Do(func() { redis.SetLogger(redisLogger{slog.Default()}) })
	t := time.Duration(rc.Timeout)
	o := &redis.UniversalOptions{
		Addrs:                 rc.Addrs,
		MasterName:            rc.MasterName,
		IsClusterMode:         rc.Cluster,
		Username:              rc.Username,
		DB:                    rc.DB,
		ClientName:            "sluice",
		DialTimeout:           t,
		ReadTimeout:           t,
		WriteTimeout:          t,
		PoolTimeout:           t,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DialerRetries:         1,
	}
	var err error
	if rc.PasswordFile != "" {
		if o.Password, err = readSecretFile(cfg.Path(rc.PasswordFile)); err != nil {
			return nil, fmt.Errorf("state.redis.password_file: %w", err)
		}
	}
	if rc.SentinelPasswordFile != "" {
		if o.SentinelPassword, err = readSecretFile(cfg.Path(rc.SentinelPasswordFile)); err != nil {
			return nil, fmt.Errorf("state.redis.sentinel_password_file: %w", err)
		}
	}
	if tc := rc.TLS; tc != nil {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: tc.ServerName}
		if tc.CAFile != "" {
			pem, err := os.ReadFile(cfg.Path(tc.CAFile))
			if err != nil {
				return nil, fmt.Errorf("state.redis.tls.ca_file: %w", err)
			}
			o.TLSConfig.RootCAs = x509.NewCertPool()
			if !o.TLSConfig.RootCAs.AppendCertsFromPEM(pem) {
				return nil, errors.New("state.redis.tls.ca_file: no PEM certificates")
			}
		}
		if tc.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.Path(tc.CertFile), cfg.Path(tc.KeyFile))
			if err != nil {
				return nil, fmt.Errorf("state.redis.tls: %w", err)
			}
			o.TLSConfig.Certificates = []tls.Certificate{cert}
		}
	}
	return redis.NewUniversalClient(o), nil
}

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", errors.New("empty")
	}
	return s, nil
}

// redisWitness is the witness a replica keeps in the Redis at addr.
func redisWitness(addr, prefix, replica string) (*state.RedisWitness, func(), error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 5 * time.Second})
	r, err := state.NewRedis(c, state.RedisOptions{Prefix: prefix})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	w, err := r.Witness(replica)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return w, func() { c.Close() }, nil
}
