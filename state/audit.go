package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/audit"
)

// Each replica keeps its own hash-chained audit trail on its own disk.
// Redis holds what lets others check it: the latest checkpoint of each
// replica's trail (an audit.Witness), so that cutting a replica's files
// shows, and a stream of every record for central collection.

// RedisWitness is an [audit.Witness] holding the latest checkpoint of one
// replica's trail under PREFIX:audit:{REPLICA}:checkpoint.
type RedisWitness struct {
	c   redis.UniversalClient
	key string
}

var _ audit.Witness = (*RedisWitness)(nil)

// Witness returns the witness of the named replica's trail. Replica
// names must be unique among the gateways sharing the server.
func (r *Redis) Witness(replica string) (*RedisWitness, error) {
	if replica == "" || strings.ContainsAny(replica, "{}") {
		return nil, fmt.Errorf("state: replica name %q: want a non-empty name without { or }", replica)
	}
	return &RedisWitness{c: r.c, key: r.prefix + ":audit:{" + replica + "}:checkpoint"}, nil
}

// witnessPut moves the held checkpoint forward only, as audit.FileWitness
// does. KEYS: witness. ARGV: n, seq, hash, prev, line.
var witnessPut = redis.NewScript(`
local held = redis.call('HMGET', KEYS[1], 'n', 'seq', 'hash', 'line')
if held[1] then
  local n, seq = tonumber(held[1]), tonumber(held[2])
  local cn, cseq = tonumber(ARGV[1]), tonumber(ARGV[2])
  if cn == n and held[4] == ARGV[5] then return 'held' end
  if cn <= n or cseq < seq then
    return redis.error_reply('holds checkpoint ' .. held[1] .. ' (seq ' .. held[2] .. '); refusing checkpoint ' ..
      ARGV[1] .. ' (seq ' .. ARGV[2] .. '), which does not extend it')
  end
  if cn == n + 1 and ARGV[4] ~= held[3] then
    return redis.error_reply('checkpoint ' .. ARGV[1] .. ' does not chain onto the held checkpoint ' .. held[1])
  end
end
redis.call('HSET', KEYS[1], 'n', ARGV[1], 'seq', ARGV[2], 'hash', ARGV[3], 'line', ARGV[5])
return 'stored'
`)

// witnessPutTimeout bounds a Put: the trail's writer makes it between
// batches, and must not stall on a Redis that does not answer. A
// checkpoint not witnessed is retried with the next.
const witnessPutTimeout = 500 * time.Millisecond

// Put implements [audit.Witness]: it stores c when c extends the held
// checkpoint (a higher N and seq, chaining onto it when it follows it
// directly); putting the held one again is a no-op.
func (w *RedisWitness) Put(ctx context.Context, c audit.Checkpoint) error {
	ctx, cancel := context.WithTimeout(ctx, witnessPutTimeout)
	defer cancel()
	if c.N == 0 || c.Sig == "" {
		return errors.New("state: redis witness: not a signed checkpoint")
	}
	line, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("state: redis witness: %w", err)
	}
	err = witnessPut.Run(ctx, w.c, []string{w.key},
		strconv.FormatUint(c.N, 10), strconv.FormatUint(c.Seq, 10), c.Hash(), c.Prev, line).Err()
	if err != nil {
		return fmt.Errorf("state: redis witness %s: %w", w.key, err)
	}
	return nil
}

// Latest implements [audit.Witness].
func (w *RedisWitness) Latest(ctx context.Context) (audit.Checkpoint, bool, error) {
	line, err := w.c.HGet(ctx, w.key, "line").Bytes()
	if errors.Is(err, redis.Nil) {
		return audit.Checkpoint{}, false, nil
	}
	if err != nil {
		return audit.Checkpoint{}, false, fmt.Errorf("state: redis witness %s: %w", w.key, err)
	}
	var c audit.Checkpoint
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields() // an unsigned field must not ride along
	if err := dec.Decode(&c); err != nil {
		return audit.Checkpoint{}, false, fmt.Errorf("state: redis witness %s: malformed checkpoint: %w", w.key, err)
	}
	return c, true, nil
}

// StreamOptions configure an [AuditStream].
type StreamOptions struct {
	// Key is the stream (default PREFIX:audit:stream), shared by all
	// replicas: entries name their replica.
	Key string
	// Replica names this gateway's trail.
	Replica string
	// MaxLen trims the stream to about this many entries (XADD MAXLEN ~;
	// default 1000000). The collector must keep up.
	MaxLen int64
	// Queue bounds the records waiting to be sent (default 10000); when
	// it is full, records are dropped and counted, never waited for.
	Queue int
	// Logger receives delivery failures (never record contents).
	Logger *slog.Logger
}

