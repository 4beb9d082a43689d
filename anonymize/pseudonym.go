package anonymize

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Pseudonyms are keyed hashes, and where they link is decided by the key:
// each scope derives its own key from the gateway's secret, naming in the
// derivation label everything the scope is keyed by (docs/policies.md,
// "Pseudonym scopes and rotation", writes it down for policy authors):
//
//	root  = HMAC-SHA256(secret, "sluice/pseudonym/v1")
//	key   = HMAC-SHA256(root, label)
//	value → hex(HMAC-SHA256(key, value)[:16])
//
// A label is the scope's name, then each part it is keyed by as
// "/<length in bytes>:<part>", then, for a rotating scope,
// "@rotate=<seconds>,period=<index>":
//
//	org_purpose/<issuer>/<org>/<purpose>         the default
//	consumer/<issuer>/<org>/<subject>/<purpose>
//	dataset/<issuer>/<org>/<purpose>/<dataset>
//	shared/<name>                                 scope "shared:<name>"
//	global                                        (the label of earlier releases: unchanged pseudonyms)
//
// where <org> is "org:" and the token's organisation, or "sub:" and the
// subject when the token names none. The length prefixes keep the parts
// apart, so no choice of claim values makes two scopes' labels equal.

// The pseudonym scopes a policy may name.
const (
	// scopeOrgPurpose links the releases to one organisation for one
	// purpose: the default, so that two organisations, or one under two
	// purposes, cannot join what they receive.
	scopeOrgPurpose = "org_purpose"
	// scopeConsumer links only the releases to one caller identity (of
	// one organisation) for one purpose.
	scopeConsumer = "consumer"
	// scopeDataset links only within one dataset, for one organisation
	// and purpose: the organisation cannot join two datasets on it.
	scopeDataset = "dataset"
	// scopeShared links every release whose rule names the same shared
	// scope, whoever receives it: a fusion of data on purpose.
	scopeShared = "shared"
	// scopeGlobal links every release of every rule that says global. It
	// predates shared scopes, whose names say which grants fuse.
	scopeGlobal = "global"
)

// sharedName is what may follow "shared:": lower-case, so that two
// spellings of one name cannot make two scopes by accident.
var sharedName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Bounds on a rotation period. An hour is far below any useful period
// and keeps the period index small; a century is "never" in practice.
const (
	minRotate = int64(time.Hour / time.Second)
	maxRotate = 36500 * 24 * minRotate
)

// pseudonymScope is where a rule's pseudonyms link: a scope kind, the name
// of a shared scope, and the rotation period in seconds (0: none).
type pseudonymScope struct {
	kind   string
	name   string
	rotate int64
}

func parseScope(p Params) (pseudonymScope, error) {
	var s pseudonymScope
	scope, err := p.String("scope", scopeOrgPurpose)
	if err != nil {
		return s, err
	}
	switch scope {
	case scopeOrgPurpose, scopeConsumer, scopeDataset, scopeGlobal:
		s.kind = scope
	default:
		name, ok := strings.CutPrefix(scope, scopeShared+":")
		if !ok {
			return s, fmt.Errorf("scope: want org_purpose, consumer, dataset, shared:NAME or global, got %q", scope)
		}
		if !sharedName.MatchString(name) {
			return s, fmt.Errorf("scope: shared scope name %q: want 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", name)
		}
		s.kind, s.name = scopeShared, name
	}
	if _, ok := p["rotate"]; !ok {
		return s, nil
	}
	rotate, err := p.String("rotate", "")
	if err != nil {
		return s, err
	}
	s.rotate, err = parseRotate(rotate)
	return s, err
}

// parseRotate reads a rotation period, a whole number of days ("90d") or
// hours ("12h"), and returns it in seconds.
func parseRotate(s string) (int64, error) {
	bad := fmt.Errorf(`rotate: want a period such as "90d" or "12h" (from 1h to 36500d), got %q`, s)
	if len(s) < 2 || s[0] < '1' || s[0] > '9' {
		return 0, bad
	}
	var unit int64
	switch s[len(s)-1] {
	case 'h':
		unit = minRotate
	case 'd':
		unit = 24 * minRotate
	default:
		return 0, bad
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n > maxRotate/unit {
		return 0, bad
	}
	return n * unit, nil
}

// period is the index of the rotation period t falls in, counted from the
// Unix epoch (1970-01-01T00:00:00Z): floor((t - epoch) / rotate). 0 for a
// scope that does not rotate.
func (s pseudonymScope) period(t time.Time) int64 {
	if s.rotate == 0 {
		return 0
	}
	u := t.Unix()
	q := u / s.rotate
	if u%s.rotate < 0 {
		q--
	}
	return q
}

// requestScope is what the Env says about the request that a scope may be
// keyed by, and the rotation period: an Env's keyed hash serves only while
// these stay what it was derived for.
type requestScope struct {
	issuer, org, subject, purpose, dataset string
	period                                 int64
}

// appendLabel appends the derivation label of scope s for request r.
func (s pseudonymScope) appendLabel(b []byte, r requestScope) []byte {
	// The organisation part is "org:" and the organisation, or "sub:" and
	// the subject when the token names none.
	org, orgTag := r.org, "org:"
	if r.org == "" {
		org, orgTag = r.subject, "sub:"
	}
	switch s.kind {
	case scopeGlobal:
		b = append(b, scopeGlobal...)
	case scopeShared:
		b = appendPart(append(b, scopeShared...), "", s.name)
	case scopeConsumer:
		b = append(b, scopeConsumer...)
		b = appendPart(appendPart(appendPart(appendPart(b, "", r.issuer), orgTag, org), "", r.subject), "", r.purpose)
	case scopeDataset:
		b = append(b, scopeDataset...)
		b = appendPart(appendPart(appendPart(appendPart(b, "", r.issuer), orgTag, org), "", r.purpose), "", r.dataset)
	default:
		b = append(b, scopeOrgPurpose...)
		b = appendPart(appendPart(appendPart(b, "", r.issuer), orgTag, org), "", r.purpose)
	}
	if s.rotate > 0 {
		b = append(b, "@rotate="...)
		b = strconv.AppendInt(b, s.rotate, 10)
		b = append(b, ",period="...)
		b = strconv.AppendInt(b, r.period, 10)
	}
	return b
}

// appendPart appends "/<length>:<tag><part>".
func appendPart(b []byte, tag, part string) []byte {
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(len(tag)+len(part)), 10)
	b = append(b, ':')
	b = append(b, tag...)
	return append(b, part...)
}

