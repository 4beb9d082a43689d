package policy

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A Set's decisions are a pure function of the input document: its data
// is fixed when it is compiled, and a set that calls a non-deterministic
// built-in (time.now_ns, http.send, rand.intn, …) is never cached. So a
// Set remembers the decisions it made, keyed by the exact input the policy
// would read, and a repeated request (the same caller asking the same
// thing, as a downstream app does all day) skips evaluation, parsing and
// plan compilation. The key holds only the members of the input the
// set's modules can read: a policy that never reads input.request answers
// every page of a dataset with one decision, and one that never reads
// input.time is not keyed by the clock. input.time, when read, is keyed at
// the second resolution the policy sees it.
//
// The cache belongs to the Set, so a reload starts empty. It holds two
// generations of at most decisionCacheSize entries each: when the newer
// fills, the older is dropped, which bounds memory without tracking use.
// When the key holds the time, a new second also starts a generation: no
// later request can ask for an earlier second, so the cache keeps only the
// current and the previous second's decisions rather than filling up with
// dead ones. Only decisions are cached, never evaluation errors.

const decisionCacheSize = 1024

type decisionCache struct {
	mu       sync.Mutex
	cur, old map[string]*Decision
	// reads are the members of the input some module can read.
	reads inputParts
	// second is the newest input second put in cur (when reads has
	// partTime).
	second int64

	hits, misses atomic.Int64
}

// newDecisionCache returns the cache for a set compiled from modules, or
// nil when a decision may depend on more than its input.
func newDecisionCache(modules []*ast.Module) *decisionCache {
	var all inputParts
	for _, m := range modules {
		nondet, reads := inspect(m)
		if nondet {
			return nil
		}
		all |= reads
	}
	return &decisionCache{cur: map[string]*Decision{}, reads: all}
}

// inputParts is a set of the input document's members.
type inputParts uint16

const (
	partSubject inputParts = 1 << iota
	partPurpose
	partJustification
	partAction
	partResource
	partRequest
	partStats
	partTime
	partGrants

	allParts = 1<<iota - 1
)

// inputMembers names the members of the input document (Input.astValue).
var inputMembers = map[string]inputParts{
	"subject": partSubject, "purpose": partPurpose, "justification": partJustification, "action": partAction,
	"resource": partResource, "request": partRequest, "stats": partStats, "time": partTime, "grants": partGrants,
}

// inspect reports whether m calls a non-deterministic built-in and which
// members of the input it may read: input.<name> reads that member; any
// other use of input (`x := input`, input[k], a name the document does
// not have) is taken to read them all.
func inspect(m *ast.Module) (nondet bool, reads inputParts) {
	isInput := func(t *ast.Term) bool {
		v, ok := t.Value.(ast.Var)
		return ok && v.Equal(ast.InputRootDocument.Value)
	}
	call := func(op ast.Ref) {
		if b, ok := ast.BuiltinMap[op.String()]; ok && b.Nondeterministic {
			nondet = true
		}
	}
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case *ast.Expr:
			if x.IsCall() {
				call(x.Operator())
			}
		case ast.Call:
			if len(x) > 0 {
				if op, ok := x[0].Value.(ast.Ref); ok {
					call(op)
				}
			}
		case ast.Ref:
			if len(x) == 0 || !isInput(x[0]) {
				return false
			}
			part := inputParts(allParts) // input used whole, or by a computed name
			if len(x) >= 2 {
				if key, ok := x[1].Value.(ast.String); ok && inputMembers[string(key)] != 0 {
					part = inputMembers[string(key)]
				}
			}
			reads |= part
			// Later terms may hold calls or other references.
			for _, t := range x[1:] {
				vis.Walk(t)
			}
			return true
		case ast.Var:
			if x.Equal(ast.InputRootDocument.Value) {
				reads |= allParts // input used whole
			}
		}
		return false
	})
	vis.Walk(m)
	return nondet, reads
}

// get returns the decision cached under key, or nil.
func (c *decisionCache) get(key []byte) *Decision {
	c.mu.Lock()
	d := c.cur[string(key)]
	if d == nil {
		if d = c.old[string(key)]; d != nil {
			c.putLocked(string(key), d)
		}
	}
	c.mu.Unlock()
	if d == nil {
		c.misses.Add(1)
	} else {
		c.hits.Add(1)
	}
	return d
}

// put caches d, decided for an input at the given Unix second, under key.
func (c *decisionCache) put(key []byte, second int64, d *Decision) {
	c.mu.Lock()
	if c.reads&partTime != 0 && second > c.second {
		if c.second != 0 {
			c.old, c.cur = c.cur, make(map[string]*Decision)
		}
		c.second = second
	}
	c.putLocked(string(key), d)
	c.mu.Unlock()
}

