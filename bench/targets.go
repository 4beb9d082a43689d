package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// target is one way of serving the workload.
type target struct {
	key, name string
	w         workload
	tier      []*child // the processes whose CPU the target costs
	check     func(body []byte) error
	skipped   string // why the target did not run, if it did not
	// metrics is Sluice's /metrics URL, scraped around each run to say
	// where the time went; "" for the other targets.
	metrics string
}

// lab is everything the runs share: the working directory, the built
// binaries and the running servers.
type lab struct {
	o        *options
	root     string // the repository
	work     string
	log      io.Writer
	sluice   string // binary
	demoDir  string
	cred     string            // the departments' bearer credential
	analyst  string            // the analyst's token
	tokens   map[string]string // every demo role's token, by role
	disputed int               // records of the page under objection in (g)
	upURLs   map[string]string
	upstream *child
	children []*child
}

func (l *lab) logf(format string, args ...any) { fmt.Fprintf(l.log, format+"\n", args...) }

func (l *lab) close() {
	for i := len(l.children) - 1; i >= 0; i-- {
		l.children[i].stop()
	}
}

func (l *lab) start(ctx context.Context, name string, cmd *exec.Cmd, wantReady bool, v any) (*child, error) {
	c, err := startChild(ctx, l.work, name, cmd, wantReady, v)
	if err != nil {
		return nil, err
	}
	l.children = append(l.children, c)
	return c, nil
}

// startServing starts a server and waits until url answers status.
func (l *lab) startServing(ctx context.Context, name string, cmd *exec.Cmd, url string, status int) (*child, error) {
	c, err := l.start(ctx, name, cmd, false, nil)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, c, url, status); err != nil {
		return nil, err
	}
	return c, nil
}

// repoRoot is the module root of the current directory.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the harness from the Sluice repository (go run ./bench)")
	}
	b, err := os.ReadFile(mod)
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "module github.com/sluicegw/sluice\n") {
		return "", fmt.Errorf("%s is not Sluice's go.mod; run the harness from the Sluice repository", mod)
	}
	return filepath.Dir(mod), nil
}

// buildSluice builds cmd/sluice from the working tree.
func (l *lab) buildSluice(ctx context.Context) error {
	l.sluice = filepath.Join(l.work, "sluice")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", l.sluice, "./cmd/sluice")
	cmd.Dir = l.root
	if l.o.src != "" {
		cmd.Dir = l.o.src
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/sluice: %w\n%s", err, out)
	}
	return nil
}