// Keys holds the secrets that keyed operators use. Build it once from the
// gateway's pseudonym key.
type Keys struct {
	pseudonym []byte

	// scoped caches the keys derived per scope label, which every release
	// would otherwise derive again; cleared when full.
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

// scope returns the pseudonym key of one scope label.
func (k *Keys) scope(label []byte) *scopedKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if sk, ok := k.scoped[string(label)]; ok {
		return sk
	}
	if k.scoped == nil || len(k.scoped) >= maxScopedKeys {
		k.scoped = make(map[string]*scopedKey)
	}
	sk := &scopedKey{key: deriveKey(k.pseudonym, string(label))}
	sk.macs.New = func() any { return hmac.New(sha256.New, sk.key) }
	k.scoped[string(label)] = sk
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

// deriveKey is HMAC-SHA256(secret, label), a labelled derivation in the
// manner of HKDF-Expand (its first block, without the counter byte): the
// secret is a uniformly random key already, so no extract step is needed,
// and distinct labels give independent keys.
func deriveKey(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// scopedMAC is a keyed hash the Env holds: the scope and request it was
// derived for, the keys, and the scope key it goes back to.
type scopedMAC struct {
	scope pseudonymScope
	req   requestScope
	keys  *Keys
	hash  hash.Hash
	sk    *scopedKey
}

// mac returns the keyed hash for a pseudonym scope, ready for use.
func (e *Env) mac(s pseudonymScope) hash.Hash {
	req := requestScope{period: s.period(e.now())}
	switch s.kind {
	case scopeOrgPurpose, scopeConsumer, scopeDataset:
		req.issuer, req.org, req.subject, req.purpose = e.Issuer, e.Org, e.Consumer, e.Purpose
		if s.kind == scopeDataset {
			req.dataset = e.Dataset
		}
	}
	// A plan has few pseudonym scopes (most have one): a list is cheaper
	// than a map to build for every release.
	i := 0
	for ; i < len(e.macs) && e.macs[i].scope != s; i++ {
	}
	if i < len(e.macs) {
		// The cache must follow the Env's fields: an Env reused after its
		// caller, purpose, dataset, period or keys changed would otherwise
		// pseudonymise in the previous scope and let two consumers link
		// their records.
		m := &e.macs[i]
		if m.req == req && m.keys == e.Keys {
			m.hash.Reset()
			return m.hash
		}
		m.sk.macs.Put(m.hash)
	} else {
		e.macs = append(e.macs, scopedMAC{scope: s})
	}
	var buf [128]byte
	sk := e.Keys.scope(s.appendLabel(buf[:0], req))
	h := sk.macs.Get().(hash.Hash)
	h.Reset()
	e.macs[i] = scopedMAC{scope: s, req: req, keys: e.Keys, hash: h, sk: sk}
	return h
}

// finish gives the keyed hashes the Env took back to their scopes.
func (e *Env) finish() {
	if e == nil {
		return
	}
	for i := range e.macs {
		e.macs[i].sk.macs.Put(e.macs[i].hash)
		e.macs[i] = scopedMAC{}
	}
	e.macs = e.macs[:0]
}

// pseudonymizeOp replaces a string or number with a keyed HMAC-SHA256
// pseudonym, 32 lowercase hex characters (128 bits of the MAC); the value
// depends on the key and the scope. The key is derived from the gateway's secret and the scope,
// so nobody without the secret can test a guess (no dictionary attack as
// on an unsalted hash), and pseudonyms given to two organisations, or to
// one under two purposes, do not link unless the rule names a shared
// scope: {"scope": "shared:fusion-2027"}. {"rotate": "90d"} gives a new
// pseudonym space each period.
type pseudonymizeOp struct{ scope pseudonymScope }

func newPseudonymize(p Params) (Operator, error) {
	if err := p.check("scope", "rotate"); err != nil {
		return nil, err
	}
	s, err := parseScope(p)
	if err != nil {
		return nil, err
	}
	return pseudonymizeOp{scope: s}, nil
}

// Apply pseudonymises strings and numbers; the number 42 and the string
// "42" share a pseudonym, so a department sending IDs either way still
// joins.
func (o pseudonymizeOp) Apply(dst []byte, v Value, env *Env) ([]byte, bool) {
	// Without keys there is no pseudonym to give: redact rather than fail
	// (or panic) half-way through a release.
	if env == nil || env.Keys == nil {
		return dst, false
	}
	text, ok := v.rawText() // hashed where it lies, most often
	if !ok {
		s, ok := v.Text()
		if !ok {
			return dst, false
		}
		text = []byte(s)
	}
	m := env.mac(o.scope)
	m.Write(text)
	env.sum = m.Sum(env.sum[:0])
	dst = append(dst, '"')
	dst = hex.AppendEncode(dst, env.sum[:16])
	return append(dst, '"'), true
}
