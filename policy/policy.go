// Package policy evaluates the security officers' Rego policies in process.
//
// It guarantees that a request is allowed only by a well-formed decision:
// an undefined, malformed or failing evaluation of data.sluice.decision is a
// deny. A Set is compiled once from a directory of .rego and data files and
// is immutable; the Engine swaps whole sets atomically, so a request is
// decided by exactly one revision.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// Query is the rule every policy set must define.
const Query = "data.sluice.decision"

// Input is the document the gateway hands to the policy (DESIGN.md).
type Input struct {
	Subject  Subject     `json:"subject"`
	Purpose  string      `json:"purpose"`
	Action   string      `json:"action"`
	Resource *Resource   `json:"resource,omitempty"`
	Request  Request     `json:"request"`
	Stats    *StatsQuery `json:"stats,omitempty"`
	Time     time.Time   `json:"time"`
}

// Subject is the authenticated caller.
type Subject struct {
	ID       string         `json:"id"`
	Roles    []string       `json:"roles"`
	Dept     string         `json:"dept,omitempty"`
	District string         `json:"district,omitempty"`
	Claims   map[string]any `json:"claims,omitempty"`
}

// Resource is the dataset asked for, as configured.
type Resource struct {
	Source         string               `json:"source"`
	Dataset        string               `json:"dataset"`
	Classification string               `json:"classification,omitempty"`
	Fields         map[string]FieldInfo `json:"fields,omitempty"`
}

// FieldInfo is a field's declared type and sensitivity level.
type FieldInfo struct {
	Type  string `json:"type,omitempty"`
	Level string `json:"level,omitempty"`
}

// Request is the HTTP request as the policy sees it.
type Request struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Params map[string][]string `json:"params"`
}

// StatsQuery is a statistics request.
type StatsQuery struct {
	Metric  string  `json:"metric"`
	Field   *string `json:"field"`
	GroupBy *string `json:"group_by"`
	Epsilon float64 `json:"epsilon"`
}

// value converts the input to the plain map form OPA reads fastest.
func (in *Input) value() map[string]any {
	roles := make([]any, len(in.Subject.Roles))
	for i, r := range in.Subject.Roles {
		roles[i] = r
	}
	claims := map[string]any{}
	for k, v := range in.Subject.Claims {
		claims[k] = v
	}
	params := make(map[string]any, len(in.Request.Params))
	for k, vs := range in.Request.Params {
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		params[k] = list
	}
	m := map[string]any{
		"subject": map[string]any{
			"id": in.Subject.ID, "roles": roles, "dept": in.Subject.Dept,
			"district": in.Subject.District, "claims": claims,
		},
		"purpose": in.Purpose,
		"action":  in.Action,
		"request": map[string]any{"method": in.Request.Method, "path": in.Request.Path, "params": params},
		"time":    in.Time.UTC().Format(time.RFC3339),
	}
	if r := in.Resource; r != nil {
		fields := make(map[string]any, len(r.Fields))
		for name, f := range r.Fields {
			fields[name] = map[string]any{"type": f.Type, "level": f.Level}
		}
		m["resource"] = map[string]any{
			"source": r.Source, "dataset": r.Dataset,
			"classification": r.Classification, "fields": fields,
		}
	}
	if s := in.Stats; s != nil {
		st := map[string]any{"metric": s.Metric, "field": nil, "group_by": nil, "epsilon": s.Epsilon}
		if s.Field != nil {
			st["field"] = *s.Field
		}
		if s.GroupBy != nil {
			st["group_by"] = *s.GroupBy
		}
		m["stats"] = st
	}
	return m
}

// Set is one compiled revision of a policy directory.
type Set struct {
	query    rego.PreparedEvalQuery
	revision string
	dir      string
	files    int
}

// Revision identifies the policy set: a hash of every file it was built
// from.
func (s *Set) Revision() string { return s.revision }

// Dir is the directory the set was loaded from.
func (s *Set) Dir() string { return s.dir }

