package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/demo"
	"github.com/sluicegw/sluice/gateway"
	"github.com/sluicegw/sluice/policies"
)

// demoRoles are the demo's callers, as DESIGN.md's role table has them.
var demoRoles = []struct {
	role   string
	claims tokenClaims
}{
	{"analyst", tokenClaims{Subject: "alice", Roles: []string{"analyst"}, Dept: "health", Purpose: "public-health"}},
	{"caseworker", tokenClaims{Subject: "carol", Roles: []string{"caseworker"}, Dept: "civil", District: "朝阳区"}},
	{"researcher", tokenClaims{Subject: "rita", Roles: []string{"researcher"}, Dept: "stats-bureau", Purpose: "research"}},
	{"public", tokenClaims{Subject: "pat", Roles: []string{"public"}}},
	{"auditor", tokenClaims{Subject: "audrey", Roles: []string{"auditor"}}},
	{"officer", tokenClaims{Subject: "oscar", Roles: []string{"officer"}, Dept: "security"}},
	{"steward_health", tokenClaims{Subject: "sam", Roles: []string{"steward"}, Dept: "health"}},
	{"steward_civil", tokenClaims{Subject: "cid", Roles: []string{"steward"}, Dept: "civil"}},
	{"steward_police", tokenClaims{Subject: "paul", Roles: []string{"steward"}, Dept: "police"}},
	{"coordinator", tokenClaims{Subject: "cora", Roles: []string{"coordinator"}}},
	// The citizen's id_number is the demo's citizen_id, set at start.
	{"citizen", tokenClaims{Subject: "citizen", Roles: []string{"citizen"}}},
}

