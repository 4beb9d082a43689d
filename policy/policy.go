// Package policy evaluates the security officers' Rego policies in process.
//
// It guarantees that a request is allowed only by a well-formed decision:
// an undefined, malformed or failing evaluation of data.sluice.decision is a
// deny. A Set is compiled once from a directory of .rego and data files (or
// a signed OPA bundle) and is immutable; the Engine swaps whole sets
// atomically, so a request is decided by exactly one revision. A change,
// from a watched directory or a bundle server, is put in force only when it
// compiles and its own Rego tests pass; otherwise the set in force stays.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
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
	Subject Subject `json:"subject"`
	Purpose string  `json:"purpose"`
	// Justification is the reason the caller states for this one request
	// (the Sluice-Justification header), as break-glass rules require.
	Justification string      `json:"justification,omitempty"`
	Action        string      `json:"action"`
	Resource      *Resource   `json:"resource,omitempty"`
	Request       Request     `json:"request"`
	Stats         *StatsQuery `json:"stats,omitempty"`
	// Grants are the caller department's grants in force on the
	// resource for the purpose (grants.go).
	Grants []Grant   `json:"grants,omitempty"`
	Time   time.Time `json:"time"`
}

// Subject is the authenticated caller.
type Subject struct {
	ID       string         `json:"id"`
	Roles    []string       `json:"roles"`
	Dept     string         `json:"dept,omitempty"`
	District string         `json:"district,omitempty"`
	Claims   map[string]any `json:"claims,omitempty"`

	// claims, when set by Prepared, holds what decisions need of Claims,
	// built once and shared by every copy of the Subject.
	claims *preparedClaims
}

// Prepared returns s set up to convert its claims for the policy once, at
// its first decision, and to share that with every copy of it: for a
// subject that asks again and again, as a verified token the gateway
// caches does. Its Claims must not change afterwards.
func (s Subject) Prepared() Subject {
	s.claims = &preparedClaims{}
	return s
}

// preparedClaims is a subject's claims in the forms every decision reads:
// as an OPA value, and as their part of the decision cache key.
type preparedClaims struct {
	once  sync.Once
	term  *ast.Term
	err   error
	key   []byte
	keyOK bool
}

func (p *preparedClaims) prepare(claims map[string]any) *preparedClaims {
	p.once.Do(func() {
		p.term, p.err = claimsTerm(claims)
		p.key, p.keyOK = appendAny(nil, claims)
	})
	return p
}

// claimsTerm is the subject's claims as an OPA value.
func (s *Subject) claimsTerm() (*ast.Term, error) {
	if s.claims == nil {
		return claimsTerm(s.Claims)
	}
	p := s.claims.prepare(s.Claims)
	return p.term, p.err
}

// appendClaimsKey appends the claims' part of the decision cache key; ok
// is false when a claim holds a value the key cannot encode.
func (s *Subject) appendClaimsKey(dst []byte) (_ []byte, ok bool) {
	if s.claims == nil {
		return appendAny(dst, s.Claims)
	}
	p := s.claims.prepare(s.Claims)
	if !p.keyOK {
		return dst, false
	}
	return append(dst, p.key...), true
}

func claimsTerm(claims map[string]any) (*ast.Term, error) {
	if len(claims) == 0 {
		return ast.NewTerm(ast.NewObject()), nil
	}
	v, err := ast.InterfaceToValue(claims)
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if _, ok := v.(ast.Object); !ok {
		return nil, fmt.Errorf("claims are not an object")
	}
	return ast.NewTerm(v), nil
}

// Resource is the dataset asked for, as configured. A Resource must not
// change once a decision was asked for it: what decisions need of it is
// prepared once.
type Resource struct {
	Source         string               `json:"source"`
	Dataset        string               `json:"dataset"`
	Classification string               `json:"classification,omitempty"`
	Fields         map[string]FieldInfo `json:"fields,omitempty"`

	once sync.Once
	prep preparedResource
}

// preparedResource is a resource as every decision about it reads it.
type preparedResource struct {
	term *ast.Term // the input's resource member, as an OPA value
	key  []byte    // its part of the decision cache key (cache.go)
}

