package main

// sluice hub: the sharing hub of a running gateway (DESIGN.md, "The
// hub"), through its HTTP routes (gateway/hub_http.go) as the caller a
// bearer token names. The gateway decides everything: who may see or act
// on what, which transitions a state allows, what conditions an approval
// may set. These commands only ask and print the answer, so that the CLI
// and a curl are refused alike.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluicegw/sluice/hub"
)

// hubCommands are sluice hub's subcommands.
var hubCommands = &group{
	name:    "hub",
	summary: "List, show and decide the sharing hub's requests, grants and demands on a running gateway.",
	subcommands: []subcommand{
		{"requests", "list requests to share a dataset, or show one", hubRequests.commands().run},
		{"grants", "list grants, or show one", hubGrants.commands().run},
		{"demands", "list demands for data the catalogue lacks, or show one", hubDemands.commands().run},
		{"decide", "approve a request (issuing a grant), reject it, or ask its requester for information", runHubDecide},
		{"revoke", "revoke a grant: its releases end at once", hubGrantAct(hub.Revoke,
			"Revoke a grant: no release is made under it again.", "study ended")},
		{"suspend", "suspend a grant until it is resumed", hubGrantAct(hub.Suspend,
			"Suspend a grant: no release is made under it until it is resumed.", "audit finding 12 under review")},
		{"resume", "resume a suspended grant", hubGrantAct(hub.Resume,
			"Resume a suspended grant, within its validity.", "audit finding 12 closed")},
	},
	examples: []string{
		"sluice hub requests list --state submitted --dir .sluice-demo --role steward_health",
		"sluice hub decide req_3KX7Q2M9VB4TNW6HJ8RZ --approve --min-k 5 --gateway https://gw.example --token-file steward.jwt",
		"sluice hub revoke grt_5T8WQ3N6ZK2MBV9XJ4RH --reason 'study ended' --dir .sluice-demo --role steward_health",
	},
}

// hubTarget is the gateway a hub command talks to and the caller it
// speaks as: the flags every hub command takes.
type hubTarget struct {
	gateway, token, tokenFile, dir, role string
}

// addHubTarget adds the gateway and caller flags to c.
func addHubTarget(c *command) *hubTarget {
	t := &hubTarget{}
	fs := c.flags
	fs.StringVar(&t.gateway, "gateway", "", "the gateway's `URL` (default with --role: the demo's)")
	fs.StringVar(&t.token, "token", "", "the caller's bearer token")
	fs.StringVar(&t.tokenFile, "token-file", "", "read the caller's bearer token from `FILE`")
	fs.StringVar(&t.role, "role", "", "act with the demo token of this role (from DIR/demo.json)")
	fs.StringVar(&t.dir, "dir", ".sluice-demo", "demo directory, with --role")
	return t
}

// client checks the flags, a usage error naming cmd, and returns a client
// for the gateway as the caller.
func (t *hubTarget) client(cmd string) (*hubClient, error) {
	if n := btoi(t.token != "") + btoi(t.tokenFile != "") + btoi(t.role != ""); n != 1 {
		return nil, usagef(cmd, "give one of --token, --token-file and --role")
	}
	if t.gateway == "" && t.role == "" {
		return nil, usagef(cmd, "give --gateway (only a demo's --role knows its gateway)")
	}
	if t.gateway != "" {
		u, err := url.Parse(t.gateway)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usagef(cmd, "--gateway %q: want the gateway's http:// or https:// URL", t.gateway)
		}
	}
	c := &hubClient{base: t.gateway, token: t.token}
	switch {
	case t.tokenFile != "":
		tok, err := readSecretFile(t.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file %s: %w", t.tokenFile, err)
		}
		c.token = tok
	case t.role != "":
		path := filepath.Join(t.dir, "demo.json")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--role needs the demo's tokens: %w", err)
		}
		var m demoManifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if c.token = m.Tokens[t.role]; c.token == "" {
			return nil, usagef(cmd, "no demo token for role %q%s", t.role, didYouMean(t.role, slices.Sorted(maps.Keys(m.Tokens))))
		}
		if c.base == "" {
			c.base = m.Gateway
		}
	}
	c.base = strings.TrimSuffix(c.base, "/")
	return c, nil
}

