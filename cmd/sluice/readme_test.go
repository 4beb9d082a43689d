package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readme is the repository's README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// repoRoot is the repository's root, from this package's directory.
const repoRoot = "../.."

// TestReadmeCommandListIsTheHelps: the README's command list is the one
// `sluice --help` prints, line for line.
func TestReadmeCommandListIsTheHelps(t *testing.T) {
	out, _, err := runCmd(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	_, help, ok := strings.Cut(out, "commands:\n")
	help, _, _ = strings.Cut(help, "\n\n")
	_, section, found := strings.Cut(readme(t), "## Command line\n")
	_, block, _ := strings.Cut(section, "```\n")
	block, _, _ = strings.Cut(block, "```\n")
	if !ok || !found || strings.TrimRight(block, "\n") != strings.TrimRight(help, "\n") {
		t.Errorf("README's command list:\n%s\nsluice --help:\n%s", block, help)
	}
}

// shellCommands are the commands of the README's ```sh blocks, one per
// logical line (a trailing \ continues it), each with its comment.
func shellCommands(text string) (cmds, comments []string) {
	inBlock := false
	var cur string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			inBlock = true
			continue
		case strings.HasPrefix(line, "```"):
			inBlock = false
			continue
		case !inBlock:
			continue
		}
		cur += line
		if strings.HasSuffix(cur, "\\") {
			cur = strings.TrimSuffix(cur, "\\") + " "
			continue
		}
		cmd, comment, _ := strings.Cut(cur, " #")
		if cmd = strings.TrimSpace(cmd); cmd != "" && !strings.HasPrefix(cmd, "#") {
			cmds, comments = append(cmds, cmd), append(comments, comment)
		}
		cur = ""
	}
	return cmds, comments
}

// words splits a shell command line into its words: quotes group,
// $(tok ROLE) is the demo token of ROLE, $GW the demo's gateway, and
// $NAME a value an earlier answer gave (vars).
func words(line string, tokens map[string]string, gw string, vars map[string]string) []string {
	for name, v := range vars {
		line = strings.ReplaceAll(line, "$"+name, v)
	}
	line = regexp.MustCompile(`\$\(tok (\w+)\)`).ReplaceAllStringFunc(line, func(m string) string {
		return tokens[strings.TrimSuffix(strings.TrimPrefix(m, "$(tok "), ")")]
	})
	line = strings.ReplaceAll(line, "$GW", gw)
	var out []string
	var w strings.Builder
	quoted, single, any := false, false, false
	for _, r := range line {
		switch {
		case r == '\'' && !quoted:
			single, any = !single, true
		case r == '"' && !single:
			quoted, any = !quoted, true
		case r == ' ' && !quoted && !single:
			if any {
				out = append(out, w.String())
			}
			w.Reset()
			any = false
		default:
			w.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, w.String())
	}
	return out
}

// TestReadmeExamplesRunAgainstTheDemo runs every curl and `go run
// ./cmd/sluice` example of the README against a running demo, as written:
// each curl must answer the status its comment names (200 when it names
// none), each command must succeed. The demo itself and Redis replicas
// are started by other tests.
func TestReadmeExamplesRunAgainstTheDemo(t *testing.T) {
	dir := t.TempDir()
	d := startDemo(t, dir)
	status := regexp.MustCompile(`\b([1-5]\d\d)\b`)
	cmds, comments := shellCommands(readme(t))
	t.Chdir("../..") // the README's commands run from the repository's root
	ran, vars := map[string]int{}, map[string]string{}
	for i, line := range cmds {
		w := words(line, d.manifest.Tokens, d.manifest.Gateway, vars)
		switch {
		case w[0] == "curl":
			method, body, url := http.MethodGet, "", ""
			var headers []string
			for j := 1; j < len(w); j++ {
				switch {
				case w[j] == "-H" && j+1 < len(w):
					name, value, _ := strings.Cut(w[j+1], ": ")
					headers = append(headers, name, value)
					j++
				case w[j] == "-X" && j+1 < len(w):
					method = w[j+1]
					j++
				case w[j] == "-d" && j+1 < len(w):
					body = w[j+1]
					j++
				case strings.HasPrefix(w[j], "-"):
				default:
					url = w[j]
				}
			}
			want := http.StatusOK
			if m := status.FindStringSubmatch(comments[i]); m != nil {
				want, _ = strconv.Atoi(m[1])
			} else if method == http.MethodPost && strings.HasSuffix(url, "s") {
				want = http.StatusCreated // a POST to a collection makes one
			}
			r := send(t, method, url, body, headers...)
			if r.status != want {
				t.Errorf("README: %s\nanswered %d, want %d: %s", line, r.status, want, r.body)
			}
			// The ids later examples name: $REQ, $GRANT.
			var ids struct{ ID, Grant string }
			if json.Unmarshal(r.body, &ids) == nil {
				if strings.HasPrefix(ids.ID, "req_") {
					vars["REQ"] = ids.ID
				}
				if ids.Grant != "" {
					vars["GRANT"] = ids.Grant
				}
			}
			ran["curl"]++
		case len(w) > 3 && w[0] == "go" && w[1] == "run" && w[2] == "./cmd/sluice":
			args := w[3:]
			if args[0] == "demo" || args[0] == "serve" {
				continue // the demo runs; serve needs an operator's configuration
			}
			for j, a := range args {
				if a == ".sluice-demo" {
					args[j] = dir
				}
			}
			if out, errOut, err := runCmd(t, args...); err != nil {
				t.Errorf("README: %s\nexit %d: %v\n%s%s", line, exitCode(err), err, out, errOut)
			}
			ran["sluice"]++
		}
	}
	t.Logf("ran %d curl and %d sluice examples", ran["curl"], ran["sluice"])
	if ran["curl"] < 5 || ran["sluice"] < 5 {
		t.Errorf("ran %d curl and %d sluice examples: the README's examples were not found", ran["curl"], ran["sluice"])
	}
}

// send is fetch with a method and a body.
func send(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	if method == http.MethodGet && body == "" {
		return fetch(t, url, "", headers...)
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}