func (c *decisionCache) putLocked(key string, d *Decision) {
	if len(c.cur) >= decisionCacheSize {
		c.old, c.cur = c.cur, make(map[string]*Decision)
	}
	c.cur[key] = d
}

// CacheStats counts the decisions a Set answered from its cache and those
// it evaluated; both are 0 for a set that does not cache.
func (s *Set) CacheStats() (hits, misses int64) {
	if s == nil || s.cache == nil {
		return 0, 0
	}
	return s.cache.hits.Load(), s.cache.misses.Load()
}

var keyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// key appends the input's canonical encoding to dst: each member of the
// document in reads, length-prefixed, maps in key order. ok is false when
// a claim holds a value the encoding does not know, and the decision is
// then not cached.
func (in *Input) key(dst []byte, reads inputParts) (_ []byte, ok bool) {
	str := func(s string) { dst = appendStr(dst, s) }
	num := func(n int) { dst = binary.AppendUvarint(dst, uint64(n)) }

	if reads&partSubject != 0 {
		str(in.Subject.ID)
		num(len(in.Subject.Roles))
		for _, r := range in.Subject.Roles {
			str(r)
		}
		str(in.Subject.Dept)
		str(in.Subject.District)
		if dst, ok = in.Subject.appendClaimsKey(dst); !ok {
			return dst, false
		}
	}
	if reads&partPurpose != 0 {
		str(in.Purpose)
	}
	if reads&partJustification != 0 {
		str(in.Justification)
	}
	if reads&partAction != 0 {
		str(in.Action)
	}
	if reads&partResource != 0 {
		if r := in.Resource; r != nil {
			dst = append(dst, 1)
			dst = append(dst, r.prepare().key...)
		} else {
			dst = append(dst, 0)
		}
	}
	if reads&partRequest != 0 {
		str(in.Request.Method)
		str(in.Request.Path)
		num(len(in.Request.Params))
		var keys [16]string
		for _, k := range sortedKeys(in.Request.Params, keys[:0]) {
			str(k)
			vs := in.Request.Params[k]
			num(len(vs))
			for _, v := range vs {
				str(v)
			}
		}
	}
	if reads&partStats != 0 {
		if st := in.Stats; st != nil {
			dst = append(dst, 1)
			str(st.Metric)
			for _, p := range []*string{st.Field, st.GroupBy} {
				if p == nil {
					dst = append(dst, 0)
				} else {
					dst = append(dst, 1)
					str(*p)
				}
			}
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(st.Epsilon))
		} else {
			dst = append(dst, 0)
		}
	}
	if reads&partTime != 0 {
		dst = in.Time.UTC().AppendFormat(dst, time.RFC3339)
	}
	if reads&partGrants != 0 {
		if dst, ok = appendGrantsKey(dst, in.Grants); !ok {
			return dst, false
		}
	}
	return dst, true
}

// appendAny encodes a claim value: the types JSON decoding yields, and
// string slices.
func appendAny(dst []byte, v any) ([]byte, bool) {
	str := func(s string) { dst = appendStr(dst, s) }
	switch v := v.(type) {
	case nil:
		dst = append(dst, 'z')
	case bool:
		if v {
			dst = append(dst, 't')
		} else {
			dst = append(dst, 'f')
		}
	case string:
		dst = append(dst, 's')
		str(v)
	case float64:
		dst = append(dst, 'n')
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	case []string:
		dst = append(dst, 'a')
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		for _, s := range v {
			dst = append(dst, 's')
			str(s)
		}
	case []any:
		dst = append(dst, 'a')
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		for _, e := range v {
			var ok bool
			if dst, ok = appendAny(dst, e); !ok {
				return dst, false
			}
		}
	case map[string]any:
		dst = append(dst, 'o')
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		var keys [16]string
		for _, k := range sortedKeys(v, keys[:0]) {
			str(k)
			var ok bool
			if dst, ok = appendAny(dst, v[k]); !ok {
				return dst, false
			}
		}
	default:
		return dst, false
	}
	return dst, true
}

// sortedKeys appends m's keys to buf and sorts them: on a small map, with
// a buf on the caller's stack, without allocating, as a key is built for
// every decision.
func sortedKeys[V any](m map[string]V, buf []string) []string {
	for k := range m {
		buf = append(buf, k)
	}
	slices.Sort(buf)
	return buf
}

// appendStr appends s, length-prefixed.
func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// resourceKey is the resource's part of an input's cache key.
func resourceKey(r *Resource) []byte {
	dst := appendStr(nil, r.Source)
	dst = appendStr(dst, r.Dataset)
	dst = appendStr(dst, r.Classification)
	dst = binary.AppendUvarint(dst, uint64(len(r.Fields)))
	for _, name := range slices.Sorted(maps.Keys(r.Fields)) {
		f := r.Fields[name]
		dst = appendStr(appendStr(appendStr(dst, name), f.Type), f.Level)
	}
	return dst
}