// setUp builds Sluice, makes the demo's keys, tokens and configuration
// with `sluice demo`, and starts the departments in a process of their own.
func (l *lab) setUp(ctx context.Context) error {
	l.logf("building sluice")
	if err := l.buildSluice(ctx); err != nil {
		return err
	}
	l.demoDir = filepath.Join(l.work, "demo")
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	// sluice demo writes the keys, the configuration and demo.json with a
	// token for each role. It runs the departments in its own process, so
	// it is stopped once demo.json is there; the gateway under test runs
	// as `sluice serve` before departments in a process of their own.
	demoCmd := exec.CommandContext(ctx, l.sluice, "demo", "--dir", l.demoDir, "--addr", addr,
		"--policies", filepath.Join(l.root, "policies"))
	dc, err := l.startServing(ctx, "sluice-demo", demoCmd, "http://"+addr+"/readyz", http.StatusOK)
	if err != nil {
		return err
	}
	var manifest struct {
		Upstreams map[string]string `json:"upstreams"`
		Tokens    map[string]string `json:"tokens"`
	}
	// demo.json is written just after the gateway starts serving.
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, err := os.ReadFile(filepath.Join(l.demoDir, "demo.json"))
		if err == nil && json.Unmarshal(b, &manifest) == nil && len(manifest.Tokens) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sluice demo wrote no demo.json in %s", l.demoDir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dc.stop()
	l.analyst, l.tokens = manifest.Tokens["analyst"], manifest.Tokens
	if l.analyst == "" {
		return errors.New("demo.json has no analyst token")
	}
	cred, err := os.ReadFile(filepath.Join(l.demoDir, "upstream.token"))
	if err != nil {
		return err
	}
	l.cred = strings.TrimSpace(string(cred))

	self, err := os.Executable()
	if err != nil {
		return err
	}
	l.upURLs = map[string]string{}
	up := exec.CommandContext(ctx, self, roleFlag, "upstream", "--cred", l.cred,
		"--stream-bytes", fmt.Sprint(int64(max(l.o.streamMB, 1))<<20))
	if l.upstream, err = l.start(ctx, "upstream", up, true, &l.upURLs); err != nil {
		return err
	}
	// Point the demo configuration at the harness's departments.
	cfg, err := os.ReadFile(filepath.Join(l.demoDir, "sluice.yaml"))
	if err != nil {
		return err
	}
	s := string(cfg)
	for dept, u := range manifest.Upstreams {
		if !strings.Contains(s, "upstream: "+u+"\n") {
			return fmt.Errorf("sluice.yaml does not name the %s department's URL %s", dept, u)
		}
		s = strings.ReplaceAll(s, "upstream: "+u+"\n", "upstream: "+l.upURLs[dept]+"\n")
	}
	return os.WriteFile(filepath.Join(l.demoDir, "sluice.yaml"), []byte(s), 0o600)
}

