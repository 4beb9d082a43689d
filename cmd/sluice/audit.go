package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/gateway"
)

// The demo keeps its checkpoint key and witness beside the trail's
// directory: DIR/audit, DIR/checkpoint-*.pem, DIR/audit-witness.json.
const (
	checkpointKeyFile    = "checkpoint-signing.pem"
	checkpointVerifyFile = "checkpoint-verify.pem"
	witnessFile          = "audit-witness.json"
)

// auditCommands are sluice audit's subcommands.
var auditCommands = &group{
	name:    "audit",
	summary: "Check and search the audit trail.",
	subcommands: []subcommand{
		{"verify", "check the trail's hash chain, checkpoints and witness", verdictCommand(runAuditVerify)},
		{"search", "find records in the trail", runAuditSearch},
		{"usage", "who used a person's data: the releases that held their records", runAuditUsage},
		{"reindex", "rebuild the usage index from the trail", runAuditReindex},
	},
	examples: []string{
		"sluice audit verify --dir .sluice-demo",
		"sluice audit search --dir .sluice-demo --subject alice --since 24h",
		"sluice audit usage --dir .sluice-demo --subject 110101199003077777",
	},
}

// auditOptions turns the audit configuration into the Log's options,
// reading the checkpoint key.
func auditOptions(cfg *gateway.Config, logger *slog.Logger) (audit.Options, error) {
	a := &cfg.Audit
	opts := audit.Options{
		Logger:             logger,
		SegmentMaxBytes:    int64(a.SegmentMaxBytes),
		RotateDaily:        a.RotateDaily == nil || *a.RotateDaily,
		CheckpointEvery:    a.CheckpointEvery,
		CheckpointInterval: time.Duration(a.CheckpointInterval),
	}
	if p := a.Preallocate; p != nil {
		opts.Preallocate = int64(*p)
		if *p == 0 {
			opts.Preallocate = -1 // none; the Log's zero is its default
		}
	}
	if a.CheckpointKeyFile == "" {
		logger.Warn("audit: no audit.checkpoint_key_file: the trail gets no signed checkpoints, and records cut off its end would go unnoticed")
		return opts, nil
	}
	key, err := audit.ReadPrivateKey(cfg.Path(a.CheckpointKeyFile))
	if err != nil {
		return opts, fmt.Errorf("audit.checkpoint_key_file: %w", err)
	}
	opts.CheckpointKey = key
	if a.WitnessFile != "" {
		opts.Witness = audit.NewFileWitness(cfg.Path(a.WitnessFile))
	}
	return opts, nil
}

// trailDir accepts either the audit directory itself or a directory that
// holds it as audit/ (the demo directory).
func trailDir(dir string) string {
	sub := filepath.Join(dir, "audit")
	if st, err := os.Stat(sub); err == nil && st.IsDir() {
		if m, _ := filepath.Glob(filepath.Join(dir, "trail-*.jsonl")); len(m) == 0 {
			return sub
		}
	}
	return dir
}

