package anonymize

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"math"
	"sort"
	"sync"
	"time"
)

// An Operator releases one field's value in a treated form.
type Operator interface {
	// Apply appends the released form of v to dst as JSON. It returns false,
	// leaving dst as it was, when it cannot handle v; the transform then
	// redacts the value and counts a fallback.
	Apply(dst []byte, v Value, env *Env) ([]byte, bool)
}

// Factory builds an operator from the parameters a decision gives it. It
// rejects parameters it does not know.
type Factory func(p Params) (Operator, error)

// registry maps operator names to factories. It is filled at init time and
// read-only afterwards.
var registry = map[string]Factory{}

func register(name string, f Factory) {
	if _, dup := registry[name]; dup {
		panic("anonymize: operator registered twice: " + name)
	}
	registry[name] = f
}

// Operators returns the names of the registered operators, sorted.
func Operators() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Params are an operator's parameters as a decision states them: the
// decision's object minus "op".
type Params map[string]any

// check fails when p names a parameter outside allowed.
func (p Params) check(allowed ...string) error {
	for k := range p {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("unknown parameter %q", k)
		}
	}
	return nil
}

// Int returns the non-negative integer parameter name, or def when absent.
func (p Params) Int(name string, def int) (int, error) {
	v, ok := p[name]
	if !ok {
		return def, nil
	}
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<30 {
			return 0, fmt.Errorf("%s: want an integer, got %v", name, x)
		}
		n = int(x)
	case interface{ Float64() (float64, error) }: // json.Number, 3 or 3.0
		f, err := x.Float64()
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<30 {
			return 0, fmt.Errorf("%s: want an integer, got %v", name, x)
		}
		n = int(f)
	default:
		return 0, fmt.Errorf("%s: want an integer, got %T", name, v)
	}
	if n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("%s: %d out of range", name, n)
	}
	return n, nil
}

// Number returns the finite number parameter name, or def when absent.
func (p Params) Number(name string, def float64) (float64, error) {
	v, ok := p[name]
	if !ok {
		return def, nil
	}
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case float64:
		f = x
	case interface{ Float64() (float64, error) }: // json.Number
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, fmt.Errorf("%s: want a number, got %v", name, x)
		}
	default:
		return 0, fmt.Errorf("%s: want a number, got %T", name, v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s: want a finite number, got %v", name, f)
	}
	return f, nil
}

// String returns the string parameter name, or def when absent.
func (p Params) String(name, def string) (string, error) {
	v, ok := p[name]
	if !ok {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %T", name, v)
	}
	return s, nil
}

// Keys holds the secrets that keyed operators use. Build it once from the
// gateway's pseudonym key.
type Keys struct {
	pseudonym []byte

	// scoped caches the keys derived per scope ("consumer:alice"), which
	// every release would otherwise derive again; cleared when full.
	mu     sync.Mutex
	scoped map[string]*scopedKey
}

// scopedKey is one scope's pseudonym key and keyed hashes ready to use
// with it: keying an HMAC hashes the key twice and allocates, which every
// release would otherwise do again.
type scopedKey struct {
	key  []byte
	macs sync.Pool // of hash.Hash
}

// maxScopedKeys bounds Keys.scoped.
const maxScopedKeys = 4096

// scope returns the pseudonym key of one scope.
func (k *Keys) scope(label string) *scopedKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if sk, ok := k.scoped[label]; ok {
		return sk
	}
	if k.scoped == nil || len(k.scoped) >= maxScopedKeys {
		k.scoped = make(map[string]*scopedKey)
	}
	sk := &scopedKey{key: deriveKey(k.pseudonym, label)}
	sk.macs.New = func() any { return hmac.New(sha256.New, sk.key) }
	k.scoped[label] = sk
	return sk
}

// NewKeys returns keys for pseudonymisation derived from secret, which must
// hold at least 32 bytes.
func NewKeys(secret []byte) (*Keys, error) {
	if len(secret) < 32 {
		return nil, errors.New("pseudonym key must be at least 32 bytes")
	}
	return &Keys{pseudonym: deriveKey(secret, "sluice/pseudonym/v1")}, nil
}

func deriveKey(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Env carries what operators need to know about the request being answered.
// An Env is used by one transform at a time.
type Env struct {
	Keys *Keys
	// Consumer is the caller's subject id, for consumer-scoped pseudonyms.
	Consumer string
	// Dataset is "source/dataset", for dataset-scoped pseudonyms.
	Dataset string
	// Now is the clock that ages are computed against (generalize to
	// "age"); nil means time.Now. A transform reads it once, so every
	// record of a release is aged on the same day.
	Now func() time.Time

	macs map[string]scopedMAC
	sum  []byte // a pseudonym's MAC, reused across values
	// today is the time a transform started, read from Now.
	today time.Time
}

// start readies the Env for one transform.
func (e *Env) start() {
	if e == nil {
		return
	}
	e.today = e.clock()
}

func (e *Env) clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// now is the time the current transform started.
func (e *Env) now() time.Time {
	if e == nil {
		return time.Now()
	}
	if e.today.IsZero() {
		e.today = e.clock()
	}
	return e.today
}

// scopedMAC is a keyed hash the Env holds, the keys and dataset or
// consumer it was derived for, and the scope it goes back to.
type scopedMAC struct {
	keys  *Keys
	who   string
	hash  hash.Hash
	scope *scopedKey
}

// mac returns the keyed hash for a pseudonym scope, ready for use.
func (e *Env) mac(scope string) hash.Hash {
	var who, label string
	switch scope {
	case scopeGlobal:
		label = "global"
	case scopeDataset:
		who, label = e.Dataset, "dataset:"
	default:
		who, label = e.Consumer, "consumer:"
	}
	// The cache must follow the Env's fields: an Env reused after its
	// Consumer, Dataset or Keys changed would otherwise pseudonymise in the
	// previous scope and let two consumers link their records.
	if m, ok := e.macs[scope]; ok && m.who == who && m.keys == e.Keys {
		m.hash.Reset()
		return m.hash
	}
	if e.macs == nil {
		e.macs = make(map[string]scopedMAC, 1)
	} else if m, ok := e.macs[scope]; ok {
		m.scope.macs.Put(m.hash)
	}
	sk := e.Keys.scope(label + who)
	m := sk.macs.Get().(hash.Hash)
	m.Reset()
	e.macs[scope] = scopedMAC{keys: e.Keys, who: who, hash: m, scope: sk}
	return m
}

// finish gives the keyed hashes the Env took back to their scopes.
func (e *Env) finish() {
	if e == nil {
		return
	}
	for scope, m := range e.macs {
		m.scope.macs.Put(m.hash)
		delete(e.macs, scope)
	}
}