// serveSluice runs `sluice serve` with the demo configuration, edited by
// edit (listen address, upstreams, policy and audit directories).
func (l *lab) serveSluice(ctx context.Context, name string, edit func(string) (string, error)) (*child, string, error) {
	b, err := os.ReadFile(filepath.Join(l.demoDir, "sluice.yaml"))
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	cfg, err := replaceLine(string(b), "listen: ", "listen: "+addr)
	if err != nil {
		return nil, "", err
	}
	if edit != nil {
		if cfg, err = edit(cfg); err != nil {
			return nil, "", err
		}
	}
	path := filepath.Join(l.demoDir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	c, err := l.startServing(ctx, name, exec.CommandContext(ctx, l.sluice, "serve", "--config", path), base+"/readyz", http.StatusOK)
	if err != nil {
		return nil, "", err
	}
	return c, base, nil
}

// ownState names the state file and audit trail of the targets that run
// the demo configuration on state of their own.
var ownState = map[string]string{"f": "nogrant", "g": "disputed", "h": "unnamed"}

// stateOf edits the demo configuration to keep its state in
// state/sluice-NAME.db and its trail in audit-NAME.
func stateOf(name string) func(string) (string, error) {
	return func(cfg string) (string, error) {
		for _, r := range []struct{ re, to string }{
			{`(?m)^state:\n(\s*)path: .*$`, "state:\n${1}path: state/sluice-" + name + ".db"},
			{`(?m)^audit:\n  dir: .*$`, "audit:\n  dir: audit-" + name},
			{`(?m)^(\s*)witness_file: .*$`, "${1}witness_file: audit-" + name + "-witness.json"},
		} {
			re := regexp.MustCompile(r.re)
			if !re.MatchString(cfg) {
				return "", fmt.Errorf("configuration has no match for %s", r.re)
			}
			cfg = re.ReplaceAllString(cfg, r.to)
		}
		return cfg, nil
	}
}

// copyState copies the demo's state files (gateway and hub, with the
// demo's grant) to those stateOf(name) names.
func (l *lab) copyState(name string) error {
	for _, suffix := range []string{".db", "-hub.db"} {
		b, err := os.ReadFile(filepath.Join(l.demoDir, "state", "sluice"+suffix))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(l.demoDir, "state", "sluice-"+name+suffix), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// replaceLine replaces the one line starting with prefix (at any indent).
func replaceLine(s, prefix, with string) (string, error) {
	re := regexp.MustCompile(`(?m)^(\s*)` + regexp.QuoteMeta(prefix) + `.*$`)
	if n := len(re.FindAllStringIndex(s, -1)); n != 1 {
		return "", fmt.Errorf("configuration: %d lines start with %q, want 1", n, prefix)
	}
	return re.ReplaceAllString(s, "${1}"+with), nil
}

// openData is the demo configuration's switch of open data.
var openData = regexp.MustCompile(`(?m)^open:\n  enabled: true$`)

// withoutOpenData is the configuration cfg with open data disabled.
func withoutOpenData(cfg string) (string, error) {
	if !openData.MatchString(cfg) {
		return "", errors.New("configuration does not enable open data as expected")
	}
	return openData.ReplaceAllString(cfg, "open:\n  enabled: false"), nil
}

// targets starts every target's servers. A target that cannot run here
// (nginx not installed) is returned with the reason in skipped.
func (l *lab) targets(ctx context.Context) ([]*target, error) {
	var ts []*target
	want := func(k string) bool { return strings.Contains(l.o.targets, k) }
	raw := checkRecords(false)
	cred := "Bearer " + l.cred
	bearer := "Bearer " + l.analyst
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if want("a") {
		ts = append(ts, &target{key: "a", name: "upstream direct",
			w:    workload{url: l.upURLs["health"] + "/visits?page_size=20", auth: cred},
			tier: []*child{l.upstream}, check: raw})
	}
	if want("b") {
		var where struct{ URL string }
		c, err := l.start(ctx, "bare-proxy", exec.CommandContext(ctx, self, roleFlag, "proxy",
			"--upstream", l.upURLs["health"], "--cred", l.cred), true, &where)
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{key: "b", name: "bare Go ReverseProxy",
			w: workload{url: where.URL + "/v1/health/visits?page_size=20", auth: bearer}, tier: []*child{c}, check: raw})
	}
	if want("c") {
		t := &target{key: "c", name: "nginx proxy_pass", check: raw}
		if _, err := exec.LookPath("nginx"); err != nil {
			t.skipped = "nginx is not installed (apt-get install nginx-light)"
		} else {
			c, url, err := l.startNginx(ctx, cred)
			if err != nil {
				return nil, err
			}
			t.w, t.tier = workload{url: url + "/v1/health/visits?page_size=20", auth: bearer}, []*child{c}
		}
		ts = append(ts, t)
	}
	if want("d") {
		t := &target{key: "d", name: "sidecar: Go proxy + OPA server", check: raw}
		opa, err := l.opaBinary(ctx)
		if err != nil {
			return nil, err
		}
		oc, opaURL, err := l.startOPA(ctx, opa)
		if err != nil {
			return nil, err
		}
		var where struct{ URL string }
		c, err := l.start(ctx, "sidecar-proxy", exec.CommandContext(ctx, self, roleFlag, "proxy",
			"--upstream", l.upURLs["health"], "--cred", l.cred, "--opa", opaURL), true, &where)
		if err != nil {
			return nil, err
		}
		t.w, t.tier = workload{url: where.URL + "/v1/health/visits?page_size=20", auth: bearer}, []*child{c, oc}
		ts = append(ts, t)
	}
	// (g) and (h) start from copies of the demo's state, taken before (e)
	// opens it: the analyst reads under the same grant as in (e).
	for _, k := range []string{"g", "h"} {
		if want(k) {
			if err := l.copyState(ownState[k]); err != nil {
				return nil, err
			}
		}
	}
	if want("e") {
		c, base, err := l.serveSluice(ctx, "sluice", nil)
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{key: "e", name: "Sluice (JWT, policy, transform, durable audit)",
			w: workload{url: base + "/v1/health/visits?page_size=20", auth: bearer}, tier: []*child{c}, check: checkRecords(true),
			metrics: base + "/metrics"})
	}
	if want("f") {
		// The same gateway on a state file of its own, whose hub holds no
		// grant: the analyst reads the same view by its role's own rule,
		// and (e) against (f) is what a release under a grant costs.
		c, base, err := l.serveSluice(ctx, "sluice-"+ownState["f"], stateOf(ownState["f"]))
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{key: "f", name: "Sluice, the same view by the analyst's own rule (no grant)",
			w: workload{url: base + "/v1/health/visits?page_size=20", auth: bearer}, tier: []*child{c}, check: checkRecords(true),
			metrics: base + "/metrics"})
	}
	if want("g") {
		// The same gateway and grant, with records of the page under open
		// objections filed by a department that received them: every
		// release marks them disputed, and (g) against (e) is what the
		// marks cost.
		c, base, err := l.serveSluice(ctx, "sluice-"+ownState["g"], stateOf(ownState["g"]))
		if err != nil {
			return nil, err
		}
		n, err := l.dispute(ctx, base)
		if err != nil {
			return nil, fmt.Errorf("(g) filing objections: %w", err)
		}
		l.disputed = n
		ts = append(ts, &target{key: "g", name: fmt.Sprintf("Sluice, %d of the page's records under objection (marked)", n),
			w: workload{url: base + "/v1/health/visits?page_size=20", auth: bearer}, tier: []*child{c}, check: checkMarked(n),
			metrics: base + "/metrics"})
	}
	if want("h") {
		// The same gateway and grant, but health/visits declares no
		// privacy unit and no record id: its releases name nobody (no
		// keyed hashes in the outcome record, nothing for the usage
		// index), and (e) against (h) is what naming the people costs.
		edit := stateOf(ownState["h"])
		c, base, err := l.serveSluice(ctx, "sluice-"+ownState["h"], func(cfg string) (string, error) {
			cfg, err := edit(cfg)
			for _, line := range []string{"id_field: visit_id", "privacy_unit: patient_id"} {
				if err == nil {
					cfg, err = replaceLine(cfg, line, "# "+line+" (the bench harness: a release naming nobody)")
				}
			}
			// Open data publishes statistics of visits by person, which
			// needs the privacy unit; it runs monthly, off the workload.
			if err != nil {
				return "", err
			}
			return withoutOpenData(cfg)
		})
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{key: "h", name: "Sluice, visits naming nobody (no privacy unit, no id)",
			w: workload{url: base + "/v1/health/visits?page_size=20", auth: bearer}, tier: []*child{c}, check: checkRecords(true),
			metrics: base + "/metrics"})
	}
	for _, t := range ts {
		if t.skipped != "" {
			continue
		}
		if err := t.precheck(ctx); err != nil {
			return nil, fmt.Errorf("(%s) %s: %w", t.key, t.name, err)
		}
	}
	return ts, nil
}