// hubClient calls a gateway's hub routes with a bearer token.
type hubClient struct {
	base, token string
}

// maxHubAnswer bounds an answer the CLI reads: a list of every request a
// coordinator sees, histories included.
const maxHubAnswer = 64 << 20

// call sends body as JSON (nil: none) to path and returns a 2xx answer's
// body; any other answer is a *gatewayError.
func (c *hubClient) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxHubAnswer+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the gateway's answer: %w", err)
	case len(b) > maxHubAnswer:
		return nil, fmt.Errorf("the gateway's answer is over %d MiB", maxHubAnswer>>20)
	case resp.StatusCode/100 != 2:
		return nil, newGatewayError(resp, b)
	}
	return b, nil
}

// gatewayError is a gateway's error answer: {"error": {"code", "message",
// "request_id"}}.
type gatewayError struct {
	status                   int
	code, message, requestID string
}

func newGatewayError(resp *http.Response, body []byte) *gatewayError {
	var v struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	e := &gatewayError{status: resp.StatusCode, requestID: resp.Header.Get("X-Request-Id")}
	if json.Unmarshal(body, &v) == nil && v.Error.Code != "" {
		e.code, e.message = v.Error.Code, v.Error.Message
		e.requestID = cmpOr(v.Error.RequestID, e.requestID)
	} else {
		// Not the gateway's answer (a proxy's, perhaps): its body is not
		// ours to repeat.
		e.code, e.message = "http_"+fmt.Sprint(resp.StatusCode), "the server answered "+resp.Status
	}
	return e
}

func (e *gatewayError) Error() string {
	s := e.code + ": " + e.message
	if e.requestID != "" {
		s += " (request id " + e.requestID + ")"
	}
	return s
}