// demoManifest is DIR/demo.json.
type demoManifest struct {
	Gateway   string            `json:"gateway"`
	Upstreams map[string]string `json:"upstreams"`
	Tokens    map[string]string `json:"tokens"`
	// CitizenID is the resident the citizen token speaks for: a person
	// found in all three datasets.
	CitizenID string `json:"citizen_id"`
	// Replicas lists every gateway replica's URL; the first is Gateway.
	Replicas []string `json:"replicas"`
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("demo", "Run the demo departments and a gateway before them, until interrupted.")
	c.about = `The directory keeps the configuration, keys, audit trail and state across
runs, and demo.json the gateway's address and a token per demo role. One
demo runs in a directory at a time.`
	c.examples = []string{
		"sluice demo",
		"sluice demo --addr 127.0.0.1:9090 --dir /tmp/sluice-demo",
		"sluice demo --redis 127.0.0.1:6379 --replicas 3",
	}
	flags := c.flags
	addr := flags.String("addr", "127.0.0.1:8080", "gateway listen address")
	dir := flags.String("dir", ".sluice-demo", "directory for config, keys, audit trail and state (kept across runs)")
	polDir := flags.String("policies", "policies", "policy directory (the embedded copy is used when the default is missing)")
	redisAddr := flags.String("redis", "", "keep budgets, answers, rate limits and revocations in the Redis at host:port, shared by the replicas")
	replicas := flags.Int("replicas", 1, "gateway replicas to start, on consecutive ports from --addr's (needs --redis when more than 1)")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return c.noArgs(rest)
	case *replicas < 1 || *replicas > 16:
		return usagef(c.name, "--replicas must be between 1 and 16")
	case *replicas > 1 && *redisAddr == "":
		return usagef(c.name, "--replicas needs --redis: replicas share their budgets through Redis")
	}
	addrs, err := replicaAddrs(*addr, *replicas)
	if err != nil {
		return usagef(c.name, "--addr: %v", err)
	}
	policiesGiven := false
	flags.Visit(func(f *flag.Flag) { policiesGiven = policiesGiven || f.Name == "policies" })

	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(absDir, 0o700); err != nil {
		return fmt.Errorf("demo dir: %w", err)
	}
	// Before any file is written: they may be a running demo's.
	lock, err := lockDemo(absDir)
	if err != nil {
		return err
	}
	defer lock.release()
	if err := ensureDemoKeys(absDir); err != nil {
		return fmt.Errorf("demo keys: %w", err)
	}
	if err := ensureCheckpointKey(absDir); err != nil {
		return fmt.Errorf("demo checkpoint key: %w", err)
	}
	pol, err := demoPolicies(absDir, *polDir, policiesGiven)
	if err != nil {
		return err
	}
	credential, err := os.ReadFile(filepath.Join(absDir, upstreamFile))
	if err != nil {
		return err
	}
	data := demo.Generate(demo.DefaultSeed)
	citizen := data.InEveryDataset()
	depts, err := demo.Start(ctx, data, strings.TrimSpace(string(credential)))
	if err != nil {
		return fmt.Errorf("start demo departments: %w", err)
	}
	defer depts.Close()

	var cfgs []*gateway.Config
	for i, a := range addrs {
		r := demoReplica{Addr: a, Redis: *redisAddr, Config: "sluice.yaml", AuditDir: "audit"}
		if *redisAddr != "" {
			r.Name = fmt.Sprintf("r%d", i+1)
		}
		if i > 0 {
			r.Config, r.AuditDir = "sluice-"+r.Name+".yaml", "audit-"+r.Name
		}
		cfgPath := filepath.Join(absDir, r.Config)
		if err := writeDemoConfig(cfgPath, r, pol, depts.URLs); err != nil {
			return err
		}
		cfg, err := gateway.LoadConfig(cfgPath)
		if err != nil {
			return err
		}
		cfgs = append(cfgs, cfg)
	}
	key, err := readSigningKey(absDir)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return serveReplicas(ctx, cfgs, logger, func(listens []string) {
		m := demoManifest{Gateway: "http://" + listens[0], Upstreams: depts.URLs, Tokens: map[string]string{}, CitizenID: citizen}
		if err := lock.listening(m.Gateway); err != nil {
			logger.Error("write demo.lock", "error", err)
		}
		for _, l := range listens {
			m.Replicas = append(m.Replicas, "http://"+l)
		}
		for _, r := range demoRoles {
			c := r.claims
			c.TTL = 12 * time.Hour
			if r.role == "citizen" {
				c.IDNumber = citizen
			}
			tok, err := signToken(key, c, time.Now())
			if err != nil {
				logger.Error("sign demo token", "role", r.role, "error", err)
				continue
			}
			m.Tokens[r.role] = tok
		}
		if err := approveDemoGrant(ctx, m.Gateway, m.Tokens); err != nil {
			logger.Error("the demo's approved grant could not be made", "error", err)
		}
		if err := waitOpenData(ctx, m.Gateway, len(cfgs[0].Open.Releases)); err != nil {
			logger.Error("the demo's open data is not published", "error", err)
		}
		b, _ := json.MarshalIndent(m, "", "  ")
		if err := os.WriteFile(filepath.Join(absDir, "demo.json"), append(b, '\n'), 0o600); err != nil {
			logger.Error("write demo.json", "error", err)
		}
		budgets := filepath.Join(absDir, "state")
		if *redisAddr != "" {
			budgets = "in Redis " + *redisAddr
		}
		printDemo(stdout, absDir, budgets, m)
		if *redisAddr != "" {
			printReplicas(stdout, absDir, *redisAddr, m)
		}
	})
}

// demoPolicies picks the policy directory: the one given, else ./policies
// when it exists, else a copy of the embedded policies in DIR/policies.
func demoPolicies(dir, given string, explicit bool) (string, error) {
	if st, err := os.Stat(given); err == nil && st.IsDir() {
		return filepath.Abs(given)
	} else if explicit {
		return "", fmt.Errorf("--policies %s: not a directory", given)
	}
	dst := filepath.Join(dir, "policies")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return "", err
	}
	err := fs.WalkDir(policies.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, path), 0o700)
		}
		b, err := policies.FS.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, path), b, 0o600)
	})
	return dst, err
}