// precheck fetches the workload once and checks the answer's shape, so no
// run measures a server that answers errors quickly.
func (t *target) precheck(ctx context.Context) error {
	client := newClient(1)
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.w.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", t.w.auth)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, body)
	}
	return t.check(body)
}

// checkRecords checks a page of 20 visits; released ones must be the
// analyst's view (no patient name, month-level visit dates), the records
// of classes below its min_k counted as suppressed.
func checkRecords(released bool) func([]byte) error {
	return func(body []byte) error {
		var page struct {
			Items      []map[string]any `json:"items"`
			Suppressed int              `json:"suppressed"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("answer is not a page of records: %w", err)
		}
		if n := len(page.Items) + page.Suppressed; n != 20 || len(page.Items) == 0 {
			return fmt.Errorf("answer has %d records and %d suppressed, want 20 in all", len(page.Items), page.Suppressed)
		}
		_, named := page.Items[0]["patient_name"]
		date, _ := page.Items[0]["visit_date"].(string)
		if released && (named || len(date) != len("2026-01")) {
			return fmt.Errorf("record %v is not the analyst's view", page.Items[0])
		}
		if !released && !named {
			return fmt.Errorf("record %v is not the department's raw record", page.Items[0])
		}
		return nil
	}
}

var nginxConf = template.Must(template.New("nginx.conf").Parse(`# Written by the Sluice bench harness.
worker_processes auto;
daemon off;
master_process on;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 4096; }
http {
	access_log {{.Dir}}/access.log;
	client_body_temp_path {{.Dir}}/client_body;
	proxy_temp_path {{.Dir}}/proxy;
	fastcgi_temp_path {{.Dir}}/fastcgi;
	uwsgi_temp_path {{.Dir}}/uwsgi;
	scgi_temp_path {{.Dir}}/scgi;
	upstream health { server {{.Upstream}}; keepalive 128; }
	server {
		listen {{.Listen}};
		location /v1/health/ {
			proxy_pass http://health/;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Authorization "{{.Credential}}";
		}
	}
}
`))

// startNginx runs nginx in the foreground with a generated configuration:
// /v1/health/ proxied to the health department with its credential.
func (l *lab) startNginx(ctx context.Context, credential string) (*child, string, error) {
	dir := filepath.Join(l.work, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	// Workers may run as an unprivileged user; they must reach dir.
	os.Chmod(l.work, 0o755)
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	var b strings.Builder
	err = nginxConf.Execute(&b, map[string]string{"Dir": dir, "Listen": addr,
		"Upstream": strings.TrimPrefix(l.upURLs["health"], "http://"), "Credential": credential})
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	// Any answer will do: nginx answers 404 outside /v1/health/.
	c, err := l.startServing(ctx, "nginx", exec.CommandContext(ctx, "nginx", "-p", dir, "-c", conf), base+"/", http.StatusNotFound)
	if err != nil {
		return nil, "", err
	}
	return c, base, nil
}

// startOPA runs `opa run --server` with the sidecar's policy.
func (l *lab) startOPA(ctx context.Context, opa string) (*child, string, error) {
	dir := filepath.Join(l.work, "opa")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	pol := filepath.Join(dir, "sidecar.rego")
	if err := os.WriteFile(pol, []byte(sidecarPolicy), 0o600); err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	c, err := l.startServing(ctx, "opa", exec.CommandContext(ctx, opa, "run", "--server", "--addr", addr,
		"--log-level", "error", "--skip-version-check", pol), base+"/health", http.StatusOK)
	if err != nil {
		return nil, "", err
	}
	return c, base, nil
}

// opaVersion is the OPA module version go.mod pins.
func (l *lab) opaVersion() (string, error) {
	f, err := os.Open(filepath.Join(l.root, "go.mod"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "github.com/open-policy-agent/opa" && i+1 < len(fields) {
				return fields[i+1], nil
			}
		}
	}
	return "", errors.New("go.mod does not require github.com/open-policy-agent/opa")
}

// opaBinary returns the OPA server binary: --opa, else one built from the
// pinned OPA module in a throwaway module (so the repository's go.mod is
// never touched), cached in the user cache directory.
func (l *lab) opaBinary(ctx context.Context) (string, error) {
	if l.o.opaBin != "" {
		return l.o.opaBin, nil
	}
	version, err := l.opaVersion()
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "sluice-bench", "opa-"+version)
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin, nil
	}
	l.logf("building OPA %s into %s (once; it is cached)", version, bin)
	mod, err := os.MkdirTemp("", "sluice-bench-opa-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(mod)
	gomod := "module sluicebench/opa\n\ngo 1.26\n"
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	start := time.Now()
	for _, args := range [][]string{
		{"get", "github.com/open-policy-agent/opa@" + version},
		{"build", "-o", bin + ".tmp", "github.com/open-policy-agent/opa"},
	} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s (building the OPA server for the sidecar): %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		return "", err
	}
	l.logf("built OPA in %s", time.Since(start).Round(time.Second))
	return bin, nil
}
