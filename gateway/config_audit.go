package gateway

import (
	"path/filepath"
	"strings"
)

// AuditConfig locates the audit trail.
type AuditConfig struct {
	// Dir holds the hash-chained trail: segments trail-NNNNNNNN.jsonl and
	// checkpoints.jsonl. Required.
	Dir string `yaml:"dir"`
	// SegmentMaxBytes starts a new segment before one grows past this size
	// (default 128MiB; at least 64KiB).
	SegmentMaxBytes Size `yaml:"segment_max_bytes"`
	// RotateDaily starts a new segment on each new UTC day (default true).
	RotateDaily *bool `yaml:"rotate_daily"`
	// Preallocate is how many bytes of zeros the gateway writes ahead of
	// the records of the segment it is writing (default 256KiB; at most
	// 64MiB), which halves the cost of each group commit's fsync. The live
	// segment then ends in NUL padding, cut off when it rotates or the
	// gateway stops; 0 writes none, for tools that follow a growing file.
	Preallocate *Size `yaml:"preallocate"`
	// CheckpointKeyFile holds the Ed25519 private key (PKCS #8 PEM) that
	// signs checkpoints of the trail's head. Without it no checkpoints are
	// made, and a trail cut short goes unnoticed.
	CheckpointKeyFile string `yaml:"checkpoint_key_file"`
	// CheckpointEvery makes a checkpoint after this many records (default
	// 1000).
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval makes a checkpoint this often when records were
	// written since the last one (default 1m). Checkpoints are also made
	// when a segment is rotated and on shutdown.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// WitnessFile keeps a copy of the latest checkpoint outside the trail
	// directory (ideally on another volume), so that cutting the trail and
	// its checkpoints together shows. Needs checkpoint_key_file.
	WitnessFile string `yaml:"witness_file"`
	// Replica names this gateway's trail among the replicas sharing
	// Redis: unique, and stable across restarts. Required with
	// redis_witness or stream.
	//
	//config:pattern nameRE
	Replica string `yaml:"replica"`
	// RedisWitness keeps the latest checkpoint in Redis, under the
	// replica's name, instead of witness_file. Needs state.redis and
	// checkpoint_key_file.
	RedisWitness bool `yaml:"redis_witness"`
	// Stream copies every record, once durable here, to a Redis stream
	// for central collection. Needs state.redis.
	Stream *AuditStreamConfig `yaml:"stream"`
}

// AuditStreamConfig configures the Redis stream of audit records.
type AuditStreamConfig struct {
	// Key is the stream's key (default PREFIX:audit:stream), one for all
	// replicas: each entry names its replica and seq.
	Key string `yaml:"key"`
	// MaxLen trims the stream to about this many entries (default
	// 1000000): the collector must keep up.
	MaxLen int64 `yaml:"max_len"`
	// Queue is how many records may wait for Redis (default 10000); more
	// are dropped and counted (sluice_audit_stream_dropped_total), never
	// waited for. The replica's trail keeps them all.
	Queue int `yaml:"queue"`
}

// validate checks the audit section of c, whose state it needs for the
// options that keep the trail's checkpoints and records in Redis.
func (a *AuditConfig) validate(c *Config, bad func(field, format string, args ...any)) {
	if a.Dir == "" {
		bad("audit.dir", "required")
	}
	if a.SegmentMaxBytes < 0 || (a.SegmentMaxBytes > 0 && a.SegmentMaxBytes < 64<<10) {
		bad("audit.segment_max_bytes", "at least 64KiB")
	}
	if a.Preallocate != nil && *a.Preallocate > 64<<20 {
		bad("audit.preallocate", "between 0 and 64MiB")
	}
	if a.CheckpointEvery < 0 {
		bad("audit.checkpoint_every", "must not be negative")
	}
	if a.CheckpointInterval < 0 {
		bad("audit.checkpoint_interval", "must be positive")
	}
	if a.WitnessFile != "" {
		if a.CheckpointKeyFile == "" {
			bad("audit.witness_file", "needs audit.checkpoint_key_file")
		}
		// A witness inside the trail directory goes wherever the trail goes.
		rel, err := filepath.Rel(c.Path(a.Dir), c.Path(a.WitnessFile))
		outside := err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))
		if a.Dir != "" && !outside {
			bad("audit.witness_file", "must be outside audit.dir")
		}
	}
	redis := c.State.Redis != nil
	if a.RedisWitness {
		switch {
		case !redis:
			bad("audit.redis_witness", "needs state.redis")
		case a.CheckpointKeyFile == "":
			bad("audit.redis_witness", "needs audit.checkpoint_key_file")
		case a.WitnessFile != "":
			bad("audit.redis_witness", "set one of witness_file and redis_witness")
		}
	}
	if s := a.Stream; s != nil {
		if !redis {
			bad("audit.stream", "needs state.redis")
		}
		if s.MaxLen < 0 {
			bad("audit.stream.max_len", "must be positive")
		}
		if s.Queue < 0 {
			bad("audit.stream.queue", "must be positive")
		}
	}
	if (a.RedisWitness || a.Stream != nil) && a.Replica == "" {
		bad("audit.replica", "required with redis_witness or stream: a name unique among the replicas and stable across restarts")
	}
	if a.Replica != "" && !nameRE.MatchString(a.Replica) {
		bad("audit.replica", "want lower-case letters, digits, - or _, got %q", a.Replica)
	}
}