var demoConfig = template.Must(template.New("sluice.yaml").Parse(`# Written by sluice demo; rewritten on every run (the upstream ports change).
listen: {{.Addr}}
# Audit hashes and pseudonyms are keyed with keys derived from this secret.
hmac_key_file: hmac.key
auth:
  issuer: sluice-demo
  audience: sluice
  leeway: 30s
  keys:
    - id: demo-ed25519
      algorithms: [EdDSA]
      public_key_file: token-verify.pem
policy:
  dir: {{.Policies}}
audit:
  dir: {{.AuditDir}}
  # Signed checkpoints of the trail's head; the witness keeps the latest
  # outside the trail. sluice audit verify --dir DIR checks both.
  checkpoint_key_file: checkpoint-signing.pem
{{- if .Redis}}
  # This replica's trail is its own; Redis keeps its latest checkpoint
  # under its name, and a copy of every record in the stream
  # sluice:audit:stream.
  replica: {{.Name}}
  redis_witness: true
  stream: {}
# Privacy budgets, statistics answers, rate limits and token revocations,
# shared by every replica. Redis must fsync every write: deploy/redis.conf.
state:
  redis:
    addrs: [{{.Redis}}]
{{- else}}
  witness_file: audit-witness.json
# Privacy budgets and the answers of statistics releases (bbolt, fsync'd).
state:
  path: state/sluice.db
{{- end}}
limits:
  max_record_bytes: 1MiB
  max_response_bytes: 1GiB
  spool_memory_bytes: 4MiB
# Whose privacy statistics protect. The three datasets are about one
# population, the city's residents (keyed by ID number): every release
# about any of them is charged to its budget, per role class, so a new
# dataset or a new caller never adds budget about the same people.
populations:
  - name: residents
    budget: {epsilon: 60, delta: 1e-5}      # no period: a spent budget stays spent
    allocations: {researcher: 20, analyst: 15, public: 15, open: 10}
    accounting: pure
# Open data: tables published to everyone without a token at /open/,
# computed once a month by the gateway itself and charged to the
# residents' open allocation (ε 10): ε 0.8 a month in all.
open:
  enabled: true
  publisher: Sluice demo city
  releases:
    - id: visits-by-district
      title: People who visited a hospital, by district
      title_zh: 就诊人数（按区）
      description: How many residents had at least one hospital visit, in each district; each person counted once.
      description_zh: 各区有就诊记录的居民人数，每人只计一次。
      dataset: health/visits
      metric: count
      group_by: district
      epsilon: 0.2
      every: 30d
    - id: assistance-by-household-size
      title: Households receiving assistance, by household size
      title_zh: 低保家庭数（按家庭人口）
      description: How many assistance cases there are for households of each size.
      description_zh: 按家庭人口统计的社会救助案件数。
      dataset: civil/assistance
      metric: count
      group_by: household_size
      epsilon: 0.2
      every: 30d
    - id: allowance-by-district
      title: Mean monthly allowance, by district (yuan)
      title_zh: 月均救助金（按区，元）
      description: The mean monthly allowance of assistance cases in each district, each case's allowance bounded to 0–3000 yuan.
      description_zh: 各区救助案件的平均月救助金，每案金额限定在 0–3000 元。
      dataset: civil/assistance
      metric: mean
      field: monthly_allowance
      bounds: [0, 3000]
      group_by: district
      epsilon: 0.4                         # a mean spends half on the sum, half on the count
      every: 30d
sources:
  - name: police
    upstream: {{.Police}}
    timeout: 10s
    credentials: {header: Authorization, value_file: upstream.token.header}
    datasets:
      - name: residents
        path: /residents
        records: items
        population: residents
        delta: 1e-7                        # δ of private partition selection: 33 such releases per researcher
        id_field: id_number
        privacy_unit: id_number
        classification: L4
        sharing: none                      # the hub's catalogue: no department may request these records
        basis: "户籍信息不予共享 — household registration records are kept by the public security bureau (demo rule)"
        meta: [page, page_size]
        counts: [total]
        filters: {district: district}
        # Statistics: public partition domains, so grouping by them spends
        # nothing on choosing which groups to report.
        domains: {district: {{.Districts}}, gender: ["男", "女"]}
        # class, for sluice policy risk: id identifies a person on its own
        # (released masked or pseudonymised, it still counts as a
        # quasi-identifier); quasi is what others can know of a person and
        # join on; sensitive is what a release must not teach about one.
        fields:
          id_number: {type: id_cn, level: L4, class: id}
          name: {type: name_cn, level: L4, class: id}
          # Sex, birth date and district are the classic triple that
          # singles most people out (Sweeney: 87% of the US by ZIP, sex
          # and birth date); all three are on an ID card.
          gender: {type: string, level: L2, class: quasi}
          birth_date: {type: date, level: L3, class: quasi}
          phone: {type: phone_cn, level: L4, class: id}
          # A full address is one household: an identifier, as HIPAA's
          # Safe Harbor lists street addresses.
          address: {type: address_cn, level: L4, class: id}
          district: {type: string, level: L1, class: quasi}
  - name: health
    upstream: {{.Health}}
    timeout: 10s
    credentials: {header: Authorization, value_file: upstream.token.header}
    datasets:
      - name: visits
        path: /visits
        records: items
        population: residents
        delta: 1e-7
        id_field: visit_id
        privacy_unit: patient_id
        classification: L3
        sharing: conditional               # requests are decided by the health department's stewards
        meta: [page, page_size]
        counts: [total]
        filters: {district: district}
        domains: {district: {{.Districts}}}
        fields:
          # A record number is "any other unique identifying number" (HIPAA
          # Safe Harbor): whoever holds the department's records finds the
          # patient from it.
          visit_id: {type: string, level: L2, class: id}
          patient_id: {type: id_cn, level: L4, class: id}
          patient_name: {type: name_cn, level: L4, class: id}
          # Where and when a person was seen, and what it cost, are known
          # to others: family, employers, the receipt and the insurer's
          # claim. Each narrows the visit to few people.
          district: {type: string, level: L1, class: quasi}
          hospital: {type: string, level: L1, class: quasi}
          # The diagnosis is what a release of visits must not tell about
          # a person: its l-diversity is measured, it is not joined on.
          diagnosis: {type: icd10, level: L3, class: sensitive}
          visit_date: {type: date, level: L3, class: quasi}
          cost: {type: integer, level: L2, class: quasi}
  - name: civil
    upstream: {{.Civil}}
    timeout: 10s
    credentials: {header: Authorization, value_file: upstream.token.header}
    datasets:
      - name: assistance
        path: /assistance
        records: items
        population: residents
        delta: 1e-7
        id_field: case_id
        privacy_unit: id_number
        classification: L3
        sharing: conditional
        meta: [page, page_size]
        counts: [total]
        filters: {district: district}
        domains: {district: {{.Districts}}, household_size: ["1", "2", "3", "4", "5", "6", "7", "8"]}
        fields:
          # The case number identifies the case, hence the person, to
          # anyone holding the department's records.
          case_id: {type: string, level: L2, class: id}
          id_number: {type: id_cn, level: L4, class: id}
          name: {type: name_cn, level: L4, class: id}
          phone: {type: phone_cn, level: L4, class: id}
          # Neighbours know where a family lives, how many they are and
          # when its case began.
          district: {type: string, level: L1, class: quasi}
          household_size: {type: integer, level: L2, class: quasi}
          # What a household receives tells its means: what a release of
          # cases must not teach about a person.
          monthly_allowance: {type: integer, level: L3, class: sensitive}
          start_date: {type: date, level: L2, class: quasi}
`))