// hubFailure is how a hub command reports a failed call: a request the
// gateway found malformed (400) came from the command line and exits 2;
// any other failure, a refusal included, exits 1.
func hubFailure(cmd string, err error) error {
	var ge *gatewayError
	if errors.As(err, &ge) && ge.status == http.StatusBadRequest {
		return usagef(cmd, "the gateway refused the request: %v", err)
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

// hubKind is one kind of the hub's objects as the CLI lists and shows
// them; its route is /v1/ and its plural.
type hubKind struct {
	plural, one string
	// about says what the objects are, for help.
	about string
	// table prints a list answer (its body) as a table.
	table func(w io.Writer, body []byte) error
	// show prints one object (an answer's body) as key: value lines.
	show func(w io.Writer, body []byte) error
	// id is an example id, and exampleState a state to list, for help.
	id           string
	exampleState hub.State
}

var (
	hubRequests = &hubKind{plural: "requests", one: "request", id: "req_3KX7Q2M9VB4TNW6HJ8RZ", exampleState: hub.Submitted,
		about: "A request asks the department owning a dataset to share fields of it for a purpose; a steward of that department (or, once it is overdue and escalated, the coordinator) decides it.",
		table: requestTable, show: showRequest}
	hubGrants = &hubKind{plural: "grants", one: "grant", id: "grt_5T8WQ3N6ZK2MBV9XJ4RH", exampleState: hub.Active,
		about: "A grant is what an approval allows: a department may read the granted fields of a dataset, with their treatments, for one purpose, while the grant is active and valid.",
		table: grantTable, show: showGrant}
	hubDemands = &hubKind{plural: "demands", one: "demand", id: "dmd_8RW2K5N9QT3VB7XM4JZH", exampleState: hub.Open,
		about: "A demand asks a department for data the catalogue lacks; a steward of that department publishes a dataset in answer, or refuses.",
		table: demandTable, show: showDemand}
)

// commands are the kind's group: sluice hub requests list|show.
func (k *hubKind) commands() *group {
	return &group{
		name:    "hub " + k.plural,
		summary: fmt.Sprintf("List the sharing hub's %s the caller may see, or show one.", k.plural),
		subcommands: []subcommand{
			{"list", fmt.Sprintf("list the %s the caller may see", k.plural), k.list},
			{"show", fmt.Sprintf("show one %s, with its history", k.one), k.showOne},
		},
		examples: []string{
			fmt.Sprintf("sluice hub %s list --dir .sluice-demo --role steward_health", k.plural),
			fmt.Sprintf("sluice hub %s show %s --gateway https://gw.example --token-file steward.jwt", k.plural, k.id),
		},
	}
}

// list is sluice hub KIND list.
func (k *hubKind) list(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("hub "+k.plural+" list", fmt.Sprintf("List the sharing hub's %s the caller may see, oldest first.", k.plural))
	c.about = paragraph(k.about + fmt.Sprintf(" The gateway lists the %s of the caller's department,"+
		" those its stewards decide, or, to the coordinator, all. --json prints the gateway's answer as it is.", k.plural))
	c.examples = []string{
		fmt.Sprintf("sluice hub %s list --dir .sluice-demo --role steward_health", k.plural),
		fmt.Sprintf("sluice hub %s list --state %s --json --gateway https://gw.example --token-file steward.jwt",
			k.plural, k.exampleState),
	}
	st := c.flags.String("state", "", fmt.Sprintf("only the %s in this state", k.plural))
	asJSON := c.flags.Bool("json", false, "print the gateway's JSON answer as it is")
	target := addHubTarget(c)
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := c.noArgs(rest, "list", "show"); err != nil {
		return err
	}
	hc, err := target.client(c.name)
	if err != nil {
		return err
	}
	path := "/v1/" + k.plural
	if *st != "" {
		path += "?" + url.Values{"state": {*st}}.Encode()
	}
	body, err := hc.call(ctx, http.MethodGet, path, nil)
	if err != nil {
		return hubFailure(c.name, err)
	}
	if *asJSON {
		return writeAnswer(stdout, body)
	}
	if err := k.table(stdout, body); err != nil {
		return fmt.Errorf("%s: the gateway's answer: %w", c.name, err)
	}
	return nil
}

// showOne is sluice hub KIND show ID.
func (k *hubKind) showOne(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("hub "+k.plural+" show", fmt.Sprintf("Show one of the sharing hub's %s, with its history.", k.plural))
	c.usage = "ID [flags]"
	c.about = paragraph(k.about + fmt.Sprintf(" A %s the caller may not see is not found (exit 1)."+
		" --json prints the gateway's answer as it is.", k.one))
	c.examples = []string{
		fmt.Sprintf("sluice hub %s show %s --dir .sluice-demo --role steward_health", k.plural, k.id),
		fmt.Sprintf("sluice hub %s show %s --json --gateway https://gw.example --token-file steward.jwt", k.plural, k.id),
	}
	asJSON := c.flags.Bool("json", false, "print the gateway's JSON answer as it is")
	target := addHubTarget(c)
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef(c.name, "want one %s id, got %d arguments", k.one, len(rest))
	}
	hc, err := target.client(c.name)
	if err != nil {
		return err
	}
	body, err := hc.call(ctx, http.MethodGet, "/v1/"+k.plural+"/"+url.PathEscape(rest[0]), nil)
	if err != nil {
		return hubFailure(c.name, err)
	}
	if *asJSON {
		return writeAnswer(stdout, body)
	}
	var b bytes.Buffer
	if err := k.show(&b, body); err != nil {
		return fmt.Errorf("%s: the gateway's answer: %w", c.name, err)
	}
	_, err = stdout.Write(b.Bytes())
	return err
}

// runHubDecide is sluice hub decide: POST /v1/requests/{id}/decision.
func runHubDecide(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("hub decide", "Approve a sharing request, issuing its grant; reject it; or ask its requester for information.")
	c.usage = "REQ (--approve | --reject | --need-info) [flags]"
	c.about = `A steward of the department owning the dataset decides; once the request is
escalated, the coordinator may too; never its requester. A rejection and a
request for information need a --reason. An approval may narrow what was
asked, never widen it: --fields gives each granted field its treatment
(default: every requested field at its level's ceiling), and --valid-until,
--max-rows, --min-k and --min-l set the grant's terms. A decision the
request's state does not allow (it was decided already) is a conflict, and
exits 1; conditions the gateway finds malformed exit 2.`
	c.examples = []string{
		"sluice hub decide req_3KX7Q2M9VB4TNW6HJ8RZ --approve --dir .sluice-demo --role steward_health",
		`sluice hub decide req_3KX7Q2M9VB4TNW6HJ8RZ --approve --reason 'protocol 7' --fields '{"district":"keep","visit_date":{"op":"generalize","to":"month"}}' --min-k 5 --valid-until 2027-03-31`,
		"sluice hub decide req_3KX7Q2M9VB4TNW6HJ8RZ --reject --reason 'no legal basis for identifiers' --gateway https://gw.example --token-file steward.jwt",
	}
	fs := c.flags
	approve := fs.Bool("approve", false, "approve the request: the gateway issues a grant on its terms")
	reject := fs.Bool("reject", false, "reject the request (needs --reason)")
	needInfo := fs.Bool("need-info", false, "send the request back to its requester for information (needs --reason); its clock pauses")
	reason := fs.String("reason", "", "why, for the requester; the trail keeps it keyed-hashed")
	fields := fs.String("fields", "", "with --approve: each granted field's treatment, a `JSON` object such as {\"district\":\"keep\",\"visit_date\":{\"op\":\"generalize\",\"to\":\"month\"}}")
	validUntil := fs.String("valid-until", "", "with --approve: end the grant at this `TIME` (RFC 3339, or a UTC date), no later than the request asked")
	maxRows := fs.Int("max-rows", 0, "with --approve: cap the rows of one release")
	minK := fs.Int("min-k", 0, "with --approve: suppress records of classes of fewer than `K` people in the grantee's whole view")
	minL := fs.Int("min-l", 0, "with --approve and --min-k: and of classes of fewer than `L` distinct sensitive values")
	asJSON := fs.Bool("json", false, "print the gateway's JSON answer, the decided request, as it is")
	target := addHubTarget(c)
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef(c.name, "want one request id, got %d arguments", len(rest))
	}
	if btoi(*approve)+btoi(*reject)+btoi(*needInfo) != 1 {
		return usagef(c.name, "give one of --approve, --reject and --need-info")
	}
	decision := hubDecision{Decision: hub.Approve, Reason: *reason}
	switch {
	case *reject:
		decision.Decision = hub.Reject
	case *needInfo:
		decision.Decision = hub.NeedInfo
	}
	if !*approve && strings.TrimSpace(*reason) == "" {
		return usagef(c.name, "--%s needs a --reason", strings.ReplaceAll(string(decision.Decision), "_", "-"))
	}
	cond := hub.Conditions{MaxRows: *maxRows, MinK: *minK, MinL: *minL}
	if *fields != "" {
		if err := json.Unmarshal([]byte(*fields), &cond.Fields); err != nil || cond.Fields == nil {
			return usagef(c.name, "--fields: want a JSON object of field: treatment, e.g. {\"district\":\"keep\"}")
		}
	}
	if *validUntil != "" {
		if cond.ValidUntil, err = parseUntil(*validUntil); err != nil {
			return usagef(c.name, "--valid-until: %v", err)
		}
	}
	hasConditions := *fields != "" || *validUntil != "" || *maxRows != 0 || *minK != 0 || *minL != 0
	if hasConditions && !*approve {
		return usagef(c.name, "--fields, --valid-until, --max-rows, --min-k and --min-l are an approval's terms: they go with --approve")
	}
	if hasConditions {
		decision.Conditions = &cond
	}
	hc, err := target.client(c.name)
	if err != nil {
		return err
	}
	body, err := hc.call(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(rest[0])+"/decision", decision)
	if err != nil {
		return hubFailure(c.name, err)
	}
	if *asJSON {
		return writeAnswer(stdout, body)
	}
	var q hub.Request
	if err := json.Unmarshal(body, &q); err != nil {
		return fmt.Errorf("%s: the gateway's answer: %w", c.name, err)
	}
	line := changed(q.ID, q.History)
	if q.Grant != "" {
		line += ", grant " + q.Grant
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}

// hubDecision is the body of POST /v1/requests/{id}/decision.
type hubDecision struct {
	Decision   hub.Action      `json:"decision"`
	Reason     string          `json:"reason,omitempty"`
	Conditions *hub.Conditions `json:"conditions,omitempty"`
}

// paragraph is text wrapped as help wraps a command's about.
func paragraph(text string) string {
	return strings.Join(wrap(text, 76), "\n")
}

// parseUntil reads --valid-until: RFC 3339, or a date (UTC midnight).
func parseUntil(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2027-03-31T00:00:00Z) or a date (2027-03-31)", s)
}