// stringList is a flag that may be repeated.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("audit verify", "Check the audit trail's hash chain, its signed checkpoints and its witness.")
	c.about = `Exit status: 0 when the trail is intact; 1 when it is not, naming the first
bad record; 2 on a usage error or when the trail could not be checked.`
	c.examples = []string{
		"sluice audit verify --dir .sluice-demo",
		"sluice audit verify --dir /var/lib/sluice/audit --pubkey checkpoint.pem --pubkey checkpoint-old.pem --witness witness.json",
		"sluice audit verify --dir audit-r1 --pubkey checkpoint.pem --redis 127.0.0.1:6379 --replica r1 --json",
	}
	fs := c.flags
	dir := fs.String("dir", ".sluice-demo", "audit directory, or the demo directory holding audit/")
	var pubkeys stringList
	fs.Var(&pubkeys, "pubkey", "trusted checkpoint public key (PEM); repeat for keys used before a rotation (default: the demo's, when --dir is the demo directory)")
	witness := fs.String("witness", "", "file witness holding the latest checkpoint (default: the demo's, when --dir is the demo directory)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	redisAddr := fs.String("redis", "", "check against the witness a replica keeps in the Redis at host:port (with --replica)")
	replica := fs.String("replica", "", "the replica's name (audit.replica), with --redis")
	prefix := fs.String("prefix", "sluice", "key prefix of the deployment in Redis, with --redis")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := c.noArgs(rest); err != nil {
		return err
	}
	if (*redisAddr == "") != (*replica == "") || (*redisAddr != "" && *witness != "") {
		return usagef(c.name, "give --redis with --replica, and not with --witness")
	}
	trail := trailDir(*dir)
	var notes []string
	if trail != *dir {
		// The demo directory: its checkpoint key and witness sit beside the trail.
		if len(pubkeys) == 0 {
			if p := filepath.Join(*dir, checkpointVerifyFile); fileExists(p) {
				pubkeys = append(pubkeys, p)
				notes = append(notes, "checkpoint key "+p)
			}
		}
		if *witness == "" && *redisAddr == "" {
			if p := filepath.Join(*dir, witnessFile); fileExists(p) {
				*witness = p
				notes = append(notes, "witness "+p)
			}
		}
	}
	var opts audit.VerifyOptions
	for _, p := range pubkeys {
		k, err := audit.ReadPublicKey(p)
		if err != nil {
			return usagef(c.name, "--pubkey: %v", err)
		}
		opts.Keys = append(opts.Keys, k)
	}
	if *witness != "" {
		if !fileExists(*witness) {
			return usagef(c.name, "--witness %s: no such file", *witness)
		}
		opts.Witness = audit.NewFileWitness(*witness)
	}
	if *redisAddr != "" {
		w, closeRedis, err := redisWitness(*redisAddr, *prefix, *replica)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		defer closeRedis()
		opts.Witness = w
		notes = append(notes, fmt.Sprintf("witness of replica %s in redis %s", *replica, *redisAddr))
	}
	rep, err := audit.Verify(ctx, trail, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printReport(stdout, rep, opts.Keys, notes)
	}
	if !rep.OK {
		return &exitError{code: 1, msg: ""}
	}
	return nil
}

