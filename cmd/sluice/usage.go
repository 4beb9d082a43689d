package main

// sluice audit usage and sluice audit reindex: who used a person's data,
// read straight from the trail, and the usage index rebuilt from it.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/gateway"
	usageidx "github.com/sluicegw/sluice/usage"
)

// usageIndexFile is the usage index's bbolt file in the trail's directory.
const usageIndexFile = gateway.UsageIndexFile

// trailHasher reads the gateway's secret (--key, else the demo
// directory's hmac.key) and returns the trail's keyed hash.
func trailHasher(cmd, key, dir string) (*audit.Hasher, error) {
	if key == "" {
		demo := filepath.Join(dir, "hmac.key")
		if !fileExists(demo) {
			return nil, usagef(cmd, "--key names the gateway's hmac_key_file (needed to find a person's hashes)")
		}
		key = demo
	}
	secret, err := os.ReadFile(key)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	h, err := gateway.TrailHasher(secret)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	return h, nil
}

func runAuditUsage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("audit usage", "Who used a person's data: every release that held their records.")
	c.about = `Reads the trail itself (not the index), so its answer is the trail's: each
record release whose audit record names the person's keyed hash, with the
department, role, purpose, grant, dataset and fields released. It verifies
the trail first and says whether it holds.`
	c.examples = []string{
		"sluice audit usage --dir .sluice-demo --subject 110101199003077777",
		"sluice audit usage --dir /var/lib/sluice/audit --key /etc/sluice/hmac.key --subject 110101199003077777 --json",
	}
	fs := c.flags
	dir := fs.String("dir", ".sluice-demo", "audit directory, or the demo directory holding audit/")
	subject := fs.String("subject", "", "the person's privacy-unit value (an ID number)")
	key := fs.String("key", "", "the gateway's hmac_key_file (default: the demo directory's hmac.key)")
	since := fs.String("since", "", "from this time on: RFC 3339, a UTC date 2006-01-02, or a duration ago (36h)")
	until := fs.String("until", "", "before this time, as --since")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := c.noArgs(rest); err != nil {
		return err
	}
	if *subject == "" {
		return usagef(c.name, "--subject is required")
	}
	now := time.Now()
	from, err := parseWhen(*since, now)
	if err != nil {
		return usagef(c.name, "--since: %v", err)
	}
	to, err := parseWhen(*until, now)
	if err != nil {
		return usagef(c.name, "--until: %v", err)
	}
	h, err := trailHasher(c.name, *key, *dir)
	if err != nil {
		return err
	}
	tdir := trailDir(*dir)
	rep, err := audit.Verify(ctx, tdir, audit.VerifyOptions{})
	if err != nil {
		return err
	}
	unit := h.Unit(*subject)
	var rels []usageidx.Release
	for rec, err := range audit.Scan(ctx, tdir, audit.Query{Action: "read", Decision: "allow", Since: from, Until: to}) {
		if err != nil {
			return err
		}
		e, ok := usageidx.FromRecord(rec, "")
		if ok && slices.Contains(e.Units, unit) {
			rels = append(rels, e.Release)
		}
	}
	// A large release names its people in several records: once each.
	rels = usageidx.Ordered(rels)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"verified": rep.OK, "records": rep.Records, "releases": rels})
	}
	w := bufio.NewWriter(stdout)
	state := "verified"
	if !rep.OK {
		state = "DID NOT VERIFY"
		if rep.Bad != nil {
			state += ": " + rep.Bad.String()
		}
	}
	fmt.Fprintf(w, "Trail %s (%d records). %d release(s) held this person's records.\n\n", state, rep.Records, len(rels))
	fmt.Fprintf(w, "%-20s %-32s %-14s %-12s %-16s %-18s %s\n", "TIME", "REQUEST ID", "DEPT", "ROLES", "PURPOSE", "DATASET", "FIELDS (TREATMENT)")
	for _, r := range rels {
		var fields []string
		for _, f := range slices.Sorted(maps.Keys(r.Fields)) {
			fields = append(fields, f+"("+r.Fields[f]+")")
		}
		basis := r.Grant
		if basis == "" {
			basis = r.Basis
		}
		fmt.Fprintf(w, "%-20s %-32s %-14s %-12s %-16s %-18s %s\n", r.Time.UTC().Format("2006-01-02T15:04:05Z"), r.RequestID,
			dash(r.Dept), dash(strings.Join(r.Roles, ",")), dash(r.Purpose), r.Dataset, strings.Join(fields, " "))
		if basis != "" {
			fmt.Fprintf(w, "%-20s under %s; asked by %s\n", "", basis, dash(r.Subject))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !rep.OK {
		return errors.New("the trail did not verify: the usage above may be incomplete")
	}
	return nil
}

func runAuditReindex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("audit reindex", "Rebuild the usage index from the audit trail.")
	c.about = `The usage index (who received whose records) is derived from the trail:
this empties it and adds every record release the trail holds. The embedded
index is the file ` + usageIndexFile + ` in the trail's directory (stop the gateway
first: it holds the file); with --redis, the index replicas share, for one
replica's trail (--replica).`
	c.examples = []string{
		"sluice audit reindex --dir .sluice-demo",
		"sluice audit reindex --dir /var/lib/sluice/audit --redis 127.0.0.1:6379 --prefix sluice --replica gw-1",
	}
	fs := c.flags
	dir := fs.String("dir", ".sluice-demo", "audit directory, or the demo directory holding audit/")
	redisAddr := fs.String("redis", "", "rebuild the shared index in the Redis at host:port instead")
	prefix := fs.String("prefix", "sluice", "key prefix of the deployment in Redis, with --redis")
	replica := fs.String("replica", "", "the replica whose trail this is (audit.replica)")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := c.noArgs(rest); err != nil {
		return err
	}
	tdir := trailDir(*dir)
	if _, err := os.Stat(tdir); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	var idx usageidx.Index
	if *redisAddr != "" {
		client := redis.NewClient(&redis.Options{Addr: *redisAddr})
		defer client.Close()
		if idx, err = usageidx.NewRedis(client, *prefix); err != nil {
			return err
		}
	} else {
		b, err := usageidx.OpenBolt(filepath.Join(tdir, usageIndexFile))
		if err != nil {
			return fmt.Errorf("open the usage index (is the gateway running? it holds the file): %w", err)
		}
		idx = b
	}
	defer idx.Close()
	n, err := usageidx.Rebuild(ctx, tdir, idx, *replica)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "usage index rebuilt: %d release(s)\n", n)
	return nil
}