// ensureCheckpointKey creates the demo's checkpoint signing key and its
// public half in dir unless they exist, so that the trail's checkpoints
// stay verifiable across runs.
func ensureCheckpointKey(dir string) error {
	keyPath := filepath.Join(dir, checkpointKeyFile)
	priv, err := audit.ReadPrivateKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if _, priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return err
		}
		p8, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return err
		}
		if err := writeSecret(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	pubPath := filepath.Join(dir, checkpointVerifyFile)
	if fileExists(pubPath) {
		return nil
	}
	pk, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return err
	}
	return os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), 0o644)
}

// demoReplica is one gateway of the demo.
type demoReplica struct {
	// Addr is the listen address; Name the replica's name ("" alone
	// without Redis); Redis the shared Redis, "" for embedded state.
	Addr, Name, Redis string
	// Config and AuditDir are the file and the trail's directory, in the
	// demo directory.
	Config, AuditDir string
}

func writeDemoConfig(path string, rep demoReplica, policyDir string, upstreams map[string]string) error {
	cred, err := os.ReadFile(filepath.Join(filepath.Dir(path), upstreamFile))
	if err != nil {
		return err
	}
	header := "Bearer " + strings.TrimSpace(string(cred)) + "\n"
	if err := writeSecret(filepath.Join(filepath.Dir(path), upstreamFile+".header"), []byte(header)); err != nil {
		return err
	}
	names := make([]string, len(demo.Districts))
	for i, d := range demo.Districts {
		names[i] = d.Name
	}
	districts, err := json.Marshal(names) // a JSON array is a YAML flow sequence
	if err != nil {
		return err
	}
	var b strings.Builder
	err = demoConfig.Execute(&b, map[string]string{
		"Addr": rep.Addr, "Policies": policyDir, "Districts": string(districts),
		"Police": upstreams["police"], "Health": upstreams["health"], "Civil": upstreams["civil"],
		"AuditDir": rep.AuditDir, "Name": rep.Name, "Redis": rep.Redis,
	})
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func printDemo(w io.Writer, dir, budgets string, m demoManifest) {
	fmt.Fprintf(w, "Sluice demo gateway: %s\n\n", m.Gateway)
	fmt.Fprintln(w, "Departments (reachable only through the gateway's credentials):")
	for _, d := range []string{"police", "health", "civil"} {
		fmt.Fprintf(w, "  %-7s %s\n", d, m.Upstreams[d])
	}
	fmt.Fprintf(w, "\nTokens (valid 12h; also in %s):\n", filepath.Join(dir, "demo.json"))
	for _, r := range demoRoles {
		fmt.Fprintf(w, "  %-10s %s\n", r.role, m.Tokens[r.role])
	}
	g := m.Gateway
	fmt.Fprintf(w, `
Pages (open in a browser):
  %s/open/    open data: published statistics, no account needed
  %s/hub/     the sharing hub: requests, grants, demands (sign in with a token above)
  %s/audit/   the audit trail, for the auditor token
  %s/me/      who used my data, for the citizen token (after some reads above)
`, g, g, g, g)
	fmt.Fprintf(w, `
Try:
  export ANALYST=%s
  curl -s -H "Authorization: Bearer $ANALYST" '%s/v1/health/visits?page_size=3'
  export CASEWORKER=%s
  curl -s -H "Authorization: Bearer $CASEWORKER" '%s/v1/civil/assistance?page_size=3'
  curl -s -H "Authorization: Bearer %s" '%s/v1/health/visits'        # public: 403
  curl -s '%s/v1/health/visits'                                        # no token: 401
  curl -s -H "Authorization: Bearer $ANALYST" '%s/v1/catalog'
  # public: differentially private statistics, charged to a budget of ε = 5
  export PUBLIC=%s
  curl -s -H "Authorization: Bearer $PUBLIC" '%s/v1/health/visits/stats?metric=count&group_by=district&epsilon=0.5'
  curl -s '%s/open/v1/releases/visits-by-district'                   # open data: no token
  curl -s -H "Authorization: Bearer %s" '%s/v1/me/usage'              # the citizen: who used my data
  go run ./cmd/sluice audit verify --dir %s

Config %s, audit trail %s, budgets %s. Ctrl-C stops.
`, m.Tokens["analyst"], g, m.Tokens["caseworker"], g, m.Tokens["public"], g, g, g, m.Tokens["public"], g, g, m.Tokens["citizen"], g, dir,
		filepath.Join(dir, "sluice.yaml"), filepath.Join(dir, "audit"), budgets)
}