// prepare builds the resource's prepared forms on first use.
func (r *Resource) prepare() *preparedResource {
	r.once.Do(func() {
		str := ast.StringTerm
		kv := func(k string, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{str(k), v} }
		fields := ast.NewObject()
		for name, f := range r.Fields {
			fields.Insert(str(name), ast.ObjectTerm(kv("type", str(f.Type)), kv("level", str(f.Level))))
		}
		r.prep.term = ast.ObjectTerm(kv("source", str(r.Source)), kv("dataset", str(r.Dataset)),
			kv("classification", str(r.Classification)), kv("fields", ast.NewTerm(fields)))
		r.prep.key = resourceKey(r)
	})
	return &r.prep
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
		"grants":  grantsValue(in.Grants),
		"time":    in.Time.UTC().Format(time.RFC3339),
	}
	// Absent unless stated, so `not input.justification` reads naturally.
	if in.Justification != "" {
		m["justification"] = in.Justification
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

// astValue builds the input directly as OPA's own value, which spares
// every decision the conversion OPA applies to a Go map (a JSON-type
// normalisation pass and a reflection walk): about half of a decision's
// cost on the shipped policies. It yields the same document as value.
func (in *Input) astValue() (ast.Value, error) {
	str := ast.StringTerm
	kv := func(k string, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{str(k), v} }

	roles := make([]*ast.Term, len(in.Subject.Roles))
	for i, r := range in.Subject.Roles {
		roles[i] = str(r)
	}
	claims, err := in.Subject.claimsTerm()
	if err != nil {
		return nil, err
	}
	params := ast.NewObject()
	for k, vs := range in.Request.Params {
		list := make([]*ast.Term, len(vs))
		for i, v := range vs {
			list[i] = str(v)
		}
		params.Insert(str(k), ast.ArrayTerm(list...))
	}
	obj := ast.NewObject(
		kv("subject", ast.ObjectTerm(
			kv("id", str(in.Subject.ID)), kv("roles", ast.ArrayTerm(roles...)), kv("dept", str(in.Subject.Dept)),
			kv("district", str(in.Subject.District)), kv("claims", claims))),
		kv("purpose", str(in.Purpose)),
		kv("action", str(in.Action)),
		kv("request", ast.ObjectTerm(kv("method", str(in.Request.Method)), kv("path", str(in.Request.Path)),
			kv("params", ast.NewTerm(params)))),
		kv("time", str(in.Time.UTC().Format(time.RFC3339))),
	)
	if in.Justification != "" {
		obj.Insert(str("justification"), str(in.Justification))
	}
	grants, err := grantsTerm(in.Grants)
	if err != nil {
		return nil, err
	}
	obj.Insert(str("grants"), grants)
	if r := in.Resource; r != nil {
		obj.Insert(str("resource"), r.prepare().term)
	}
	if st := in.Stats; st != nil {
		field, group := ast.NullTerm(), ast.NullTerm()
		if st.Field != nil {
			field = str(*st.Field)
		}
		if st.GroupBy != nil {
			group = str(*st.GroupBy)
		}
		obj.Insert(str("stats"), ast.ObjectTerm(kv("metric", str(st.Metric)), kv("field", field),
			kv("group_by", group), kv("epsilon", ast.FloatNumberTerm(st.Epsilon))))
	}
	return obj, nil
}

// Set is one compiled revision of a policy directory or bundle.
type Set struct {
	query    rego.PreparedEvalQuery
	revision string
	// digest hashes the files the set was compiled from; it tells a
	// changed directory or bundle from an unchanged one.
	digest string
	dir    string
	source string
	files  int
	// cache holds the set's decisions by input; nil when its policies
	// call a non-deterministic built-in.
	cache *decisionCache
	// memo holds the decisions parsed, by value (memo.go).
	memo *decisionMemo
	// data is the data document the policies were compiled with; it is
	// never changed.
	data map[string]any
}

// Revision identifies the policy set: for a directory, a hash of every
// file it was built from; for a bundle, the revision its manifest names
// (the hash when it names none). A nil Set has revision "".
func (s *Set) Revision() string {
	if s == nil {
		return ""
	}
	return s.revision
}

// Dir is the directory the set was loaded from, "" for a bundle.
func (s *Set) Dir() string {
	if s == nil {
		return ""
	}
	return s.dir
}

// Source is where the set came from: its directory or its bundle URL.
func (s *Set) Source() string {
	if s == nil {
		return ""
	}
	return s.source
}

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
	set, err := compileSnapshot(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("load policies %s: %w", dir, err)
	}
	set.dir, set.source = dir, dir
	return set, nil
}