// isTestFile reports Rego test files, which are not part of the enforced
// policy.
func isTestFile(path string) bool { return strings.HasSuffix(path, "_test.rego") }

// Load compiles the policies and data under dir into a Set. Test files
// (*_test.rego) are left out of the enforced policy.
//
// The files are read once: the revision is the hash of exactly the bytes
// that are compiled, so no file the revision does not cover (in a hidden
// or symlinked directory, a bundle tarball, or edited while loading) is
// ever enforced under it.
func Load(ctx context.Context, dir string) (*Set, error) {
	snap, err := scan(dir)
	if err != nil {
		return nil, err
	}
	if snap.regoFiles == 0 {
		return nil, fmt.Errorf("load policies %s: no .rego files", dir)
	}
	loaded, err := loader.NewFileLoader().
		WithFS(snap.files).
		WithRegoVersion(ast.RegoV1).
		Filtered([]string{"."}, func(path string, info fs.FileInfo, _ int) bool {
			return !info.IsDir() && isTestFile(path)
		})
	if err != nil {
		return nil, fmt.Errorf("load policies %s: %w", dir, err)
	}
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.Store(inmem.NewFromObject(loaded.Documents)),
		rego.SetRegoVersion(ast.RegoV1),
	}
	for _, m := range loaded.Modules {
		opts = append(opts, rego.ParsedModule(m.Parsed))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile policies %s: %w", dir, err)
	}
	return &Set{query: pq, revision: snap.revision, dir: dir, files: snap.regoFiles}, nil
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// snapshot is the content of a policy directory as read once.
type snapshot struct {
	// files holds every policy and data file by slash-separated path
	// relative to the directory.
	files fstest.MapFS
	// regoFiles counts the enforced (non-test) Rego files.
	regoFiles int
	// revision hashes every file's name and content.
	revision string
}

// scan reads the Rego and data files under dir, skipping hidden files and
// directories and not following symlinked directories below dir, and
// hashes them (name and content) into the revision. Symlinked files are
// read through, as in a Kubernetes ConfigMap volume.
func scan(dir string) (*snapshot, error) {
	// dir itself may be a symlink (a release directory, a mount).
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("load policies %s: %w", dir, err)
	}
	snap := &snapshot{files: fstest.MapFS{}}
	var rels []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && hidden(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if hidden(d.Name()) {
			return nil
		}
		switch filepath.Ext(path) {
		case ".rego":
			if !isTestFile(path) {
				snap.regoFiles++
			}
		case ".json", ".yaml", ".yml":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		snap.files[rel] = &fstest.MapFile{Data: b, Mode: 0o444}
		rels = append(rels, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load policies %s: %w", dir, err)
	}
	sort.Strings(rels)
	h := sha256.New()
	for _, rel := range rels {
		b := snap.files[rel].Data
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
	}
	snap.revision = hex.EncodeToString(h.Sum(nil))[:16]
	return snap, nil
}

// Decide evaluates the decision for in. It never returns an allowing
// decision together with an error; on error the decision denies and says
// why in general terms (the error carries the detail for the log).
func (s *Set) Decide(ctx context.Context, in *Input) (*Decision, error) {
	rs, err := s.query.Eval(ctx, rego.EvalInput(in.value()))
	if err != nil {
		return deny("policy evaluation failed"), fmt.Errorf("evaluate %s: %w", Query, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return deny("no decision"), errors.New(Query + " is undefined")
	}
	d, err := parseDecision(rs[0].Expressions[0].Value)
	if err != nil {
		return deny("policy decision is malformed"), err
	}
	return d, nil
}

// Engine holds the policy set in force and swaps it atomically.
type Engine struct {
	cur atomic.Pointer[Set]
}

// NewEngine returns an engine enforcing set.
func NewEngine(set *Set) *Engine {
	e := &Engine{}
	e.cur.Store(set)
	return e
}

// Current returns the set in force. A request should call it once and use
// that set throughout.
func (e *Engine) Current() *Set { return e.cur.Load() }

// Swap puts set in force.
func (e *Engine) Swap(set *Set) { e.cur.Store(set) }