// hubGrantAct is sluice hub revoke|suspend|resume: POST
// /v1/grants/{id}/ACTION with a reason (example is one, for help).
func hubGrantAct(a hub.Action, summary, example string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		c := newCommand("hub "+string(a), summary)
		c.usage = "GRANT --reason R [flags]"
		c.about = paragraph(fmt.Sprintf("A steward of the department owning the dataset, or the coordinator, may %s a"+
			" grant; never the subject who asked for it. It takes effect at once on the gateway that answers and"+
			" within a second on every replica. When the grant's state does not allow it (a revoked or expired"+
			" grant is final), the gateway answers conflict and the command exits 1.", a))
		c.examples = []string{
			fmt.Sprintf("sluice hub %s %s --reason '%s' --dir .sluice-demo --role steward_health", a, hubGrants.id, example),
			fmt.Sprintf("sluice hub %s %s --reason '%s' --gateway https://gw.example --token-file steward.jwt", a, hubGrants.id, example),
		}
		reason := c.flags.String("reason", "", "why (required); the trail keeps it keyed-hashed")
		asJSON := c.flags.Bool("json", false, "print the gateway's JSON answer, the grant, as it is")
		target := addHubTarget(c)
		rest, err := c.parse(args, stdout)
		if err != nil {
			return err
		}
		if len(rest) != 1 {
			return usagef(c.name, "want one grant id, got %d arguments", len(rest))
		}
		if strings.TrimSpace(*reason) == "" {
			return usagef(c.name, "--reason is required")
		}
		hc, err := target.client(c.name)
		if err != nil {
			return err
		}
		body, err := hc.call(ctx, http.MethodPost, "/v1/grants/"+url.PathEscape(rest[0])+"/"+string(a), map[string]string{"reason": *reason})
		if err != nil {
			return hubFailure(c.name, err)
		}
		if *asJSON {
			return writeAnswer(stdout, body)
		}
		var g hub.Grant
		if err := json.Unmarshal(body, &g); err != nil {
			return fmt.Errorf("%s: the gateway's answer: %w", c.name, err)
		}
		_, err = fmt.Fprintln(stdout, changed(g.ID, g.History))
		return err
	}
}

// changed says what an action did to an object: its last transition,
// "req_…: submitted → approved".
func changed(id string, history []hub.Transition) string {
	if len(history) == 0 {
		return id
	}
	t := history[len(history)-1]
	return fmt.Sprintf("%s: %s → %s", id, dash(string(t.From)), t.To)
}