// LoadTested is Load, and then runs the Rego tests among the same files:
// it fails when any test fails, as a live reload would refuse the
// directory. The gateway starts with it, so a change refused while it ran
// is not put in force by a restart either.
func LoadTested(ctx context.Context, dir string) (*Set, error) {
	snap, err := scan(dir)
	if err != nil {
		return nil, err
	}
	set, err := compileSnapshot(ctx, snap)
	if err == nil {
		var results []TestResult
		if results, err = testSnapshot(ctx, snap); err == nil {
			err = testFailure(results)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load policies %s: %w", dir, err)
	}
	set.dir, set.source = dir, dir
	return set, nil
}

// compileSnapshot builds the enforced set from a snapshot; errors name files
// relative to the snapshot's root, never where it lives.
func compileSnapshot(ctx context.Context, snap *snapshot) (*Set, error) {
	if snap.regoFiles == 0 {
		return nil, errors.New("no .rego files")
	}
	loaded, err := loader.NewFileLoader().
		WithFS(snap.files).
		WithRegoVersion(ast.RegoV1).
		Filtered([]string{"."}, func(path string, info fs.FileInfo, _ int) bool {
			return !info.IsDir() && isTestFile(path)
		})
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.Store(inmem.NewFromObject(loaded.Documents)),
		rego.SetRegoVersion(ast.RegoV1),
	}
	parsed := make([]*ast.Module, 0, len(loaded.Modules))
	for _, m := range loaded.Modules {
		opts = append(opts, rego.ParsedModule(m.Parsed))
		parsed = append(parsed, m.Parsed)
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	rev := snap.revision
	if rev == "" {
		rev = snap.digest
	}
	return &Set{query: pq, revision: rev, digest: snap.digest, files: snap.regoFiles,
		cache: newDecisionCache(parsed), memo: newDecisionMemo(), data: loaded.Documents}, nil
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// snapshot is the content of a policy directory as read once.
type snapshot struct {
	// files holds every policy and data file by slash-separated path
	// relative to the directory.
	files fstest.MapFS
	// regoFiles counts the enforced (non-test) Rego files.
	regoFiles int
	// digest hashes every file's name and content.
	digest string
	// revision is the revision the source names (a bundle manifest's);
	// "" means the digest.
	revision string
}

// newSnapshot holds files (slash-separated relative path → content) and
// hashes them.
func newSnapshot(files map[string][]byte) *snapshot {
	snap := &snapshot{files: fstest.MapFS{}}
	rels := make([]string, 0, len(files))
	for rel, b := range files {
		snap.files[rel] = &fstest.MapFile{Data: b, Mode: 0o444}
		rels = append(rels, rel)
		if path.Ext(rel) == ".rego" && !isTestFile(rel) {
			snap.regoFiles++
		}
	}
	sort.Strings(rels)
	h := sha256.New()
	for _, rel := range rels {
		b := files[rel]
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
	}
	snap.digest = hex.EncodeToString(h.Sum(nil))[:16]
	return snap
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
	files := map[string][]byte{}
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
		case ".rego", ".json", ".yaml", ".yml":
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
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load policies %s: %w", dir, err)
	}
	return newSnapshot(files), nil
}

// Decide evaluates the decision for in. It never returns an allowing
// decision together with an error; on error the decision denies and says
// why in general terms (the error carries the detail for the log).
//
// The same input may be answered with the same *Decision as before (see
// cache.go): a decision is shared and must be treated as read-only.
func (s *Set) Decide(ctx context.Context, in *Input) (*Decision, error) {
	if s == nil {
		return deny("no policy loaded"), errors.New("no policy set is loaded")
	}
	if s.cache == nil {
		return s.evaluate(ctx, in)
	}
	bp := keyPool.Get().(*[]byte)
	defer keyPool.Put(bp)
	key, ok := in.key((*bp)[:0], s.cache.reads)
	*bp = key
	if !ok {
		return s.evaluate(ctx, in)
	}
	if d := s.cache.get(key); d != nil {
		return d, nil
	}
	d, err := s.evaluate(ctx, in)
	if err == nil {
		s.cache.put(key, in.Time.Unix(), d)
	}
	return d, err
}

// evaluate runs the policy for in.
func (s *Set) evaluate(ctx context.Context, in *Input) (*Decision, error) {
	input, err := in.astValue()
	if err != nil {
		return deny("policy input is malformed"), fmt.Errorf("build input: %w", err)
	}
	rs, err := s.query.Eval(ctx, rego.EvalParsedInput(input), evalNoMetrics, evalKeepTerms)
	d, _, err := s.decisionOf(rs, err)
	return d, err
}

// decisionOf reads the decision out of an evaluation's results: a deny
// with the reason it failed, or the decision and the value it was
// parsed from.
func (s *Set) decisionOf(rs rego.ResultSet, err error) (*Decision, *ast.Term, error) {
	if err != nil {
		return deny("policy evaluation failed"), nil, fmt.Errorf("evaluate %s: %w", Query, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return deny("no decision"), nil, errors.New(Query + " is undefined")
	}
	value, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return deny("policy decision is malformed"), nil, fmt.Errorf("evaluate %s: a result of type %T", Query, rs[0].Expressions[0].Value)
	}
	d, err := s.memo.parse(value)
	if err != nil {
		return deny("policy decision is malformed"), nil, err
	}
	return d, value, nil
}