// AuditStream copies a replica's audit records to a Redis stream for
// central collection. It never holds up the trail: records reach it only
// after they are durable on the replica's disk ([audit.Options.OnDurable]),
// wait in a bounded queue, and are dropped (and counted) when the queue is
// full, as while Redis is down. The trail stays the record of truth: each
// entry carries the replica, the seq and the record's exact line, so a
// collector can check each replica's hash chain and fetch the seqs it
// misses from the replica's files.
type AuditStream struct {
	c       redis.UniversalClient
	key     string
	replica string
	maxLen  int64
	log     *slog.Logger
	queue   chan streamEntry
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	published, dropped atomic.Uint64
	down               atomic.Bool
}

type streamEntry struct {
	seq  uint64
	line string
}

// Stream starts publishing to a stream; Close stops it.
func (r *Redis) Stream(o StreamOptions) (*AuditStream, error) {
	if o.Replica == "" {
		return nil, errors.New("state: an audit stream needs a replica name")
	}
	if o.Key == "" {
		o.Key = r.prefix + ":audit:stream"
	}
	if o.MaxLen == 0 {
		o.MaxLen = 1_000_000
	}
	if o.Queue == 0 {
		o.Queue = 10_000
	}
	if o.MaxLen < 0 || o.Queue < 0 {
		return nil, errors.New("state: audit stream max length and queue must be positive")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &AuditStream{c: r.c, key: o.Key, replica: o.Replica, maxLen: o.MaxLen, log: o.Logger,
		queue: make(chan streamEntry, o.Queue), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s, nil
}

// Offer queues a durable record for the stream; it is the trail's
// OnDurable hook and never blocks.
func (s *AuditStream) Offer(seq uint64, line []byte) {
	select {
	case s.queue <- streamEntry{seq, string(bytes.TrimSuffix(line, []byte("\n")))}:
	default:
		s.dropped.Add(1)
	}
}

// Published counts the records sent to the stream.
func (s *AuditStream) Published() uint64 { return s.published.Load() }

// Dropped counts records dropped because the queue was full.
func (s *AuditStream) Dropped() uint64 { return s.dropped.Load() }

// Queued is the number of records waiting to be sent.
func (s *AuditStream) Queued() int { return len(s.queue) }

// Close sends what is queued, until ctx ends, and stops. Records offered
// after Close are dropped.
func (s *AuditStream) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.stop) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("state: audit stream: %d records not sent: %w", len(s.queue), ctx.Err())
	}
}

// maxStreamBatch bounds the records sent in one pipeline.
const maxStreamBatch = 256

func (s *AuditStream) run() {
	defer close(s.done)
	batch := make([]streamEntry, 0, maxStreamBatch)
	backoff := 50 * time.Millisecond
	for {
		// A batch being retried is not topped up: while Redis is away the
		// queue, not the batch, takes what comes, and drops the rest.
		if len(batch) == 0 {
			select {
			case e := <-s.queue:
				batch = append(batch, e)
			case <-s.stop:
				if len(s.queue) == 0 {
					return
				}
				continue
			}
		fill:
			for len(batch) < maxStreamBatch {
				select {
				case e := <-s.queue:
					batch = append(batch, e)
				default:
					break fill
				}
			}
		}
		if err := s.send(batch); err != nil {
			if !s.down.Swap(true) {
				s.log.Warn("audit stream: records not delivered to Redis; retrying (records are dropped while the queue is full)",
					"stream", s.key, "error", err)
			}
			select {
			case <-time.After(backoff):
			case <-s.stop:
				return // Close's deadline is the caller's; do not retry past shutdown
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		if s.down.Swap(false) {
			s.log.Info("audit stream: delivering again", "stream", s.key, "dropped_so_far", s.dropped.Load())
		}
		backoff = 50 * time.Millisecond
		s.published.Add(uint64(len(batch)))
		batch = batch[:0]
	}
}

func (s *AuditStream) send(batch []streamEntry) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range batch {
			p.XAdd(ctx, &redis.XAddArgs{Stream: s.key, MaxLen: s.maxLen, Approx: true,
				Values: []any{"replica", s.replica, "seq", e.seq, "record", e.line}})
		}
		return nil
	})
	return err
}