func printReport(w io.Writer, rep *audit.Report, keys []ed25519.PublicKey, notes []string) {
	if !rep.OK {
		b := rep.Bad
		where := fmt.Sprintf("%s line %d", b.Segment, b.Line)
		if b.Line == 0 {
			where = b.Segment
		}
		if b.Checkpoint != 0 {
			fmt.Fprintf(w, "FAIL: %s (seq %d, checkpoint %d): %s\n", where, b.Seq, b.Checkpoint, b.Reason)
		} else {
			fmt.Fprintf(w, "FAIL: %s (seq %d): %s\n", where, b.Seq, b.Reason)
		}
		fmt.Fprintf(w, "verified before it: %d records, %d checkpoints\n", rep.Records, rep.Checkpoints)
		return
	}
	fmt.Fprintf(w, "ok: %d records in %d segment(s), head %s\n", rep.Records, rep.Segments, rep.Head)
	if c := rep.LastCheckpoint; c != nil {
		signed := "signatures not checked"
		if rep.SignaturesChecked {
			ids := make([]string, len(keys))
			for i, k := range keys {
				ids[i] = audit.KeyID(k)
			}
			signed = "signatures checked (key " + strings.Join(ids, ", ") + ")"
		}
		fmt.Fprintf(w, "checkpoints: %d, %s; the last covers seq %d, made %s\n", rep.Checkpoints, signed, c.Seq, c.Time.Format(time.RFC3339))
	}
	if c := rep.Witness; c != nil {
		fmt.Fprintf(w, "witness: checkpoint %d (seq %d) matches\n", c.N, c.Seq)
	}
	for _, n := range notes {
		fmt.Fprintf(w, "using %s\n", n)
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func runAuditSearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("audit search", "Find records in the audit trail, oldest first.")
	c.about = `Prints a table of the matching records (their count on stderr), or with
--json each record as stored. Filters combine: a record matches all of them.`
	c.examples = []string{
		"sluice audit search --dir .sluice-demo --subject alice --since 24h",
		"sluice audit search --dataset health/visits --decision deny --newest --limit 20",
		"sluice audit search --request-id 01JD3Q4R5S6T7V8W9X0Y1Z2A3B --json",
	}
	fs := c.flags
	dir := fs.String("dir", ".sluice-demo", "audit directory, or the demo directory holding audit/")
	var q audit.Query
	fs.StringVar(&q.Subject, "subject", "", "caller's subject id, as in the token")
	dataset := fs.String("dataset", "", "SOURCE or SOURCE/DATASET")
	fs.StringVar(&q.Action, "action", "", "read, stats, catalog, ...")
	fs.StringVar(&q.Decision, "decision", "", "allow, deny or error")
	fs.IntVar(&q.Status, "status", 0, "HTTP status answered")
	fs.StringVar(&q.RequestID, "request-id", "", "X-Request-Id of one request")
	fs.StringVar(&q.Object, "object", "", "a hub request, grant or demand id (req_…, grt_…, dmd_…): its actions, and the releases made under a grant")
	since := fs.String("since", "", "from this time on: RFC 3339, a UTC date 2006-01-02, or a duration ago (36h)")
	until := fs.String("until", "", "before this time, as --since")
	fs.IntVar(&q.Limit, "limit", 0, "print at most this many records (0: all)")
	fs.BoolVar(&q.Newest, "newest", false, "newest first (default: oldest first)")
	asJSON := fs.Bool("json", false, "print JSON Lines: each record as stored")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := c.noArgs(rest); err != nil {
		return err
	}
	if *dataset != "" {
		src, ds, _ := strings.Cut(*dataset, "/")
		if src == "" || strings.Contains(ds, "/") || strings.HasSuffix(*dataset, "/") {
			return usagef(c.name, "--dataset %q: want SOURCE or SOURCE/DATASET", *dataset)
		}
		q.Source, q.Dataset = src, ds
	}
	now := time.Now()
	if q.Since, err = parseWhen(*since, now); err != nil {
		return usagef(c.name, "--since: %v", err)
	}
	if q.Until, err = parseWhen(*until, now); err != nil {
		return usagef(c.name, "--until: %v", err)
	}
	if q.Limit < 0 {
		return usagef(c.name, "--limit must not be negative")
	}

	// Output is held until 64 KiB of it are: a search that fails before
	// then (a query the trail refuses, a directory that is not a trail, a
	// broken record) prints nothing on stdout. Past that it streams, for a
	// search may match the whole trail.
	w := bufio.NewWriterSize(stdout, 64<<10)
	n := 0
	if !*asJSON {
		fmt.Fprintf(w, "%-20s %8s  %-32s  %-12s %-8s %-22s %-8s %6s %6s\n",
			"TIME", "SEQ", "REQUEST ID", "SUBJECT", "ACTION", "DATASET", "DECISION", "STATUS", "ROWS")
	}
	for line, err := range audit.ScanRaw(ctx, trailDir(*dir), q) {
		if err != nil {
			if errors.Is(err, audit.ErrBadQuery) {
				return usagef(c.name, "%v", err)
			}
			return err
		}
		n++
		if *asJSON {
			w.Write(line)
			w.WriteByte('\n')
			continue
		}
		if err := printRow(w, line); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(stderr, "%d record(s)\n", n)
	}
	return nil
}

// row is what the table shows of a record; decoding only it skips the
// maps a full Event allocates.
type row struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	Subject   string    `json:"subject"`
	Action    string    `json:"action"`
	Phase     string    `json:"phase"`
	Source    string    `json:"source"`
	Dataset   string    `json:"dataset"`
	Decision  string    `json:"decision"`
	Status    int       `json:"status"`
	Rows      int       `json:"rows"`
}

func printRow(w io.Writer, line []byte) error {
	var r row
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("audit search: record is not JSON: %w", err)
	}
	ds := r.Source
	if r.Dataset != "" {
		ds += "/" + r.Dataset
	}
	// A release's decision record has no outcome yet: its outcome record,
	// with the same request id, follows (after any names records).
	status, rows := strconv.Itoa(r.Status), strconv.Itoa(r.Rows)
	if r.Phase == audit.PhaseDecision || r.Phase == audit.PhaseNames {
		status, rows = "-", "-"
	}
	_, err := fmt.Fprintf(w, "%-20s %8d  %-32s  %-12s %-8s %-22s %-8s %6s %6s\n",
		r.Time.UTC().Format(time.RFC3339), r.Seq, r.RequestID, dash(r.Subject), r.Action, dash(ds), r.Decision, status, rows)
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseWhen reads a time for --since and --until: RFC 3339, a date (UTC
// midnight), a date and time without zone (UTC), or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && strings.HasSuffix(s, "d") && n >= 0 {
		return now.AddDate(0, 0, -n), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-11-26T10:00:00Z), a date (2026-11-26) or a duration ago (36h, 7d)", s)
}
