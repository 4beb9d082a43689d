package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/gateway"
)

// auditFixture is a demo-like directory: DIR/audit holds a trail of 30
// records in three day segments of ten, with checkpoints every five
// records; DIR/checkpoint-verify.pem and DIR/audit-witness.json are the
// demo's key and witness.
type auditFixture struct {
	dir, trail, pubkey, witness string
	events                      []*audit.Event
}

var fixtureBase = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

// fixtureEvent is the i-th event (from 0) of the fixture: alice, bob and
// carol take turns, one request in four is denied, one every 15 minutes.
func fixtureEvent(i int) *audit.Event {
	e := &audit.Event{
		Time:      fixtureBase.Add(time.Duration(i) * 15 * time.Minute),
		RequestID: fmt.Sprintf("%032x", i+1),
		Subject:   []string{"alice", "bob", "carol"}[i%3],
		Roles:     []string{"analyst"},
		Action:    "read",
		Source:    "health",
		Dataset:   "visits",
		Method:    "GET",
		Path:      "/v1/health/visits",
		Decision:  "allow",
		Status:    200,
		Rows:      20,
	}
	if i%2 == 1 {
		e.Source, e.Dataset = "civil", "assistance"
	}
	if i%4 == 3 {
		e.Decision, e.Status, e.Code, e.Rows = "deny", 403, "forbidden", 0
	}
	return e
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	dir := t.TempDir()
	f := &auditFixture{dir: dir, trail: filepath.Join(dir, "audit"), pubkey: filepath.Join(dir, checkpointVerifyFile), witness: filepath.Join(dir, witnessFile)}
	if err := ensureCheckpointKey(dir); err != nil {
		t.Fatal(err)
	}
	key, err := audit.ReadPrivateKey(filepath.Join(dir, checkpointKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(fixtureBase.UnixNano())
	l, err := audit.Open(f.trail, audit.Options{
		Now:                func() time.Time { return time.Unix(0, now.Load()).UTC() },
		Logger:             slog.New(slog.DiscardHandler),
		RotateDaily:        true,
		CheckpointKey:      key,
		CheckpointEvery:    5,
		CheckpointInterval: -1,
		Witness:            audit.NewFileWitness(f.witness),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		e := fixtureEvent(i)
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		f.events = append(f.events, e)
		if i%10 == 9 {
			now.Add(int64(24 * time.Hour))
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *auditFixture) segment(n int) string {
	return filepath.Join(f.trail, fmt.Sprintf("trail-%08d.jsonl", n))
}

// editFile rewrites a file's lines.
func editFile(t *testing.T, path string, edit func(lines []string) []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := edit(strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerifyPassesAnIntactSignedTrail(t *testing.T) {
	f := newAuditFixture(t)
	for name, args := range map[string][]string{
		"explicit key and witness":                  {"--dir", f.trail, "--pubkey", f.pubkey, "--witness", f.witness},
		"the demo directory's key and witness":      {"--dir", f.dir},
		"the private key file as the trusted key":   {"--dir", f.trail, "--pubkey", filepath.Join(f.dir, checkpointKeyFile)},
		"two keys, as after a rotation (one old)":   {"--dir", f.trail, "--pubkey", writePubkey(t), "--pubkey", f.pubkey},
		"the demo directory with an explicit other": {"--dir", f.dir, "--pubkey", f.pubkey},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := runCmd(t, append([]string{"audit", "verify"}, args...)...)
			if code := exitCode(err); code != 0 {
				t.Fatalf("exit %d: %s%s", code, out, errOut)
			}
			for _, want := range []string{"ok: 30 records in 3 segment(s)", "checkpoints: 6, signatures checked", "the last covers seq 30"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "warning") {
				t.Errorf("warnings on an intact, fully checked trail:\n%s", out)
			}
		})
	}
}

// writePubkey writes some other Ed25519 public key and returns its path.
func writePubkey(t *testing.T) string {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	pk, _ := x509.MarshalPKIXPublicKey(pub)
	path := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuditVerifyFailsAndNamesTheFirstBadRecord(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, f *auditFixture)
		args   func(f *auditFixture) []string
		want   string
	}{
		{"record edited",
			func(t *testing.T, f *auditFixture) {
				editFile(t, f.segment(2), func(l []string) []string { l[3] = strings.Replace(l[3], `"read"`, `"reed"`, 1); return l })
			}, nil,
			"FAIL: trail-00000002.jsonl line 4 (seq 14): hash mismatch"},
		{"record removed",
			func(t *testing.T, f *auditFixture) {
				editFile(t, f.segment(2), func(l []string) []string { return append(l[:3], l[4:]...) })
			}, nil,
			"FAIL: trail-00000002.jsonl line 4 (seq 14): sequence gap"},
		{"records reordered",
			func(t *testing.T, f *auditFixture) {
				editFile(t, f.segment(1), func(l []string) []string { l[0], l[1] = l[1], l[0]; return l })
			}, nil,
			"FAIL: trail-00000001.jsonl line 1 (seq 1): sequence gap"},
		{"record inserted",
			func(t *testing.T, f *auditFixture) {
				editFile(t, f.segment(3), func(l []string) []string { return append(l[:2], append([]string{l[0]}, l[2:]...)...) })
			}, nil,
			"FAIL: trail-00000003.jsonl line 3 (seq 23): sequence out of order"},
		{"middle segment deleted",
			func(t *testing.T, f *auditFixture) { os.Remove(f.segment(2)) }, nil,
			"FAIL: trail-00000002.jsonl (seq 11): segment missing"},
		{"last segment deleted",
			func(t *testing.T, f *auditFixture) { os.Remove(f.segment(3)) }, nil,
			"FAIL: trail-00000003.jsonl (seq 21, checkpoint 5): segment missing (trail cut)"},
		{"trail cut after its last checkpoint",
			func(t *testing.T, f *auditFixture) {
				editFile(t, f.segment(3), func(l []string) []string { return l[:8] })
			}, nil,
			"FAIL: trail-00000003.jsonl line 9 (seq 29, checkpoint 6): trail cut"},
		{"trail and checkpoints cut: the witness is ahead",
			func(t *testing.T, f *auditFixture) {
				editFile(t, f.segment(3), func(l []string) []string { return l[:5] })
				editFile(t, filepath.Join(f.trail, "checkpoints.jsonl"), func(l []string) []string { return l[:5] })
			}, nil,
			"FAIL: trail-00000003.jsonl line 6 (seq 26, checkpoint 6): trail cut: the witness's checkpoint 6"},
		{"checkpoint edited",
			func(t *testing.T, f *auditFixture) {
				editFile(t, filepath.Join(f.trail, "checkpoints.jsonl"), func(l []string) []string {
					l[1] = strings.Replace(l[1], `"seq":10`, `"seq":9`, 1)
					return l
				})
			}, nil,
			"FAIL: checkpoints.jsonl line 2 (seq 9, checkpoint 2): checkpoint 2: bad signature"},
		{"verified with the wrong key",
			func(t *testing.T, f *auditFixture) {},
			func(f *auditFixture) []string { return []string{"--dir", f.trail, "--pubkey", writePubkey(t)} },
			"FAIL: checkpoints.jsonl line 1 (seq 5, checkpoint 1): checkpoint 1: signed by key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuditFixture(t)
			tt.tamper(t, f)
			args := []string{"--dir", f.dir}
			if tt.args != nil {
				args = tt.args(f)
			}
			out, errOut, err := runCmd(t, append([]string{"audit", "verify"}, args...)...)
			if code := exitCode(err); code != 1 {
				t.Fatalf("exit %d, want 1: %s%s", code, out, errOut)
			}
			if !strings.HasPrefix(out, tt.want) {
				t.Errorf("output:\n%s\nwant it to start %q", out, tt.want)
			}
		})
	}
}

func TestAuditVerifyJSONReport(t *testing.T) {
	f := newAuditFixture(t)
	out, _, err := runCmd(t, "audit", "verify", "--dir", f.dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep audit.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not a JSON report: %v\n%s", err, out)
	}
	if !rep.OK || rep.Records != 30 || rep.Checkpoints != 6 || !rep.SignaturesChecked || rep.Witness == nil || rep.Witness.N != 6 {
		t.Errorf("report: %+v", rep)
	}

	editFile(t, f.segment(3), func(l []string) []string { return l[:8] })
	out, _, err = runCmd(t, "audit", "verify", "--dir", f.dir, "--json")
	if exitCode(err) != 1 {
		t.Fatalf("exit %d on a cut trail", exitCode(err))
	}
	rep = audit.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := audit.Problem{Segment: "trail-00000003.jsonl", Line: 9, Seq: 29, Checkpoint: 6}
	if rep.OK || rep.Bad == nil || rep.Bad.Segment != want.Segment || rep.Bad.Line != want.Line || rep.Bad.Seq != want.Seq || rep.Bad.Checkpoint != want.Checkpoint {
		t.Errorf("bad: %+v, want %+v", rep.Bad, want)
	}
}

func TestAuditVerifyWithoutAKeySaysWhatItDidNotCheck(t *testing.T) {
	f := newAuditFixture(t)
	out, _, err := runCmd(t, "audit", "verify", "--dir", f.trail)
	if err != nil {
		t.Fatalf("verify: %v %s", err, out)
	}
	if !strings.Contains(out, "signatures not checked") || !strings.Contains(out, "warning: checkpoint signatures were not checked") {
		t.Errorf("output does not say signatures went unchecked:\n%s", out)
	}
}

func TestAuditVerifyUsageErrorsExitTwo(t *testing.T) {
	f := newAuditFixture(t)
	for name, args := range map[string][]string{
		"unknown flag":       {"--dir", f.dir, "--nope"},
		"missing public key": {"--dir", f.dir, "--pubkey", filepath.Join(f.dir, "missing.pem")},
		"not a key":          {"--dir", f.dir, "--pubkey", f.segment(1)},
		"missing witness":    {"--dir", f.dir, "--witness", filepath.Join(f.dir, "missing.json")},
		"missing directory":  {"--dir", filepath.Join(f.dir, "nope")},
	} {
		t.Run(name, func(t *testing.T) {
			if out, errOut, err := runCmd(t, append([]string{"audit", "verify"}, args...)...); exitCode(err) != 2 {
				t.Errorf("exit %d, want 2: %s%s", exitCode(err), out, errOut)
			}
		})
	}
}

// TestDemoTrailIsCheckpointedWitnessedAndSearchable runs the demo, makes
// an allowed and a denied request, stops it, and checks that the trail
// verifies with the demo's checkpoint key and witness (the final
// checkpoint covering every record) and that search finds both requests.
func TestDemoTrailIsCheckpointedWitnessedAndSearchable(t *testing.T) {
	dir := t.TempDir()
	d := startDemo(t, dir)
	gw, tok := d.manifest.Gateway, d.manifest.Tokens
	allowed := get(t, gw+"/v1/health/visits?page_size=1", tok["analyst"])
	denied := get(t, gw+"/v1/health/visits", tok["public"])
	if allowed.status != http.StatusOK || denied.status != http.StatusForbidden {
		t.Fatalf("requests: %d, %d", allowed.status, denied.status)
	}
	if err := d.stop(t); err != nil {
		t.Fatalf("demo ended with %v", err)
	}
	for _, name := range []string{checkpointKeyFile, checkpointVerifyFile, witnessFile} {
		if !fileExists(filepath.Join(dir, name)) {
			t.Errorf("the demo did not create %s", name)
		}
	}
	out, _, err := runCmd(t, "audit", "verify", "--dir", dir)
	if err != nil || !strings.HasPrefix(out, "ok: ") || !strings.Contains(out, "signatures checked") || !strings.Contains(out, "witness: checkpoint") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if strings.Contains(out, "not covered") {
		t.Errorf("records after the shutdown checkpoint:\n%s", out)
	}
	for _, tc := range []struct {
		r    response
		args []string
	}{
		{allowed, []string{"--subject", "alice", "--decision", "allow"}},
		{denied, []string{"--subject", "pat", "--decision", "deny", "--status", "403", "--dataset", "health/visits"}},
	} {
		id := tc.r.header.Get("X-Request-Id")
		out, _, err := runCmd(t, append([]string{"audit", "search", "--dir", dir, "--json"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, `"request_id":"`+id+`"`) {
			t.Errorf("search %v does not find request %s:\n%s", tc.args, id, out)
		}
	}
}

func TestAuditConfigIsValidatedAndWired(t *testing.T) {
	dir := t.TempDir()
	if err := ensureCheckpointKey(dir); err != nil {
		t.Fatal(err)
	}
	base := `listen: 127.0.0.1:0
hmac_key_file: hmac.key
auth: {issuer: i, audience: a, keys: [{id: k, algorithms: [EdDSA], public_key_file: k.pem}]}
policy: {dir: policies}
sources: [{name: s, upstream: "http://127.0.0.1:1", datasets: [{name: d, path: /d}]}]
`
	load := func(audit string) error {
		path := filepath.Join(dir, "sluice.yaml")
		if err := os.WriteFile(path, []byte(base+audit), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := gateway.LoadConfig(path)
		if err != nil {
			return err
		}
		opts, err := auditOptions(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		if cfg.Audit.CheckpointKeyFile != "" && (opts.CheckpointKey == nil || opts.Witness == nil || !opts.RotateDaily) {
			t.Errorf("options not wired: %+v", opts)
		}
		return nil
	}
	if err := load("audit: {dir: audit, checkpoint_key_file: " + checkpointKeyFile + ", witness_file: w/witness.json, checkpoint_every: 10, checkpoint_interval: 30s, segment_max_bytes: 1MiB}\n"); err != nil {
		t.Fatalf("a valid audit config: %v", err)
	}
	for field, audit := range map[string]string{
		"audit.witness_file":        "audit: {dir: audit, checkpoint_key_file: " + checkpointKeyFile + ", witness_file: audit/w.json}\n",
		"audit.witness_file: needs": "audit: {dir: audit, witness_file: w.json}\n",
		"audit.segment_max_bytes":   "audit: {dir: audit, segment_max_bytes: 1KiB}\n",
		"audit.checkpoint_every":    "audit: {dir: audit, checkpoint_every: -1}\n",
		"audit.checkpoint_key_file": "audit: {dir: audit, checkpoint_key_file: nope.pem}\n",
	} {
		if err := load(audit); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v does not name %s", strings.TrimSpace(audit), err, field)
		}
	}

	// audit.preallocate: unset is the Log's default, 0 is none (the Log's
	// negative), a size is that size; over 64MiB is refused.
	for audit, want := range map[string]int64{
		"audit: {dir: audit}\n":                    0,
		"audit: {dir: audit, preallocate: 0}\n":    -1,
		"audit: {dir: audit, preallocate: 1MiB}\n": 1 << 20,
	} {
		if err := os.WriteFile(filepath.Join(dir, "sluice.yaml"), []byte(base+audit), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := gateway.LoadConfig(filepath.Join(dir, "sluice.yaml"))
		if err != nil {
			t.Fatalf("%s: %v", strings.TrimSpace(audit), err)
		}
		opts, err := auditOptions(cfg, slog.New(slog.DiscardHandler))
		if err != nil || opts.Preallocate != want {
			t.Errorf("%s: Preallocate %d (%v), want %d", strings.TrimSpace(audit), opts.Preallocate, err, want)
		}
	}
	if err := load("audit: {dir: audit, preallocate: 65MiB}\n"); err == nil || !strings.Contains(err.Error(), "audit.preallocate") {
		t.Errorf("preallocate over 64MiB: error %v", err)
	}
}
